"""The networking flags of service create/update, parsed without a daemon (swarmpy/cli/network_flags.py)."""

import pytest

from swarmpy.api import objects_pb2
from swarmpy.cli.network_flags import NetworkFlag, add_to_new_spec, parse_host, parse_network, update_spec


def test_network_values_short_and_long():
    assert parse_network("backend") == NetworkFlag("backend")
    assert parse_network("name=backend,alias=web,alias=api,driver-opt=mtu=1400") == NetworkFlag(
        "backend", ("web", "api"), (("mtu", "1400"),))
    for bad, why in (("alias=web", "not specified"), ("name=x,colour=red", "invalid field key colour"),
                     ("name=x,driver-opt=novalue", "driver-opt"), ("name=x,alias", "key=value")):
        with pytest.raises(ValueError, match=why):
            parse_network(bad)


def test_hosts_become_swarm_entries():
    assert parse_host("db.local:10.1.2.3") == "10.1.2.3 db.local"
    for bad in ("nocolon", "db:", "db:not-an-ip"):
        with pytest.raises(ValueError):
            parse_host(bad)


def test_update_edits_dns_hosts_mode_and_adds_networks():
    spec = objects_pb2.ServiceSpec()
    add_to_new_spec(spec, {"networks": (parse_network("a"),), "dns": ("10.0.0.53",), "hosts": ("10.1.2.3 db",),
                           "endpoint_mode": "dnsrr"})
    assert spec.endpoint.mode == objects_pb2.EndpointSpec.DNSRR and [n.target for n in spec.task.networks] == ["a"]
    update_spec(None, spec, {"network_add": (parse_network("name=b,alias=x"),), "dns_add": ("10.0.0.54",),
                             "dns_rm": ("10.0.0.53",), "host_rm": ("db",), "host_add": ("10.9.9.9 cache",),
                             "endpoint_mode": "vip"})
    assert [(n.target, list(n.aliases)) for n in spec.task.networks] == [("a", []), ("b", ["x"])]
    assert list(spec.task.container.dns_config.nameservers) == ["10.0.0.54"]
    assert list(spec.task.container.hosts) == ["10.9.9.9 cache"]
    assert spec.endpoint.mode == objects_pb2.EndpointSpec.VIP
    update_spec(None, spec, {"dns_rm": ("10.0.0.54",)})
    assert not spec.task.container.HasField("dns_config")
