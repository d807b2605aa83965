"""Host-mode ports of overlay tasks in the data plane's model and nftables (pure parts)."""

from ipaddress import IPv4Address

from swarmpy.worker.network import nftrules
from swarmpy.worker.network.model import LocalEndpoint, NetworkView, NodeNetworks
from swarmpy.worker.network.node_networking import with_host_ports
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
