"""What the dispatcher tells each node about its overlay networks: the pure view, then the stream."""

from __future__ import annotations

import asyncio

import grpc

from swarmpy.api import dispatcher_pb2, dispatcher_pb2_grpc, objects_pb2
from swarmpy.manager.allocator import Allocator
from swarmpy.manager.dispatcher.network_view import TaskEndpoints, node_network_view
from swarmpy.manager.orchestrator.common import new_task
from swarmpy.manager.store import MemoryStore
from tests.manager.test_dispatcher import as_node, edit, make_node, open_session, running_manager
from tests.manager.test_network_allocation import create, make_network, on_networks
from tests.manager.test_orchestrator_support import eventually, make_service, running


def node_at(node_id: str, addr: str, data_path_addr: str = "") -> objects_pb2.Node:
    node = make_node(node_id, state=objects_pb2.NodeStatus.READY)
    node.status.addr = addr
    node.description.data_path_addr = data_path_addr
    return node


async def placed(store, tasks, nodes, state=objects_pb2.RUNNING):
    """Allocate the tasks (the real allocator), then put each on its node in the given state."""
    async with running(Allocator(store)):
        await create(store, "task", *tasks)
        await eventually(lambda: all(store.view().get_task(t.id).networks for t in tasks), what="allocated")
    for task, node_id in zip(tasks, nodes):
        def place(t, node_id=node_id):
            t.node_id = node_id
            t.status.state = state
        await edit(store, "task", task.id, place)


async def cluster_with_api(store):
    """Three nodes, network `backend`, service `api` with one task per node and an alias."""
    for node in (node_at("n1", "192.168.50.1"), node_at("n2", "192.168.50.2", "172.31.0.2"), node_at("n3", "192.168.50.3")):
        await create(store, "node", node)
    net = make_network("backend")
    service = on_networks(make_service("api", replicas=3), net, aliases=["web"])
    async with running(Allocator(store)):
        await create(store, "network", net)
        await create(store, "service", service)
        await eventually(lambda: store.view().get_service(service.id).endpoint.virtual_ips, what="vip")
    tasks = [new_task(None, service, slot) for slot in (1, 2, 3)]
    await placed(store, tasks, ["n1", "n2", "n3"])
    return net, service, tasks


async def test_a_node_sees_its_networks_its_endpoints_every_remote_peer_and_the_dns_records():
    store = MemoryStore()
    net, service, tasks = await cluster_with_api(store)
    stored = {t.id: store.view().get_task(t.id) for t in tasks}
    view = node_network_view(store.view(), "n1")
    assert view.data_path_port == 4789 and view.underlay_addr == "192.168.50.1"
    [network] = view.networks
    allocated = store.view().get_network(net.id)
    assert (network.id, network.name, network.vni) == (net.id, "backend", 4096)
    assert (network.subnet, network.gateway, network.internal, network.mtu) == ("10.0.0.0/24", "10.0.0.1", False, 1450)
    [local] = network.local
    assert local.task_id == tasks[0].id and local.address == stored[tasks[0].id].networks[0].addresses[0]
    assert local.task_name == f"api.1.{tasks[0].id}" and list(local.aliases) == ["web"]
    ip = local.address.split("/")[0]
    assert local.mac == "02:42:" + ":".join(f"{int(b):02x}" for b in ip.split("."))
    peers = {p.task_id: p for p in network.peers}
    assert set(peers) == {tasks[1].id, tasks[2].id}
    assert peers[tasks[1].id].underlay_addr == "172.31.0.2"  # n2's --data-path-addr
    assert peers[tasks[2].id].underlay_addr == "192.168.50.3"  # n3's session address
    [record] = network.services
    vip = store.view().get_service(service.id).endpoint.virtual_ips[0].addr.split("/")[0]
    assert (record.name, record.vip, record.dnsrr, list(record.aliases)) == ("api", vip, False, ["web"])
    assert sorted(t.ip for t in record.tasks) == sorted(a.split("/")[0] for t in stored.values() for a in t.networks[0].addresses)
    assert allocated.ipam.configs[0].subnet == network.subnet


async def test_only_running_tasks_are_in_dns_and_nodes_without_tasks_see_nothing():
    store = MemoryStore()
    net, service, tasks = await cluster_with_api(store)
    await edit(store, "task", tasks[2].id, lambda t: setattr(t.status, "state", objects_pb2.STARTING))
    [record] = node_network_view(store.view(), "n1").networks[0].services
    assert {t.task_id for t in record.tasks} == {tasks[0].id, tasks[1].id}
    # A terminated task leaves the peers too (its address is free).
    await edit(store, "task", tasks[2].id, lambda t: setattr(t.status, "state", objects_pb2.FAILED))
    assert {p.task_id for p in node_network_view(store.view(), "n1").networks[0].peers} == {tasks[1].id}
    assert not node_network_view(store.view(), "n3").networks
    await create(store, "node", node_at("n4", "192.168.50.4"))
    assert not node_network_view(store.view(), "n4").networks


