"""The Control service through its generated stubs, served by grpc.aio on a unix socket over a MemoryStore."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from swarmpy.manager.allocator.networks import default_ingress_network
import pytest

from swarmpy.api import control_pb2, control_pb2_grpc, dispatcher_pb2, objects_pb2
from swarmpy.ca.certs import create_root_ca
from swarmpy.ca.tokens import new_join_tokens, parse_join_token
from swarmpy.manager.controlapi import ControlServicer
from swarmpy.manager.controlapi.defaults import default_cluster_spec
from swarmpy.manager.store import MemoryStore
from swarmpy.raft.errors import LeadershipLost, NotLeader
from swarmpy.units import SECOND

RUNNING = objects_pb2.RUNNING
SHUTDOWN = objects_pb2.SHUTDOWN


@dataclass
class Harness:
    store: MemoryStore
    control: control_pb2_grpc.ControlStub
    servicer: ControlServicer

    def snapshot(self) -> tuple[int, tuple[int, ...]]:
        view = self.store.view()
        return self.store.applied_index, tuple(view.count(kind) for kind in ("node", "service", "task", "cluster"))


class FakeLogBroker:
    def __init__(self) -> None:
        self.selectors: list[dispatcher_pb2.LogSelector] = []
        self.closed = 0

    async def subscribe(self, selector, options) -> AsyncIterator[dispatcher_pb2.LogMessage]:
        self.selectors.append(selector)
        try:
            for line in (b"hello\n", b"world\n"):
                yield dispatcher_pb2.LogMessage(
                    context=dispatcher_pb2.LogContext(service_id=next(iter(selector.service_ids), "")), data=line
                )
        finally:
            self.closed += 1


@pytest.fixture
async def harness(tmp_path) -> AsyncIterator[Harness]:
    async with serve(tmp_path) as h:
        yield h


class serve:
    """An in-process server and a client channel; `gate` and `broker` are passed to the servicer."""

    def __init__(self, tmp_path, gate=None, broker=None) -> None:
        self.socket = f"unix:{tmp_path}/control.sock"
        self.store = MemoryStore()
        self.servicer = ControlServicer(self.store, leader_gate=gate, log_broker=broker)

    async def __aenter__(self) -> Harness:
        # As `swarm init` leaves it: the ingress network, which services publishing a port need.
        await self.store.update(lambda tx: tx.create("network", default_ingress_network()))
        self.server = grpc.aio.server()
        control_pb2_grpc.add_ControlServicer_to_server(self.servicer, self.server)
        self.server.add_insecure_port(self.socket)
        await self.server.start()
        self.channel = grpc.aio.insecure_channel(self.socket)
        return Harness(self.store, control_pb2_grpc.ControlStub(self.channel), self.servicer)

    async def __aexit__(self, *exc: object) -> None:
        await self.channel.close()
        await self.server.stop(None)


def web_spec(name: str = "web", replicas: int = 2, image: str = "nginx:1.25") -> objects_pb2.ServiceSpec:
    spec = objects_pb2.ServiceSpec()
    spec.annotations.name = name
    spec.task.container.image = image
    spec.replicated.replicas = replicas
    return spec


async def create(h: Harness, spec: objects_pb2.ServiceSpec) -> objects_pb2.Service:
    return (await h.control.CreateService(control_pb2.CreateServiceRequest(spec=spec))).service


async def expect_error(call, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return caught.value.details()


def make_node(node_id: str, hostname: str, role=objects_pb2.WORKER, state=objects_pb2.NodeStatus.READY):
    node = objects_pb2.Node(id=node_id, role=role)
    node.spec.desired_role = role
    node.description.hostname = hostname
    node.status.state = state
    return node


def make_task(task_id, service, node_id="", slot=1, state=RUNNING, desired=RUNNING, spec_version=None):
    task = objects_pb2.Task(id=task_id, service_id=service.id, node_id=node_id, slot=slot, desired_state=desired)
    task.status.state = state
    task.spec_version.index = service.spec_version.index if spec_version is None else spec_version
    task.annotations.name = f"{service.spec.annotations.name}.{slot}"
    return task


async def add_cluster(store: MemoryStore) -> objects_pb2.Cluster:
    key_pem, cert_pem = create_root_ca()
    cluster = objects_pb2.Cluster(id="clusterid0000000000000000", spec=default_cluster_spec())
    cluster.root_ca.ca_key = key_pem
    cluster.root_ca.ca_cert = cert_pem
    cluster.root_ca.join_tokens.CopyFrom(new_join_tokens(cert_pem))
    await store.update(lambda tx: tx.create("cluster", cluster))
    return store.view().get_cluster()


# -- validation reaches the user and never the store ------------------------------------------------


def _spec_with(change) -> objects_pb2.ServiceSpec:
    spec = web_spec()
    change(spec)
    return spec


def _set_ports(spec, *ports):
    for target, published in ports:
        spec.endpoint.ports.add(target_port=target, published_port=published)


BAD_SPECS = [
    ("name with a space", lambda s: setattr(s.annotations, "name", "my web"), "annotations.name", '"my web"'),
    ("name too long", lambda s: setattr(s.annotations, "name", "a" * 64), "annotations.name", "a" * 64),
    ("name starting with a dash", lambda s: setattr(s.annotations, "name", "-web"), "annotations.name", '"-web"'),
    ("empty image", lambda s: setattr(s.task.container, "image", ""), "task.container.image", '""'),
    ("uppercase image", lambda s: setattr(s.task.container, "image", "Nginx"), "task.container.image", "must be lowercase"),
    ("image with a space", lambda s: setattr(s.task.container, "image", "ng inx"), "task.container.image", '"ng inx"'),
    ("no mode", lambda s: s.ClearField("replicated"), "mode", "replicated or global"),
    ("absurd replicas", lambda s: setattr(s.replicated, "replicas", 100_001), "replicated.replicas", "100001"),
    ("negative cpu limit", lambda s: setattr(s.task.resources.limits, "nano_cpus", -1), "task.resources.limits.nano_cpus", "-1"),
    ("tiny memory limit", lambda s: setattr(s.task.resources.limits, "memory_bytes", 1024), "task.resources.limits.memory_bytes", "4MiB"),
    (
        "reservation above limit",
        lambda s: (
            setattr(s.task.resources.limits, "memory_bytes", 64 << 20),
            setattr(s.task.resources.reservations, "memory_bytes", 128 << 20),
        ),
        "task.resources.reservations.memory_bytes",
        str(128 << 20),
    ),
    ("negative restart delay", lambda s: setattr(s.task.restart, "delay", -5 * SECOND), "task.restart.delay", "-5s"),
    ("negative restart window", lambda s: setattr(s.task.restart, "window", -SECOND), "task.restart.window", "-1s"),
    (
        "negative stop grace period",
        lambda s: setattr(s.task.container, "stop_grace_period", -SECOND),
        "task.container.stop_grace_period",
        "-1s",
    ),
    ("failure ratio above 1", lambda s: setattr(s.update, "max_failure_ratio", 1.5), "update.max_failure_ratio", "1.5"),
    ("negative rollback delay", lambda s: setattr(s.rollback, "delay", -SECOND), "rollback.delay", "-1s"),
    ("target port 0", lambda s: _set_ports(s, (0, 8080)), "endpoint.ports.target_port", "0"),
    ("published port too large", lambda s: _set_ports(s, (80, 70000)), "endpoint.ports.published_port", "70000"),
    ("duplicate published port", lambda s: _set_ports(s, (80, 8080), (81, 8080)), "endpoint.ports.published_port", "8080"),
    ("env without a key", lambda s: s.task.container.env.append("=value"), "task.container.env", '"=value"'),
    ("empty label key", lambda s: s.annotations.labels.__setitem__("", "x"), "annotations.labels key", '""'),
    ("unknown restart condition", lambda s: setattr(s.task.restart, "condition", 7), "task.restart.condition", "7"),
    (
        "duplicate mount target",
        lambda s: [s.task.container.mounts.add(type=objects_pb2.Mount.VOLUME, source="v", target="/data") for _ in range(2)],
        "task.container.mounts.target",
        '"/data"',
    ),
]


@pytest.mark.parametrize("change,field,shown", [case[1:] for case in BAD_SPECS], ids=[case[0] for case in BAD_SPECS])
async def test_a_bad_service_spec_is_refused_naming_field_and_value_and_the_store_is_unchanged(
    harness, change, field, shown
):
    await create(harness, web_spec("existing"))
    before = harness.snapshot()
    details = await expect_error(
        harness.control.CreateService(control_pb2.CreateServiceRequest(spec=_spec_with(change))),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert field in details and shown in details
    assert "\n" not in details
    assert harness.snapshot() == before


async def test_a_bad_constraint_is_refused(harness):
    spec = web_spec()
    spec.task.placement.constraints.append("node.role=manager")
    before = harness.snapshot()
    details = await expect_error(
        harness.control.CreateService(control_pb2.CreateServiceRequest(spec=spec)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "task.placement.constraints" in details and "node.role=manager" in details
    assert harness.snapshot() == before


async def test_a_bad_update_spec_is_refused_and_the_service_is_unchanged(harness):
    service = await create(harness, web_spec())
    before = harness.snapshot()
    bad = web_spec(image="")
    details = await expect_error(
        harness.control.UpdateService(
            control_pb2.UpdateServiceRequest(ref="web", version=service.meta.version, spec=bad)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "task.container.image" in details
    assert harness.snapshot() == before


# -- services -----------------------------------------------------------------------------------------


async def test_create_then_get_by_id_name_and_prefix(harness):
    service = await create(harness, web_spec())
    assert re.fullmatch(r"[0-9a-z]{25}", service.id)
    assert service.spec_version.index == 1
    assert service.meta.version.index == harness.store.applied_index
    for ref in (service.id, "web", service.id[:6]):
        got = (await harness.control.GetService(control_pb2.GetServiceRequest(ref=ref))).service
        assert got == service


async def test_create_without_a_name_gets_a_docker_like_one(harness):
    service = await create(harness, web_spec(name=""))
    assert re.fullmatch(r"[a-z]+_[a-z]+\d*", service.spec.annotations.name)


async def test_a_missing_service_is_not_found(harness):
    details = await expect_error(
        harness.control.GetService(control_pb2.GetServiceRequest(ref="nope")), grpc.StatusCode.NOT_FOUND
    )
    assert details == "no such service: nope"


async def test_an_ambiguous_prefix_is_an_invalid_argument(harness):
    def two_services(tx):
        for service_id, name in (("abc" + "1" * 22, "one"), ("abc" + "2" * 22, "two")):
            service = objects_pb2.Service(id=service_id, spec=web_spec(name))
            tx.create("service", service)

    await harness.store.update(two_services)
    details = await expect_error(
        harness.control.GetService(control_pb2.GetServiceRequest(ref="abc")), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "abc is ambiguous (2 matches found)" in details


async def test_a_duplicate_name_already_exists_and_proposes_nothing(harness):
    await create(harness, web_spec())
    before = harness.snapshot()
    details = await expect_error(
        harness.control.CreateService(control_pb2.CreateServiceRequest(spec=web_spec())), grpc.StatusCode.ALREADY_EXISTS
    )
    assert details == "service with name web already exists"
    assert harness.snapshot() == before


async def test_a_published_port_held_by_another_service_is_refused(harness):
    first = web_spec("first")
    first.endpoint.ports.add(target_port=80, published_port=8080)
    await create(harness, first)
    second = web_spec("second")
    second.endpoint.ports.add(target_port=81, published_port=8080)
    details = await expect_error(
        harness.control.CreateService(control_pb2.CreateServiceRequest(spec=second)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "8080" in details and "first" in details


async def test_update_keeps_the_previous_spec_and_a_stale_version_is_aborted(harness):
    service = await create(harness, web_spec())
    new_spec = web_spec(image="nginx:1.26")
    updated = (
        await harness.control.UpdateService(
            control_pb2.UpdateServiceRequest(ref="web", version=service.meta.version, spec=new_spec)
        )
    ).service
    assert updated.spec.task.container.image == "nginx:1.26"
    assert updated.previous_spec.task.container.image == "nginx:1.25"
    assert (updated.spec_version.index, updated.previous_spec_version.index) == (2, 1)
    assert updated.meta.version.index > service.meta.version.index

    before = harness.snapshot()
    details = await expect_error(
        harness.control.UpdateService(
            control_pb2.UpdateServiceRequest(ref="web", version=service.meta.version, spec=web_spec(replicas=9))
        ),
        grpc.StatusCode.ABORTED,
    )
    assert details.startswith("update out of sequence")
    assert harness.snapshot() == before


async def test_update_requires_a_version(harness):
    await create(harness, web_spec())
    details = await expect_error(
        harness.control.UpdateService(control_pb2.UpdateServiceRequest(ref="web", spec=web_spec())),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "version" in details


async def test_rollback_swaps_to_the_previous_spec_and_never_reuses_a_spec_version(harness):
    service = await create(harness, web_spec())
    details = await expect_error(
        harness.control.UpdateService(
            control_pb2.UpdateServiceRequest(
                ref="web", version=service.meta.version, rollback=control_pb2.UpdateServiceRequest.PREVIOUS
            )
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert details == "service web does not have a previous spec"

    v2 = (
        await harness.control.UpdateService(
            control_pb2.UpdateServiceRequest(ref="web", version=service.meta.version, spec=web_spec(image="nginx:2"))
        )
    ).service
    rolled = (
        await harness.control.UpdateService(
            control_pb2.UpdateServiceRequest(
                ref="web", version=v2.meta.version, rollback=control_pb2.UpdateServiceRequest.PREVIOUS
            )
        )
    ).service
    assert rolled.spec.task.container.image == "nginx:1.25" and rolled.spec_version.index == 1
    assert rolled.previous_spec.task.container.image == "nginx:2" and rolled.previous_spec_version.index == 2
    assert rolled.update_status.state == objects_pb2.UpdateStatus.ROLLBACK_STARTED

    v3 = (
        await harness.control.UpdateService(
            control_pb2.UpdateServiceRequest(ref="web", version=rolled.meta.version, spec=web_spec(image="nginx:3"))
        )
    ).service
    assert v3.spec_version.index == 3  # not 2: tasks of the nginx:2 spec must stay out of date


async def test_changing_mode_or_name_is_refused(harness):
    service = await create(harness, web_spec())
    global_spec = web_spec()
    global_spec.ClearField("replicated")
    getattr(global_spec, "global").SetInParent()
    details = await expect_error(
        harness.control.UpdateService(
            control_pb2.UpdateServiceRequest(ref="web", version=service.meta.version, spec=global_spec)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "mode change is not allowed" in details
    details = await expect_error(
        harness.control.UpdateService(
            control_pb2.UpdateServiceRequest(ref="web", version=service.meta.version, spec=web_spec("other"))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "renaming" in details and '"other"' in details


async def test_get_service_with_insert_defaults(harness):
    await create(harness, web_spec())
    plain = (await harness.control.GetService(control_pb2.GetServiceRequest(ref="web"))).service
    assert not plain.spec.HasField("update") and not plain.spec.task.HasField("restart")
    shown = (await harness.control.GetService(control_pb2.GetServiceRequest(ref="web", insert_defaults=True))).service
    assert shown.spec.update.parallelism == 1 and shown.spec.update.monitor == 5 * SECOND
    assert shown.spec.update.failure_action == objects_pb2.UpdateConfig.PAUSE
    assert shown.spec.rollback.order == objects_pb2.UpdateConfig.STOP_FIRST
    assert shown.spec.task.restart.condition == objects_pb2.RestartPolicy.ANY
    assert shown.spec.task.restart.delay == 5 * SECOND
    assert shown.spec.task.container.stop_grace_period == 10 * SECOND
    stored = harness.store.view().get_service(plain.id)
    assert not stored.spec.HasField("update")  # defaults are shown, never written


async def test_list_services_filters_and_statuses(harness):
    web = await create(harness, web_spec("web", replicas=3))
    labelled = web_spec("worker", replicas=1)
    labelled.annotations.labels["tier"] = "back"
    worker = await create(harness, labelled)
    global_spec = web_spec("agent")
    global_spec.ClearField("replicated")
    getattr(global_spec, "global").SetInParent()
    agent = await create(harness, global_spec)
    constrained_spec = web_spec("probe")
    constrained_spec.ClearField("replicated")
    getattr(constrained_spec, "global").SetInParent()
    constrained_spec.task.placement.constraints.append("node.hostname!=beta")
    await create(harness, constrained_spec)

    def world(tx):
        tx.create("node", make_node("n1" + "0" * 23, "alpha"))
        tx.create("node", make_node("n2" + "0" * 23, "beta"))
        tx.create("node", make_node("n3" + "0" * 23, "gamma", state=objects_pb2.NodeStatus.DOWN))
        tx.create("task", make_task("t1", web, "n1", slot=1))
        tx.create("task", make_task("t2", web, "n2", slot=2))
        tx.create("task", make_task("t3", web, "n2", slot=3, state=objects_pb2.PREPARING))
        tx.create("task", make_task("t4", web, "n1", slot=1, state=RUNNING, desired=SHUTDOWN))
        tx.create("task", make_task("t5", agent, "n1", slot=0))

    await harness.store.update(world)
    listed = await harness.control.ListServices(control_pb2.ListServicesRequest())
    by_name = {s.spec.annotations.name: st for s, st in zip(listed.services, listed.statuses, strict=True)}
    assert (by_name["web"].running_tasks, by_name["web"].desired_tasks) == (2, 3)
    assert (by_name["worker"].running_tasks, by_name["worker"].desired_tasks) == (0, 1)
    assert (by_name["agent"].running_tasks, by_name["agent"].desired_tasks) == (1, 2)  # gamma is down
    assert by_name["probe"].desired_tasks == 1  # only alpha: beta is excluded, gamma is down
    assert all(st.service_id == s.id for s, st in zip(listed.services, listed.statuses, strict=True))

    async def names(**filters):
        request = control_pb2.ListServicesRequest(filters=control_pb2.ListServicesRequest.Filters(**filters))
        return sorted(s.spec.annotations.name for s in (await harness.control.ListServices(request)).services)

    assert await names(names=["w"]) == ["web", "worker"]
    assert await names() == ["agent", "probe", "web", "worker"]
    assert await names(ids=[worker.id[:10]]) == ["worker"]
    assert await names(labels={"tier": ""}) == ["worker"]
    assert await names(labels={"tier": "front"}) == []


async def test_list_and_get_tasks_with_filters_including_up_to_date(harness):
    service = await create(harness, web_spec())
    updated = (
        await harness.control.UpdateService(
            control_pb2.UpdateServiceRequest(ref="web", version=service.meta.version, spec=web_spec(image="nginx:2"))
        )
    ).service

    def tasks(tx):
        tx.create("task", make_task("old1", updated, "n1", slot=1, spec_version=1, desired=SHUTDOWN))
        tx.create("task", make_task("new1", updated, "n1", slot=1))
        tx.create("task", make_task("new2", updated, "n2", slot=2))

    await harness.store.update(tasks)

    async def ids(**filters):
        request = control_pb2.ListTasksRequest(filters=control_pb2.ListTasksRequest.Filters(**filters))
        return sorted(t.id for t in (await harness.control.ListTasks(request)).tasks)

    assert await ids() == ["new1", "new2", "old1"]
    assert await ids(up_to_date=True) == ["new1", "new2"]
    assert await ids(service_ids=[updated.id], desired_states=[SHUTDOWN]) == ["old1"]
    assert await ids(node_ids=["n2"]) == ["new2"]
    assert await ids(ids=["new"]) == ["new1", "new2"]
    task = (await harness.control.GetTask(control_pb2.GetTaskRequest(ref="old"))).task
    assert task.id == "old1"
    details = await expect_error(harness.control.GetTask(control_pb2.GetTaskRequest(ref="zzz")), grpc.StatusCode.NOT_FOUND)
    assert details == "no such task: zzz"


async def test_remove_service(harness):
    await create(harness, web_spec())
    await harness.control.RemoveService(control_pb2.RemoveServiceRequest(ref="web"))
    assert harness.store.view().count("service") == 0
    details = await expect_error(
        harness.control.RemoveService(control_pb2.RemoveServiceRequest(ref="web")), grpc.StatusCode.NOT_FOUND
    )
    assert details == "no such service: web"


# -- nodes ----------------------------------------------------------------------------------------------


async def _three_nodes(h: Harness):
    def nodes(tx):
        tx.create("node", make_node("m" * 25, "leader", role=objects_pb2.MANAGER))
        tx.create("node", make_node("w1" + "0" * 23, "worker-1"))
        tx.create("node", make_node("w2" + "0" * 23, "worker-2", state=objects_pb2.NodeStatus.DOWN))

    await h.store.update(nodes)


async def test_list_nodes_filters(harness):
    await _three_nodes(harness)

    async def hostnames(**filters):
        request = control_pb2.ListNodesRequest(filters=control_pb2.ListNodesRequest.Filters(**filters))
        return [n.description.hostname for n in (await harness.control.ListNodes(request)).nodes]

    assert await hostnames() == ["leader", "worker-1", "worker-2"]
    assert await hostnames(names=["worker"]) == ["worker-1", "worker-2"]
    assert await hostnames(ids=["w2"]) == ["worker-2"]
    assert await hostnames(roles=[objects_pb2.MANAGER]) == ["leader"]
    node = (await harness.control.GetNode(control_pb2.GetNodeRequest(ref="worker-1"))).node
    assert node.id.startswith("w1")


async def test_update_node_sets_availability_and_refuses_demoting_the_last_manager(harness):
    await _three_nodes(harness)
    node = (await harness.control.GetNode(control_pb2.GetNodeRequest(ref="worker-1"))).node
    spec = objects_pb2.NodeSpec()
    spec.CopyFrom(node.spec)
    spec.availability = objects_pb2.NodeSpec.DRAIN
    spec.annotations.labels["zone"] = "a"
    updated = (
        await harness.control.UpdateNode(control_pb2.UpdateNodeRequest(ref=node.id, version=node.meta.version, spec=spec))
    ).node
    assert updated.spec.availability == objects_pb2.NodeSpec.DRAIN
    assert dict(updated.spec.annotations.labels) == {"zone": "a"}
    await expect_error(
        harness.control.UpdateNode(control_pb2.UpdateNodeRequest(ref=node.id, version=node.meta.version, spec=spec)),
        grpc.StatusCode.ABORTED,
    )

    manager = (await harness.control.GetNode(control_pb2.GetNodeRequest(ref="leader"))).node
    demoted = objects_pb2.NodeSpec()
    demoted.CopyFrom(manager.spec)
    demoted.desired_role = objects_pb2.WORKER
    before = harness.snapshot()
    details = await expect_error(
        harness.control.UpdateNode(
            control_pb2.UpdateNodeRequest(ref="leader", version=manager.meta.version, spec=demoted)
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "last manager" in details
    assert harness.snapshot() == before

    promoted = objects_pb2.NodeSpec()
    promoted.CopyFrom(updated.spec)
    promoted.desired_role = objects_pb2.MANAGER
    result = await harness.control.UpdateNode(
        control_pb2.UpdateNodeRequest(ref="worker-1", version=updated.meta.version, spec=promoted)
    )
    assert result.node.spec.desired_role == objects_pb2.MANAGER
    result = await harness.control.UpdateNode(
        control_pb2.UpdateNodeRequest(ref="leader", version=manager.meta.version, spec=demoted)
    )
    assert result.node.spec.desired_role == objects_pb2.WORKER


async def test_update_node_refuses_an_unknown_availability(harness):
    await _three_nodes(harness)
    node = (await harness.control.GetNode(control_pb2.GetNodeRequest(ref="worker-1"))).node
    spec = objects_pb2.NodeSpec(availability=9)
    details = await expect_error(
        harness.control.UpdateNode(control_pb2.UpdateNodeRequest(ref=node.id, version=node.meta.version, spec=spec)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "availability 9" in details


async def test_remove_node_rules(harness):
    await _three_nodes(harness)
    details = await expect_error(
        harness.control.RemoveNode(control_pb2.RemoveNodeRequest(ref="leader", force=True)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal" in details
    details = await expect_error(
        harness.control.RemoveNode(control_pb2.RemoveNodeRequest(ref="worker-1")), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert details == "node worker-1 is not down and can't be removed"
    await harness.control.RemoveNode(control_pb2.RemoveNodeRequest(ref="worker-2"))
    await harness.control.RemoveNode(control_pb2.RemoveNodeRequest(ref="worker-1", force=True))
    assert [n.description.hostname for n in harness.store.view().nodes()] == ["leader"]
    details = await expect_error(
        harness.control.GetNode(control_pb2.GetNodeRequest(ref="worker-1")), grpc.StatusCode.NOT_FOUND
    )
    assert details == "no such node: worker-1"


# -- cluster --------------------------------------------------------------------------------------------


async def test_get_cluster_never_returns_the_ca_key(harness):
    stored = await add_cluster(harness.store)
    cluster = (await harness.control.GetCluster(control_pb2.GetClusterRequest())).cluster
    assert cluster.root_ca.ca_key == b""
    assert cluster.root_ca.ca_cert == stored.root_ca.ca_cert
    assert cluster.root_ca.join_tokens == stored.root_ca.join_tokens
    assert stored.root_ca.ca_key  # the store keeps it
    by_name = (await harness.control.GetCluster(control_pb2.GetClusterRequest(ref="default"))).cluster
    assert by_name.root_ca.ca_key == b""


async def test_update_cluster_rotates_one_token_and_checks_version_and_spec(harness):
    stored = await add_cluster(harness.store)
    spec = objects_pb2.ClusterSpec()
    spec.CopyFrom(stored.spec)
    spec.orchestration.task_history_retention_limit = 2
    updated = (
        await harness.control.UpdateCluster(
            control_pb2.UpdateClusterRequest(version=stored.meta.version, spec=spec, rotate_worker_token=True)
        )
    ).cluster
    old, new = stored.root_ca.join_tokens, updated.root_ca.join_tokens
    assert new.manager == old.manager and new.worker != old.worker
    assert parse_join_token(new.worker).ca_digest == parse_join_token(old.worker).ca_digest
    assert updated.spec.orchestration.task_history_retention_limit == 2
    assert updated.root_ca.ca_key == b""
    assert harness.store.view().get_cluster().root_ca.ca_key == stored.root_ca.ca_key

    await expect_error(
        harness.control.UpdateCluster(control_pb2.UpdateClusterRequest(version=stored.meta.version, spec=spec)),
        grpc.StatusCode.ABORTED,
    )
    spec.ca_config.node_cert_expiry = 30 * 60 * SECOND
    before = harness.snapshot()
    details = await expect_error(
        harness.control.UpdateCluster(control_pb2.UpdateClusterRequest(version=updated.meta.version, spec=spec)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "ca_config.node_cert_expiry 30m0s" in details
    assert harness.snapshot() == before


# -- leadership, logs, internal errors ------------------------------------------------------------------


@pytest.mark.parametrize("error", [NotLeader(), LeadershipLost()], ids=["not-leader", "leadership-lost"])
async def test_without_a_leader_calls_are_unavailable(tmp_path, error):
    calls = []

    async def gate(rpc: str) -> None:
        calls.append(rpc)
        raise error

    async with serve(tmp_path, gate=gate) as h:
        details = await expect_error(
            h.control.CreateService(control_pb2.CreateServiceRequest(spec=web_spec())), grpc.StatusCode.UNAVAILABLE
        )
        assert details.startswith("the swarm does not have a leader")
        await expect_error(h.control.ListServices(control_pb2.ListServicesRequest()), grpc.StatusCode.UNAVAILABLE)
        assert calls == ["CreateService", "ListServices"]
        assert h.store.applied_index == 1  # the ingress network only


async def test_an_unexpected_error_is_internal_and_says_so(tmp_path):
    async def gate(rpc: str) -> None:
        raise RuntimeError("boom")

    async with serve(tmp_path, gate=gate) as h:
        details = await expect_error(h.control.GetCluster(control_pb2.GetClusterRequest()), grpc.StatusCode.INTERNAL)
        assert "GetCluster" in details and "boom" in details


async def test_service_logs_resolve_a_service_then_a_task(tmp_path):
    broker = FakeLogBroker()
    async with serve(tmp_path, broker=broker) as h:
        service = await create(h, web_spec())
        await h.store.update(lambda tx: tx.create("task", make_task("task00001", service, "n1")))

        received = [m async for m in h.control.ServiceLogs(control_pb2.ServiceLogsRequest(ref="web"))]
        assert [m.messages[0].data for m in received] == [b"hello\n", b"world\n"]
        assert list(broker.selectors[-1].service_ids) == [service.id]

        [m async for m in h.control.ServiceLogs(control_pb2.ServiceLogsRequest(ref="task0"))]
        assert list(broker.selectors[-1].task_ids) == ["task00001"]
        assert broker.closed == 2

        call = h.control.ServiceLogs(control_pb2.ServiceLogsRequest(ref="ghost"))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            [m async for m in call]
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert caught.value.details() == "no such service or task: ghost"


async def test_service_logs_without_a_broker_are_unavailable(harness):
    await create(harness, web_spec())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        [m async for m in harness.control.ServiceLogs(control_pb2.ServiceLogsRequest(ref="web"))]
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
