"""Overlay networks from the CLI against a real daemon: create/ls/inspect/rm/prune with docker's output,
services attached by name (VIPs and task addresses allocated by the leader), rm refused while in use,
and every bad input refused in one line with nothing changed."""

from __future__ import annotations

import json
from ipaddress import ip_interface, ip_network

import pytest

from .conftest import wait_until

pytestmark = pytest.mark.docker

IMAGE = "swarmpy-test/busybox"
FLAG_ERROR = 125
FAILURE = 1


def networks_state(daemon):
    from swarmpy.api import control_pb2

    networks = daemon.control().ListNetworks(control_pb2.ListNetworksRequest(), timeout=10).networks
    return sorted((n.id, n.meta.version.index) for n in networks)


def inspect_network(daemon, ref):
    return json.loads(daemon.ok("network", "inspect", ref).stdout)[0]


def allocated(daemon, ref):
    return wait_until(lambda: (net := inspect_network(daemon, ref))["IPAM"]["Config"] and net, what=f"{ref} allocated")


def tasks_of(daemon, service_id):
    from swarmpy.api import control_pb2

    request = control_pb2.ListTasksRequest(filters=control_pb2.ListTasksRequest.Filters(service_ids=[service_id]))
    return daemon.control().ListTasks(request, timeout=10).tasks


@pytest.fixture(scope="module")
def daemon(shared_daemon, busybox_image):
    return shared_daemon


