"""What the executor records on an overlay task's container for the data plane (host-mode ports, --dns
servers): in the data plane's model and nftables (pure parts)."""

from ipaddress import IPv4Address

from swarmpy.worker.network import nftrules
from swarmpy.worker.network.model import LocalEndpoint, NetworkView, NodeNetworks
from swarmpy.worker.executor import docker as docker_executor
from swarmpy.worker.executor.container_config import DNS_SERVERS_LABEL
from swarmpy.worker.network.node_networking import with_container_resolvers, with_host_ports
from swarmpy.worker.task_states import HostPort


def test_the_ruleset_dnats_node_addresses_to_the_egress_address_and_is_deleted_when_empty():
    rules = nftrules.host_ports_ruleset("t", [("udp", 5353, IPv4Address("172.31.0.3"), 53),
                                              ("tcp", 8080, IPv4Address("172.31.0.2"), 80)])
    assert "fib daddr type local tcp dport 8080 dnat to 172.31.0.2:80\n" in rules
    assert "fib daddr type local udp dport 5353 dnat to 172.31.0.3:53\n" in rules
    assert rules.count("dnat to") == 4  # prerouting (from outside) and output (from the node itself)
    assert "ip daddr 127.0.0.0/8 return" in rules
    assert nftrules.host_ports_ruleset("t", []) == nftrules.delete_table("t")


def test_only_plumbed_containers_ports_enter_the_model():
    net = NetworkView(id="net001", name="net", vni=4097, subnet="10.0.1.0/24", gateway="10.0.1.1", endpoints=(
        LocalEndpoint(task_id="t1", task_name="web.1.t1", container="c1", address="10.0.1.5/24"),))
    model = NodeNetworks(underlay=IPv4Address("192.0.2.1"), networks=(net,))
    ports = {"c1": (HostPort(80, "tcp", 8080), HostPort(9, "sctp", 9)), "gone": (HostPort(80, "tcp", 8081),)}
    [forward] = with_host_ports(model, ports).host_ports
    assert (forward.container, forward.protocol, forward.published, forward.target) == ("c1", "tcp", 8080, 80)
    assert with_host_ports(model, {}) is model


def test_only_plumbed_containers_ipv4_dns_servers_enter_the_model():
    net = NetworkView(id="net001", name="net", vni=4097, subnet="10.0.1.0/24", gateway="10.0.1.1", endpoints=(
        LocalEndpoint(task_id="t1", task_name="web.1.t1", container="c1", address="10.0.1.5/24"),
        LocalEndpoint(task_id="t2", task_name="web.2.t2", container="c2", address="10.0.1.6/24")))
    model = NodeNetworks(underlay=IPv4Address("192.0.2.1"), networks=(net,))
    servers = {"c1": ("2001:db8::53", "10.9.0.53"), "c2": ("2001:db8::53",), "gone": ("10.9.0.54",)}
    assert with_container_resolvers(model, servers).container_resolvers == (("c1", (IPv4Address("10.9.0.53"),)),)
    assert with_container_resolvers(model, {}) is model


def test_a_containers_dns_servers_label_is_read_back_from_a_listing_and_an_inspect():
    labels = {DNS_SERVERS_LABEL: "10.9.0.53,10.9.0.54"}
    assert docker_executor._labelled_dns_servers(labels) == ("10.9.0.53", "10.9.0.54")
    assert docker_executor._labelled_dns_servers({}) == ()
    inspected = {"Id": "c1", "State": {"Status": "running", "Pid": 7}, "Config": {"Labels": labels}}
    assert docker_executor.facts_from_inspect(inspected).dns_servers == ("10.9.0.53", "10.9.0.54")
