"""Networks through the Control stubs: create/inspect/list/remove with docker's messages, bad input
refused with nothing written, service attachments resolved to IDs, rm refused while in use."""

from __future__ import annotations

import grpc
import pytest

from swarmpy.api import control_pb2, objects_pb2
from swarmpy.manager.allocator import Allocator
from tests.manager.test_controlapi import serve, web_spec
from tests.manager.test_orchestrator_support import eventually, running

INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
async def harness(tmp_path):
    async with serve(tmp_path) as h:
        yield h


def network_spec(name="backend", subnet="", gateway="", ip_range="", **labels) -> objects_pb2.NetworkSpec:
    spec = objects_pb2.NetworkSpec()
    spec.annotations.name = name
    spec.annotations.labels.update(labels)
    spec.driver_config.name = "overlay"
    if subnet or gateway or ip_range:
        spec.ipam.configs.add(subnet=subnet, gateway=gateway, range=ip_range)
    return spec


async def create_network(h, *args, **kwargs) -> objects_pb2.Network:
    request = control_pb2.CreateNetworkRequest(spec=network_spec(*args, **kwargs))
    return (await h.control.CreateNetwork(request)).network


async def expect_error(call, code, *fragments):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    for fragment in fragments:
        assert fragment in caught.value.details(), caught.value.details()
    assert "\n" not in caught.value.details()


async def test_create_get_list_and_remove(harness):
    h = harness
    created = await create_network(h, "backend", subnet="10.20.0.0/16", tier="db")
    other = await create_network(h, "frontend")
    assert created.spec.driver_config.name == "overlay"
    got = (await h.control.GetNetwork(control_pb2.GetNetworkRequest(ref="backend"))).network
    assert got.id == created.id
    assert (await h.control.GetNetwork(control_pb2.GetNetworkRequest(ref=created.id[:6]))).network.id == created.id
    listed = (await h.control.ListNetworks(control_pb2.ListNetworksRequest())).networks
    assert [n.spec.annotations.name for n in listed] == ["backend", "frontend", "ingress"]  # swarm init's
    filtered = await h.control.ListNetworks(control_pb2.ListNetworksRequest(
        filters=control_pb2.ListNetworksRequest.Filters(labels={"tier": "db"})))
    assert [n.id for n in filtered.networks] == [created.id]
    await h.control.RemoveNetwork(control_pb2.RemoveNetworkRequest(ref="frontend"))
    assert h.store.view().get_network(other.id) is None
    await expect_error(h.control.GetNetwork(control_pb2.GetNetworkRequest(ref="frontend")),
                       grpc.StatusCode.NOT_FOUND, "network frontend not found")


@pytest.mark.parametrize("spec_args, fragments", [
    (dict(subnet="10.0.0.0/33"), ["ipam.configs.subnet", "10.0.0.0/33", "invalid CIDR address"]),
    (dict(subnet="banana"), ["ipam.configs.subnet", '"banana"']),
    (dict(subnet="10.0.0.1/24"), ["ipam.configs.subnet", "host bits"]),
    (dict(subnet="10.1.0.0/24", gateway="10.2.0.1"), ["ipam.configs.gateway", "10.2.0.1", "not in subnet 10.1.0.0/24"]),
    (dict(subnet="10.1.0.0/24", gateway="nope"), ["ipam.configs.gateway", "not an IPv4 address"]),
    (dict(subnet="10.1.0.0/24", ip_range="10.1.0.0/23"), ["ipam.configs.range", "not inside subnet 10.1.0.0/24"]),
    (dict(subnet="10.1.0.0/31"), ["ipam.configs.subnet", "too small"]),
    (dict(gateway="10.1.0.1"), ["ipam.configs.subnet", "--subnet"]),
    (dict(name="bad name!"), ["annotations.name", '"bad name!"']),
])
async def test_bad_network_specs_are_refused_and_nothing_is_written(harness, spec_args, fragments):
    before = harness.store.applied_index
    args = {"name": "net", **spec_args}
    await expect_error(harness.control.CreateNetwork(control_pb2.CreateNetworkRequest(spec=network_spec(**args))),
                       INVALID, *fragments)
    assert harness.store.applied_index == before


async def test_other_drivers_duplicates_and_overlaps_are_refused(harness):
    h = harness
    spec = network_spec("br")
    spec.driver_config.name = "bridge"
    await expect_error(h.control.CreateNetwork(control_pb2.CreateNetworkRequest(spec=spec)), INVALID, "driver_config.name", '"bridge"')
    await create_network(h, "taken", subnet="10.30.0.0/16")
    await expect_error(h.control.CreateNetwork(control_pb2.CreateNetworkRequest(spec=network_spec("taken"))),
                       grpc.StatusCode.ALREADY_EXISTS, "network with name taken already exists")
    before = h.store.applied_index
    await expect_error(h.control.CreateNetwork(control_pb2.CreateNetworkRequest(spec=network_spec("inner", subnet="10.30.5.0/24"))),
                       INVALID, "ipam.configs.subnet", "10.30.5.0/24", "overlaps with 10.30.0.0/16 of network taken")
    assert h.store.applied_index == before


