"""The node networking model: what it accepts, what it refuses (and that bad peer data is never kept)."""

import logging
from ipaddress import IPv4Address, IPv4Interface

import pytest

from swarmpy.worker.network.model import (
    LocalEndpoint,
    ModelError,
    NetworkView,
    NodeNetworks,
    RemotePeer,
    ServiceRecord,
    TaskRecord,
    mac_for_ip,
    parse_peers,
)

NET_ID = "n1a2b3c4d5e6f7"


def network(**overrides):
    fields = dict(id=NET_ID, name="front", vni=4097, subnet="10.0.1.0/24", gateway="10.0.1.1")
    fields.update(overrides)
    return NetworkView(**fields)


def endpoint(ip="10.0.1.3/24", task="t1", **kw):
    return LocalEndpoint(task_id=task, task_name=f"api.1.{task}", container="c" + task, address=ip, **kw)


def test_mac_is_derived_from_the_ipv4_address_as_docker_does():
    assert mac_for_ip(IPv4Address("10.0.1.3")) == "02:42:0a:00:01:03"
    assert endpoint().mac == "02:42:0a:00:01:03"
    assert endpoint().address == IPv4Interface("10.0.1.3/24")


def test_a_whole_model_is_built_and_queried():
    svc = ServiceRecord("s1", "API", vip="10.0.1.2", tasks=(TaskRecord("api.1.t1", "10.0.1.3"),), aliases=("Web",))
    net = network(endpoints=(endpoint(),), peers=(RemotePeer("10.0.1.4", "02:42:0a:00:01:04", "192.168.50.2"),),
                  services=(svc,))
    node = NodeNetworks(underlay="192.168.50.1", networks=(net,))
    assert node.network(NET_ID).mtu == 1450
    assert node.containers == ("ct1",)
    assert node.endpoints_of("ct1")[0][1].task_id == "t1"
    assert svc.name == "api" and svc.aliases == ("web",) and svc.backends == (IPv4Address("10.0.1.3"),)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(vni=10), "VXLAN ID 10"),
        (dict(subnet="10.0.1.0/33"), "invalid subnet"),
        (dict(gateway="10.0.2.1"), "gateway 10.0.2.1 is not a host address"),
        (dict(gateway="10.0.1.255"), "not a host address"),
        (dict(endpoints=(endpoint("10.0.1.1/24"),)), "already the gateway's"),
        (dict(endpoints=(endpoint("10.0.2.3/24"),)), "not in 10.0.1.0/24"),
        (dict(endpoints=(endpoint(), endpoint(task="t2"))), "already endpoint t1's"),
        (dict(services=(ServiceRecord("s", "api", vip="10.9.0.2"),)), "outside 10.0.1.0/24"),
        (dict(id="x"), "id 'x'"),
    ],
)
def test_inconsistent_networks_are_refused_naming_the_field(overrides, message):
    with pytest.raises(ModelError, match=message):
        network(**overrides)


def test_bad_names_and_macs_are_refused():
    with pytest.raises(ModelError, match="not a valid DNS name"):
        ServiceRecord("s", "bad name!", vip=None)
    with pytest.raises(ModelError, match="multicast"):
        RemotePeer("10.0.1.4", "01:00:5e:00:00:01", "192.168.50.2")
    with pytest.raises(ModelError, match="own VTEP"):
        NodeNetworks(underlay="192.168.50.2",
                     networks=(network(peers=(RemotePeer("10.0.1.4", "02:42:0a:00:01:04", "192.168.50.2"),)),))


def test_peer_data_that_does_not_parse_is_refused_and_logged_the_rest_kept(caplog):
    raw = [
        {"ip": "10.0.1.4/24", "mac": "02:42:0a:00:01:04", "vtep": "192.168.50.2"},
        {"ip": "10.0.1.5", "mac": "zz:42:0a:00:01:05", "vtep": "192.168.50.2"},
        {"ip": "not-an-ip", "mac": "02:42:0a:00:01:06", "vtep": "192.168.50.2"},
        {"ip": "10.0.1.7", "mac": "02:42:0a:00:01:07", "vtep": "127.0.0.1"},
        {"ip": "10.0.1.8", "mac": "02:42:0a:00:01:08", "vtep": "192.168.50.1"},
        {"ip": "10.0.1.9", "mac": "02:42:0a:00:01:09"},
    ]
    with caplog.at_level(logging.WARNING):
        peers = parse_peers(raw, local_underlay="192.168.50.1")
    assert peers == (RemotePeer(IPv4Address("10.0.1.4"), "02:42:0a:00:01:04", IPv4Address("192.168.50.2")),)
    refused = [r for r in caplog.records if "refused peer entry" in r.getMessage()]
    assert len(refused) == 5
    assert "zz:42" in refused[0].getMessage() and "invalid MAC" in refused[0].getMessage()