async def test_the_shared_endpoint_memo_never_changes_a_view():
    """The dispatcher's streams share one TaskEndpoints: after every kind of change that reaches an
    endpoint (a task's state, its address, its node's underlay address, its removal) each node's view
    with the memo is the view computed afresh."""
    store = MemoryStore()
    net, service, tasks = await cluster_with_api(store)
    memo = TaskEndpoints()

    def same_views():
        for node_id in ("n1", "n2", "n3"):
            assert node_network_view(store.view(), node_id, memo) == node_network_view(store.view(), node_id)

    same_views()
    await edit(store, "task", tasks[1].id, lambda t: setattr(t.status, "state", objects_pb2.STARTING))
    same_views()
    moved = "10.0.0.200/24"
    await edit(store, "task", tasks[2].id, lambda t: t.networks[0].addresses.__setitem__(0, moved))
    same_views()
    assert moved in {p.address for p in node_network_view(store.view(), "n1", memo).networks[0].peers}
    await edit(store, "node", "n2", lambda n: setattr(n.description, "data_path_addr", "172.31.0.9"))
    same_views()
    peers = {p.task_id: p for p in node_network_view(store.view(), "n1", memo).networks[0].peers}
    assert peers[tasks[1].id].underlay_addr == "172.31.0.9"

    def remove(tx):
        tx.delete("task", tasks[2].id)

    await store.update(remove)
    same_views()
    assert tasks[2].id not in memo._entries  # a removed task is forgotten at the next full walk


async def test_dnsrr_services_have_no_vip_in_the_view():
    store = MemoryStore()
    await create(store, "node", node_at("n1", "192.168.50.1"))
    net = make_network("rr")
    net.spec.driver_config.options["com.docker.network.driver.mtu"] = "1400"
    service = on_networks(make_service("rr", replicas=1), net)
    service.spec.endpoint.mode = objects_pb2.EndpointSpec.DNSRR
    async with running(Allocator(store)):
        await create(store, "network", net)
        await create(store, "service", service)
    task = new_task(None, service, 1)
    await placed(store, [task], ["n1"])
    [network] = node_network_view(store.view(), "n1").networks
    assert network.mtu == 1350  # the driver's mtu option minus the VXLAN overhead
    [record] = network.services
    assert record.dnsrr and record.vip == "" and len(record.tasks) == 1


async def test_the_assignments_stream_carries_the_view_and_follows_remote_tasks():
    store = MemoryStore()
    net, service, tasks = await cluster_with_api(store)
    async with running_manager(store) as manager, grpc.aio.insecure_channel(manager.addr) as channel:
        stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        session, first = await open_session(stub, "n1")
        call = stub.Assignments(dispatcher_pb2.AssignmentsRequest(session_id=first.session_id), metadata=as_node("n1"))

        async def next_message():
            return await asyncio.wait_for(call.read(), 10)

        complete = await next_message()
        assert complete.type == dispatcher_pb2.AssignmentsMessage.COMPLETE and complete.HasField("network_view")
        assert len(complete.network_view.networks[0].services[0].tasks) == 3
        # A task on ANOTHER node stops: n1 hears of it (no task change of its own) within the batch window.
        await edit(store, "task", tasks[2].id, lambda t: setattr(t.status, "state", objects_pb2.COMPLETE))
        update = await next_message()
        assert update.type == dispatcher_pb2.AssignmentsMessage.INCREMENTAL and not update.changes
        network = update.network_view.networks[0]
        assert {t.task_id for t in network.services[0].tasks} == {tasks[0].id, tasks[1].id}
        assert {p.task_id for p in network.peers} == {tasks[1].id}
        # A change that does not alter the view sends nothing.
        await edit(store, "task", tasks[2].id, lambda t: setattr(t.status, "message", "still gone"))
        try:
            extra = await asyncio.wait_for(call.read(), 0.5)
        except asyncio.TimeoutError:
            extra = None
        assert extra is None, extra
        call.cancel()
        session.cancel()


async def test_a_node_change_wakes_only_its_own_stream_unless_others_can_see_that_node():
    from swarmpy.manager.dispatcher.network_view import EVERY_NODE, network_view_audience
    from swarmpy.api import objects_pb2 as pb

    store = MemoryStore()
    net, service, tasks = await cluster_with_api(store)  # n1..n3 each run a task on `backend`
    joining = node_at("n4", "192.168.50.4")
    await create(store, "node", joining)
    view = store.view()
    # A new node with no task on an overlay, and nothing published: only its own view changes.
    assert network_view_audience(view, "node", None, joining) == {"n4"}
    moved = pb.Node()
    moved.CopyFrom(joining)
    moved.status.addr = "192.168.50.44"
    assert network_view_audience(view, "node", joining, moved) == {"n4"}
    # A node whose tasks are on an overlay: its underlay address is in every peer's view.
    n1 = view.get_node("n1")
    n1_moved = pb.Node()
    n1_moved.CopyFrom(n1)
    n1_moved.status.addr = "192.168.50.11"
    assert network_view_audience(view, "node", n1, n1_moved) is EVERY_NODE
    # A change no view shows (the node's labels): nobody.
    relabelled = pb.Node()
    relabelled.CopyFrom(joining)
    relabelled.spec.annotations.labels["x"] = "y"
    assert network_view_audience(view, "node", joining, relabelled) == set()
    # Tasks and services with networks concern everyone, as before.
    assert network_view_audience(view, "task", None, view.get_task(tasks[0].id)) is EVERY_NODE
    # Once a service publishes through ingress, every node is a routing-mesh peer of every other.
    published = make_service("web", replicas=1)
    published.spec.endpoint.ports.add(target_port=80, published_port=8080, publish_mode=pb.PortConfig.INGRESS)
    await create(store, "service", published)
    assert network_view_audience(store.view(), "node", None, joining) is EVERY_NODE