async def test_an_allocated_subnet_is_also_an_overlap(harness):
    h = harness
    async with running(Allocator(h.store)):
        auto = await create_network(h, "auto")
        await eventually(lambda: h.store.view().get_network(auto.id).ipam.configs, what="allocated")
    subnet = h.store.view().get_network(auto.id).ipam.configs[0].subnet
    assert subnet == "10.0.1.0/24"  # as docker's: the ingress network holds 10.0.0.0/24
    await expect_error(h.control.CreateNetwork(control_pb2.CreateNetworkRequest(spec=network_spec("mine", subnet="10.0.1.0/25"))),
                       INVALID, "overlaps with 10.0.1.0/24 of network auto")


def attached(spec: objects_pb2.ServiceSpec, *targets, aliases=()) -> objects_pb2.ServiceSpec:
    for target in targets:
        spec.task.networks.add(target=target, aliases=list(aliases))
    return spec


async def test_services_name_networks_which_are_resolved_to_ids_and_checked(harness):
    h = harness
    net = await create_network(h, "backend")
    service = (await h.control.CreateService(control_pb2.CreateServiceRequest(
        spec=attached(web_spec("api"), "backend", aliases=["db-api"])))).service
    assert [a.target for a in service.spec.task.networks] == [net.id]
    assert list(service.spec.task.networks[0].aliases) == ["db-api"]
    before = h.store.applied_index
    await expect_error(h.control.CreateService(control_pb2.CreateServiceRequest(spec=attached(web_spec("x"), "nosuch"))),
                       grpc.StatusCode.NOT_FOUND, "network nosuch not found")
    await expect_error(h.control.CreateService(control_pb2.CreateServiceRequest(spec=attached(web_spec("y"), "backend", aliases=["not_a_label"]))),
                       INVALID, "task.networks[0].aliases", '"not_a_label"', "DNS label")
    await expect_error(h.control.CreateService(control_pb2.CreateServiceRequest(spec=attached(web_spec("z"), "backend", net.id))),
                       INVALID, "more than once")
    bad_dns = web_spec("d")
    bad_dns.task.container.dns_config.nameservers.append("dns.example")
    await expect_error(h.control.CreateService(control_pb2.CreateServiceRequest(spec=bad_dns)),
                       INVALID, "task.container.dns_config.nameservers", '"dns.example"')
    bad_host = web_spec("e")
    bad_host.task.container.hosts.append("nohost")
    await expect_error(h.control.CreateService(control_pb2.CreateServiceRequest(spec=bad_host)), INVALID, "task.container.hosts")
    assert h.store.applied_index == before


async def test_a_network_in_use_cannot_be_removed(harness):
    h = harness
    net = await create_network(h, "backend")
    service = (await h.control.CreateService(control_pb2.CreateServiceRequest(spec=attached(web_spec("api"), "backend")))).service
    await expect_error(h.control.RemoveNetwork(control_pb2.RemoveNetworkRequest(ref="backend")),
                       grpc.StatusCode.FAILED_PRECONDITION, f"network {net.id} is in use by service {service.id}")
    assert h.store.view().get_network(net.id) is not None
    # Updating the service off the network frees it (an update by name, as the CLI's --network-rm does).
    spec = objects_pb2.ServiceSpec()
    spec.CopyFrom(service.spec)
    del spec.task.networks[:]
    await h.control.UpdateService(control_pb2.UpdateServiceRequest(ref=service.id, version=service.meta.version, spec=spec))
    await h.control.RemoveNetwork(control_pb2.RemoveNetworkRequest(ref="backend"))
    assert h.store.view().get_network(net.id) is None


def _task_on(network: objects_pb2.Network, service_id: str, desired: int) -> objects_pb2.Task:
    task = objects_pb2.Task(id=f"task-{service_id}", service_id=service_id, node_id="node-1", desired_state=desired)
    task.status.state = objects_pb2.RUNNING
    task.networks.add().network.CopyFrom(network)
    return task


async def test_removing_a_network_waits_for_the_tasks_of_removed_services_to_let_go(harness):
    """docker stack rm: services removed, then at once their networks, while the tasks are still stopping."""
    import asyncio

    h = harness
    net = await create_network(h, "stacknet")
    leaving = _task_on(net, "gone-service", objects_pb2.RUNNING)  # its service is gone; the orchestrator is behind
    await h.store.update(lambda tx: tx.create("task", leaving))

    async def worker_stops_it() -> None:
        await asyncio.sleep(0.5)
        stopped = objects_pb2.Task()
        stopped.CopyFrom(h.store.view().get("task", leaving.id))
        stopped.desired_state = objects_pb2.REMOVE
        stopped.status.state = objects_pb2.SHUTDOWN
        await h.store.update(lambda tx: tx.update("task", stopped))

    stopping = asyncio.create_task(worker_stops_it())
    started = asyncio.get_running_loop().time()
    await h.control.RemoveNetwork(control_pb2.RemoveNetworkRequest(ref="stacknet"))
    await stopping
    assert asyncio.get_running_loop().time() - started >= 0.4  # it waited for the task, not refused
    assert h.store.view().get_network(net.id) is None


async def test_a_running_task_of_a_live_service_still_refuses_at_once(harness):
    h = harness
    net = await create_network(h, "busy")
    service = (await h.control.CreateService(control_pb2.CreateServiceRequest(spec=web_spec("holder")))).service
    held = _task_on(net, service.id, objects_pb2.RUNNING)
    await h.store.update(lambda tx: tx.create("task", held))
    await expect_error(h.control.RemoveNetwork(control_pb2.RemoveNetworkRequest(ref="busy")),
                       grpc.StatusCode.FAILED_PRECONDITION, f"network {net.id} is in use by task {held.id}")
    assert h.store.view().get_network(net.id) is not None
