"""The dispatcher's network view -> the node's desired state (worker/network/from_dispatcher.py):
what the managers computed arrives intact; a peer's data that does not parse is refused and logged."""

from __future__ import annotations

import logging
from ipaddress import IPv4Address

from swarmpy.api import dispatcher_pb2
from swarmpy.manager.dispatcher.network_view import node_network_view
from swarmpy.manager.store import MemoryStore
from swarmpy.worker.network.from_dispatcher import node_networks
from tests.manager.test_network_view import cluster_with_api


async def test_the_view_becomes_the_node_model():
    store = MemoryStore()
    net, service, tasks = await cluster_with_api(store)
    view = node_network_view(store.view(), "n1")
    model = node_networks(view, {tasks[0].id: "c0ffee"})
    assert model.underlay == IPv4Address("192.168.50.1") and model.vxlan_port == 4789
    [network] = model.networks
    assert (network.id, network.vni, str(network.subnet), str(network.gateway)) == (net.id, 4096, "10.0.0.0/24", "10.0.0.1")
    assert network.mtu == 1450
    [endpoint] = network.endpoints
    assert endpoint.container == "c0ffee" and endpoint.aliases == ("web",)
    assert str(endpoint.address) == view.networks[0].local[0].address and endpoint.mac == view.networks[0].local[0].mac
    assert {str(p.vtep) for p in network.peers} == {"172.31.0.2", "192.168.50.3"}
    [record] = network.services
    assert record.name == "api" and record.vip is not None and len(record.tasks) == 3 and record.aliases == ("web",)
    # A task whose container does not exist yet has no endpoint to plumb.
    assert not node_networks(view, {}).networks[0].endpoints


async def test_bad_peer_data_is_refused_logged_and_never_applied(caplog):
    store = MemoryStore()
    _, _, tasks = await cluster_with_api(store)
    view = node_network_view(store.view(), "n1")
    bad = dispatcher_pb2.NetworkView()
    bad.CopyFrom(view)
    peers = bad.networks[0].peers
    peers[0].mac = "not-a-mac"
    peers[1].underlay_addr = "192.168.50.1"  # this node's own underlay: a loop
    peers.add(task_id="x", address="10.0.0.250/24", mac="03:42:0a:00:00:fa", underlay_addr="192.168.50.9")  # multicast MAC
    with caplog.at_level(logging.WARNING):
        model = node_networks(bad, {tasks[0].id: "c0ffee"})
    assert model.networks[0].peers == ()
    assert sum("refused peer entry" in r.message for r in caplog.records) == 3
    assert len(model.networks[0].endpoints) == 1  # the good parts stay


async def test_records_are_parsed_once_and_a_refused_peer_is_refused_every_time(caplog):
    """model.remembered: the next view's unchanged peers, endpoints and task records are the very same
    frozen records; a peer that does not parse is not remembered, so each view refuses and logs it again."""
    store = MemoryStore()
    _, _, tasks = await cluster_with_api(store)
    view = node_network_view(store.view(), "n1")
    view.networks[0].peers[0].mac = "not-a-mac"
    with caplog.at_level(logging.WARNING):
        first = node_networks(view, {tasks[0].id: "c0ffee"}).networks[0]
        second = node_networks(view, {tasks[0].id: "c0ffee"}).networks[0]
    assert sum("refused peer entry" in r.message for r in caplog.records) == 2
    assert len(first.peers) == 1 and first.peers[0] is second.peers[0]
    assert first.endpoints[0] is second.endpoints[0]
    assert all(a is b for a, b in zip(first.services[0].tasks, second.services[0].tasks))
    assert first == second
