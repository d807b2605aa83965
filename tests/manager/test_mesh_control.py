"""The routing mesh's control side (issue 12): the ingress network, its allocations, what each node is told,
and which endpoint changes restart tasks."""

from __future__ import annotations

import grpc
import pytest

from swarmpy.api import control_pb2, objects_pb2
from swarmpy.cli.value_parsers import parse_port
from swarmpy.manager.allocator import Allocator
from swarmpy.manager.allocator.networks import default_ingress_network, node_ingress_address
from swarmpy.manager.dispatcher.network_view import node_network_view
from swarmpy.manager.orchestrator.common import is_task_dirty, new_task
from swarmpy.manager.store import MemoryStore
from tests.manager.test_allocator import publish
from tests.manager.test_controlapi import expect_error, harness, web_spec  # noqa: F401 - the fixture
from tests.manager.test_network_allocation import create
from tests.manager.test_network_view import node_at, placed
from tests.manager.test_orchestrator_support import eventually, make_service, running

INGRESS = objects_pb2.PortConfig.INGRESS
HOST = objects_pb2.PortConfig.HOST


async def mesh_cluster(store):
    """Three nodes, the ingress network, service `web` publishing 8080->80 with two tasks on n2 and n3."""
    ingress = default_ingress_network()
    for node in (node_at("n1", "192.168.50.1"), node_at("n2", "192.168.50.2"), node_at("n3", "192.168.50.3")):
        await create(store, "node", node)
    service = publish(make_service("web", replicas=2), 80, 8080)
    async with running(Allocator(store)):
        await create(store, "network", ingress)
        await create(store, "service", service)
        await eventually(
            lambda: all(node_ingress_address(n, ingress.id) for n in store.view().nodes())
            and store.view().get_service(service.id).endpoint.virtual_ips,
            what="node addresses and the ingress VIP",
        )
    tasks = [new_task(None, service, slot) for slot in (1, 2)]
    await placed(store, tasks, ["n2", "n3"])
    return ingress, service, tasks


async def test_ingress_allocations_nodes_vip_and_task_addresses():
    store = MemoryStore()
    ingress, service, tasks = await mesh_cluster(store)
    view = store.view()
    addresses = [node_ingress_address(n, ingress.id) for n in view.nodes()]
    assert len(set(addresses)) == 3 and all(a.startswith("10.0.0.") and a.endswith("/24") for a in addresses)
    [vip] = view.get_service(service.id).endpoint.virtual_ips
    assert vip.network_id == ingress.id and vip.addr not in addresses
    for task in tasks:
        stored = view.get_task(task.id)
        assert stored.networks[0].network.id == ingress.id and stored.networks[0].addresses[0] not in addresses
    assert view.get_service(service.id).endpoint.ports[0].published_port == 8080


async def test_a_node_without_tasks_is_told_the_ingress_network_its_address_the_peers_and_the_ports():
    store = MemoryStore()
    ingress, service, tasks = await mesh_cluster(store)
    view = store.view()
    [network] = node_network_view(view, "n1").networks
    assert network.ingress and network.name == "ingress" and network.subnet == "10.0.0.0/24"
    assert network.node_address == node_ingress_address(view.get_node("n1"), ingress.id)
    assert not network.local
    peer_ips = {p.address for p in network.peers}
    task_ips = {view.get_task(t.id).networks[0].addresses[0] for t in tasks}
    node_ips = {node_ingress_address(view.get_node(n), ingress.id) for n in ("n2", "n3")}
    assert peer_ips == task_ips | node_ips
    assert {p.underlay_addr for p in network.peers} == {"192.168.50.2", "192.168.50.3"}
    [record] = network.services
    assert record.name == "web"
    assert [(p.protocol, p.published_port, p.target_port, p.proxy_protocol) for p in record.published] == [("tcp", 8080, 80, "")]
    assert {t.ip + "/24" for t in record.tasks} == task_ips
    # n2 has its task as a local endpoint of the ingress network.
    [on_n2] = node_network_view(view, "n2").networks
    assert [e.task_id for e in on_n2.local] == [tasks[0].id]


async def test_publish_changes_restart_only_tasks_whose_container_must_change():
    store = MemoryStore()
    _, service, tasks = await mesh_cluster(store)
    task = store.view().get_task(tasks[0].id)
    current = store.view().get_service(service.id)
    added = objects_pb2.Service()
    added.CopyFrom(current)
    added.spec.endpoint.ports.add(target_port=443, published_port=8443)
    assert not is_task_dirty(added, task)  # another ingress port: the mesh's business only
    removed = objects_pb2.Service()
    removed.CopyFrom(current)
    del removed.spec.endpoint.ports[:]
    assert not is_task_dirty(removed, task)
    host = objects_pb2.Service()
    host.CopyFrom(current)
    host.spec.endpoint.ports.add(target_port=22, published_port=2222, publish_mode=HOST)
    assert is_task_dirty(host, task)  # a host port is the container's own binding
    # A task made before its service published anything has no ingress address: it must be replaced.
    bare = objects_pb2.Task()
    bare.CopyFrom(task)
    del bare.networks[:]
    assert is_task_dirty(added, bare)