def test_network_lifecycle_and_services_on_networks(daemon):
    backend_id = daemon.ok("network", "create", "backend").stdout.strip()
    assert len(backend_id) == 25
    daemon.ok("network", "create", "-d", "overlay", "--subnet", "10.50.0.0/16", "--gateway", "10.50.0.254",
              "--label", "tier=db", "--attachable", "data")
    listing = daemon.ok("network", "ls").stdout.splitlines()
    assert listing[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    rows = {line.split()[1]: line.split() for line in listing[1:]}
    assert rows["backend"] == [backend_id[:12], "backend", "overlay", "swarm"]
    assert daemon.ok("network", "ls", "-q", "--filter", "label=tier=db").stdout.split() != []
    backend = allocated(daemon, "backend")
    assert backend["Id"] == backend_id and backend["Scope"] == "swarm" and backend["Driver"] == "overlay"
    # swarm init gave the ingress network 10.0.0.0/24 and VXLAN ID 4096; the first user network takes the
    # next of each, as docker's does.
    assert backend["IPAM"]["Config"] == [{"Subnet": "10.0.1.0/24", "Gateway": "10.0.1.1"}]
    assert backend["Options"]["com.docker.network.driver.overlay.vxlanid_list"] == "4097"
    data = allocated(daemon, "data")
    assert data["IPAM"]["Config"] == [{"Subnet": "10.50.0.0/16", "Gateway": "10.50.0.254"}]
    assert data["Labels"] == {"tier": "db"} and data["Attachable"] is True

    daemon.ok("service", "create", "--name", "netapi", "--replicas", "2", "--stop-grace-period", "1s",
              "--network", "backend", "--network", "name=data,alias=db-api", "--dns", "10.50.0.53",
              "--host", "db.local:10.1.2.3", IMAGE, "sleep", "1000", timeout=120)
    service = json.loads(daemon.ok("service", "inspect", "netapi").stdout)[0]
    template = service["Spec"]["TaskTemplate"]
    assert template["Networks"] == [{"Target": backend_id}, {"Target": data["Id"], "Aliases": ["db-api"]}]
    assert template["ContainerSpec"]["DNSConfig"] == {"Nameservers": ["10.50.0.53"]}
    assert template["ContainerSpec"]["Hosts"] == ["10.1.2.3 db.local"]
    container = daemon.wait_running("netapi", 2)[0]
    # On overlays only the embedded resolver is in resolv.conf (as docker's); --dns are its upstreams.
    resolv = container.exec_run(["cat", "/etc/resolv.conf"]).output.decode()
    assert [line for line in resolv.splitlines() if line.startswith("nameserver")] == ["nameserver 127.0.0.11"], resolv
    assert container.labels["swarmpy.dns-servers"] == "10.50.0.53"
    assert "10.1.2.3\tdb.local" in container.exec_run(["cat", "/etc/hosts"]).output.decode()
    vips = {vip["NetworkID"]: vip["Addr"] for vip in service["Endpoint"]["VirtualIPs"]}
    assert set(vips) == {backend_id, data["Id"]}
    addresses = list(vips.values())
    for task in tasks_of(daemon, service["ID"]):
        assert [a.network.id for a in task.networks] == [backend_id, data["Id"]]
        addresses += [addr for a in task.networks for addr in a.addresses]
    assert len(addresses) == len(set(addresses)) == 6
    assert all(ip_interface(a).network in (ip_network("10.0.1.0/24"), ip_network("10.50.0.0/16")) for a in addresses)

    # In use: refused with swarmkit's message, nothing removed.
    before = networks_state(daemon)
    refused = daemon.cli("network", "rm", "backend")
    assert refused.code == FAILURE and f"network {backend_id} is in use by service {service['ID']}" in refused.stderr
    assert networks_state(daemon) == before

    # Off the network (the tasks roll), then it can go.
    daemon.ok("service", "update", "--network-rm", "backend", "netapi", timeout=120)
    updated = json.loads(daemon.ok("service", "inspect", "netapi").stdout)[0]
    assert [n["Target"] for n in updated["Spec"]["TaskTemplate"]["Networks"]] == [data["Id"]]
    assert [vip["NetworkID"] for vip in updated["Endpoint"]["VirtualIPs"]] == [data["Id"]]
    wait_until(lambda: daemon.cli("network", "rm", "backend").code == 0, what="backend removable")
    assert "backend" not in daemon.ok("network", "ls").stdout

    daemon.ok("network", "create", "unused")
    pruned = daemon.ok("network", "prune", "-f").stdout
    assert pruned.splitlines() == ["Deleted Networks:", "unused"]  # not ingress: docker's prune skips it
    assert daemon.ok("network", "ls", "--format", "json").stdout.count('"Name":"ingress"') == 1
    assert daemon.ok("network", "ls", "--format", "json").stdout.count('"Name":"data"') == 1
    daemon.ok("service", "rm", "netapi")
    wait_until(lambda: daemon.cli("network", "rm", "data").code == 0, what="data removable")


@pytest.fixture(scope="module")
def taken(daemon):
    daemon.ok("network", "create", "--subnet", "10.60.0.0/16", "taken")
    daemon.ok("service", "create", "-d", "--name", "onnet", "--stop-grace-period", "1s", "--network", "taken",
              IMAGE, "sleep", "1000")
    daemon.wait_running("onnet", 1)
    yield
    daemon.cli("service", "rm", "onnet")
    wait_until(lambda: daemon.cli("network", "rm", "taken").code == 0, what="taken removable")


CASES = {
    "malformed subnet": (("network", "create", "--subnet", "10.0.0.0/33", "n1"), ("10.0.0.0/33", "subnet"), FAILURE),
    "overlapping subnet": (("network", "create", "--subnet", "10.60.1.0/24", "n2"), ("10.60.1.0/24", "overlaps", "taken"), FAILURE),
    "gateway outside the subnet": (("network", "create", "--subnet", "10.61.0.0/24", "--gateway", "10.62.0.1", "n3"),
                                   ("10.62.0.1", "gateway"), FAILURE),
    "range outside the subnet": (("network", "create", "--subnet", "10.61.0.0/24", "--ip-range", "10.61.0.0/16", "n4"),
                                 ("10.61.0.0/16", "range"), FAILURE),
    "subnet too small": (("network", "create", "--subnet", "10.61.0.0/31", "n5"), ("10.61.0.0/31", "too small"), FAILURE),
    "gateway without subnet": (("network", "create", "--gateway", "10.61.0.1", "n6"), ("gateway", "subnet"), FLAG_ERROR),
    "duplicate name": (("network", "create", "taken"), ("network with name taken already exists",), FAILURE),
    "encrypted overlay": (("network", "create", "--opt", "encrypted", "n8"), ('"encrypted"', "not supported"), FAILURE),
    "bad mtu": (("network", "create", "--opt", "com.docker.network.driver.mtu=99", "n9"), ('"99"', "MTU"), FAILURE),
    "other driver": (("network", "create", "-d", "bridge", "n7"), ('"bridge"', "--driver"), FLAG_ERROR),
    "unknown network on create": (("service", "create", "-d", "--network", "nosuch", IMAGE), ("network nosuch not found",), FAILURE),
    "alias not a DNS label": (("service", "create", "-d", "--network", "name=taken,alias=bad_alias", IMAGE),
                              ('"bad_alias"', "alias"), FAILURE),
    "bad network field": (("service", "create", "-d", "--network", "name=taken,colour=red", IMAGE), ("--network", "colour"), FLAG_ERROR),
    "bad host mapping": (("service", "create", "-d", "--host", "nocolon", IMAGE), ('"nocolon"', "--host"), FLAG_ERROR),
    "bad dns server": (("service", "create", "-d", "--dns", "dns.example", IMAGE), ('"dns.example"', "--dns"), FLAG_ERROR),
    "bad endpoint mode": (("service", "create", "-d", "--endpoint-mode", "magic", IMAGE), ('"magic"', "--endpoint-mode"), FLAG_ERROR),
    "rm in use": (("network", "rm", "taken"), ("is in use by service",), FAILURE),
    "unknown network on update": (("service", "update", "-d", "--network-add", "nosuch", "onnet"), ("network nosuch not found",), FAILURE),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_network_input_is_refused_and_changes_nothing(daemon, taken, name):
    args, mentions, code = CASES[name]
    before = (daemon.state(), networks_state(daemon))
    result = daemon.cli(*args)
    assert result.code == code, result
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("See '")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result
    for text in mentions:
        assert text in lines[0], result
    assert (daemon.state(), networks_state(daemon)) == before


def test_swarm_init_takes_the_default_address_pools(bare_daemon):
    base = ("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", f"127.0.0.1:{bare_daemon.listen_port}")
    for bad, mentions in ((("--default-addr-pool", "10.20.0.0/99"), ("10.20.0.0/99",)),
                          (("--default-addr-pool", "10.20.0.0/16", "--default-addr-pool-mask-length", "12"), ("10.20.0.0/16", "/12")),
                          (("--data-path-port", "80"), ("data_path_port", "80"))):
        refused = bare_daemon.cli(*base, *bad)
        assert refused.code == FAILURE and all(m in refused.stderr for m in mentions), refused
        assert len(refused.stderr.strip().splitlines()) == 1, refused
    bare_daemon.ok(*base, "--default-addr-pool", "10.20.0.0/16", "--default-addr-pool", "10.30.0.0/16",
                   "--default-addr-pool-mask-length", "26", "--data-path-port", "4800")
    from swarmpy.api import control_pb2

    cluster = bare_daemon.control().GetCluster(control_pb2.GetClusterRequest(), timeout=10).cluster
    assert list(cluster.default_address_pool) == ["10.20.0.0/16", "10.30.0.0/16"]
    assert (cluster.subnet_size, cluster.vxlan_udp_port) == (26, 4800)
    bare_daemon.ok("network", "create", "first")
    bare_daemon.ok("network", "create", "second")
    assert allocated(bare_daemon, "first")["IPAM"]["Config"][0]["Subnet"] == "10.20.0.0/26"
    assert allocated(bare_daemon, "second")["IPAM"]["Config"][0]["Subnet"] == "10.20.0.64/26"