async def test_a_second_ingress_network_is_refused_and_one_in_use_cannot_be_removed(harness):  # noqa: F811
    spec = objects_pb2.NetworkSpec(ingress=True)
    spec.annotations.name = "new-ingress"
    details = await expect_error(
        harness.control.CreateNetwork(control_pb2.CreateNetworkRequest(spec=spec)), grpc.StatusCode.ALREADY_EXISTS
    )
    [existing] = harness.store.view().networks()
    assert details == f"ingress network ({existing.id}) is already present"
    web = web_spec("web")
    web.endpoint.ports.add(target_port=80, published_port=8080)
    await harness.control.CreateService(control_pb2.CreateServiceRequest(spec=web))
    [service] = harness.store.view().services()
    details = await expect_error(
        harness.control.RemoveNetwork(control_pb2.RemoveNetworkRequest(ref=existing.id)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert details == f"ingress network cannot be removed because service {service.id} depends on it"
    await harness.control.RemoveService(control_pb2.RemoveServiceRequest(ref=service.id))
    await harness.control.RemoveNetwork(control_pb2.RemoveNetworkRequest(ref=existing.id))
    assert not harness.store.view().networks()
    details = await expect_error(
        harness.control.CreateService(control_pb2.CreateServiceRequest(spec=web)), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert details == "service needs ingress network, but no ingress network is present"
    other = objects_pb2.NetworkSpec(ingress=True)
    other.annotations.name = "ingress2"
    other.ipam.configs.add(subnet="10.11.0.0/24")
    created = (await harness.control.CreateNetwork(control_pb2.CreateNetworkRequest(spec=other))).network
    assert created.spec.ingress


@pytest.mark.parametrize("mode,protocol,message", [
    (HOST, objects_pb2.PortConfig.TCP, "only ingress-mode ports carry a PROXY header"),
    (INGRESS, objects_pb2.PortConfig.UDP, "only TCP ports carry a PROXY header"),
])
async def test_proxy_protocol_is_refused_on_host_mode_and_udp_ports(harness, mode, protocol, message):  # noqa: F811
    web = web_spec("web")
    web.endpoint.ports.add(target_port=80, published_port=8080, publish_mode=mode, protocol=protocol, proxy_protocol="v2")
    details = await expect_error(
        harness.control.CreateService(control_pb2.CreateServiceRequest(spec=web)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert details.startswith('invalid endpoint.ports.proxy_protocol "v2"') and message in details
    assert not harness.store.view().services()


def test_the_publish_flag_long_form_takes_proxy_protocol_and_refuses_it_where_it_cannot_work():
    [port] = parse_port("published=8080,target=80,proxy-protocol=v2")
    assert (port.published, port.target, port.protocol, port.mode, port.proxy_protocol) == (8080, 80, "tcp", "ingress", "v2")
    for text, message in [
        ("published=8080,target=80,mode=host,proxy-protocol=v2", "only for mode=ingress ports, not mode=host"),
        ("published=8080,target=80,protocol=udp,proxy-protocol=v2", "only for protocol=tcp ports, not protocol=udp"),
        ("published=8080,target=80,proxy-protocol=v1", "invalid proxy-protocol value (v1)"),
        ("published=8080,target=80,mode=bridge", "invalid publish mode value (bridge)"),
        ("published=8080,target=80,protocol=icmp", "invalid protocol 'icmp'"),
        ("published=70000,target=80", "invalid published port: 70000 out of range"),
    ]:
        with pytest.raises(ValueError) as error:
            parse_port(text)
        assert message in str(error.value)


async def test_a_node_joining_later_is_told_the_published_ports_and_one_leaving_frees_its_address():
    store = MemoryStore()
    ingress, service, _ = await mesh_cluster(store)
    async with running(Allocator(store)):
        await create(store, "node", node_at("n4", "192.168.50.4"))
        await eventually(lambda: node_ingress_address(store.view().get_node("n4"), ingress.id), what="n4's address")
        address = node_ingress_address(store.view().get_node("n4"), ingress.id)
        [network] = node_network_view(store.view(), "n4").networks
        assert network.node_address == address and [p.published_port for p in network.services[0].published] == [8080]
        await store.update(lambda tx: tx.delete("node", "n4"))
        await create(store, "node", node_at("n5", "192.168.50.5"))
        await eventually(lambda: node_ingress_address(store.view().get_node("n5"), ingress.id), what="n5's address")
    # n1's view no longer lists n4 as a peer.
    [on_n1] = node_network_view(store.view(), "n1").networks
    assert "n4" not in {p.node_id for p in on_n1.peers} and "n5" in {p.node_id for p in on_n1.peers}
