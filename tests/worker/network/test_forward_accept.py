"""The data plane's forwarding exceptions against a real firewall that drops forwarded traffic, as the
filter table of a host running Docker does (policy DROP, a DOCKER-USER chain consulted first)."""

from __future__ import annotations

import os
import subprocess

import pytest

from swarmpy.worker.network.forward_accept import RECHECK_AFTER, ForwardAccepts, tagged_rules, wanted_rules

PREFIX = f"lfa{os.getpid() % 10000}"


def sh(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=20, check=check)


@pytest.fixture
def routed_lab():
    """A 'host' namespace routing between two bridges, each with one client namespace behind it."""
    host, left, right = f"{PREFIX}h", f"{PREFIX}l", f"{PREFIX}r"
    try:
        for ns in (host, left, right):
            sh("ip", "netns", "add", ns)
        for side, ns, subnet in (("a", left, "172.30.70"), ("b", right, "172.30.71")):
            bridge, veth = f"{PREFIX}b{side}", f"{PREFIX}v{side}"
            sh("ip", "-n", host, "link", "add", bridge, "type", "bridge")
            sh("ip", "-n", host, "addr", "add", f"{subnet}.1/24", "dev", bridge)
            sh("ip", "-n", host, "link", "set", bridge, "up")
            sh("ip", "-n", host, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", host, "link", "set", veth, "master", bridge, "up")
            sh("ip", "-n", ns, "addr", "add", f"{subnet}.2/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "route", "add", "default", "via", f"{subnet}.1")
        sh("ip", "netns", "exec", host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        yield host, left
    finally:
        for ns in (host, left, right):
            sh("ip", "netns", "del", ns, check=False)


def reaches(ns: str, address: str) -> bool:
    return sh("ip", "netns", "exec", ns, "/bin/busybox", "ping", "-c", "1", "-W", "1", address, check=False).returncode == 0


def rules_in(host: str, chain: str, tag: str) -> list:
    listing = sh("ip", "netns", "exec", host, "iptables", "-S", chain).stdout
    return tagged_rules(listing, chain, tag)


@pytest.mark.parametrize("docker_chain", [True, False], ids=["docker-user", "forward-drop"])
def test_routed_interfaces_forward_through_a_dropping_firewall_and_the_rules_go_exactly(routed_lab, docker_chain):
    host, left = routed_lab
    sh("ip", "netns", "exec", host, "iptables", "-P", "FORWARD", "DROP")
    chain = "FORWARD"
    if docker_chain:
        chain = "DOCKER-USER"
        sh("ip", "netns", "exec", host, "iptables", "-N", chain)
        sh("ip", "netns", "exec", host, "iptables", "-A", "FORWARD", "-j", chain)
    assert reaches(left, "172.30.70.1")  # the host itself: INPUT, not forwarded
    assert not reaches(left, "172.30.71.2"), "the lab's firewall should drop forwarded traffic"

    accepts = ForwardAccepts("abc123", f"/run/netns/{host}")
    accepts.reconcile([f"{PREFIX}ba"])
    assert reaches(left, "172.30.71.2")  # out through the other bridge, the reply back by conntrack
    assert [interface for _, interface in rules_in(host, chain, "abc123")] == [f"{PREFIX}ba", f"{PREFIX}ba"]

    restarted = ForwardAccepts("abc123", f"/run/netns/{host}")  # a new daemon adopts: nothing doubled
    restarted.reconcile([f"{PREFIX}ba"])
    assert len(rules_in(host, chain, "abc123")) == 2

    restarted.reconcile([])
    assert rules_in(host, chain, "abc123") == []
    assert not reaches(left, "172.30.71.2")


def test_rules_flushed_by_someone_else_come_back_once_the_last_look_is_old(routed_lab):
    host, left = routed_lab
    sh("ip", "netns", "exec", host, "iptables", "-P", "FORWARD", "DROP")
    now = [1000.0]
    accepts = ForwardAccepts("abc123", f"/run/netns/{host}", clock=lambda: now[0])
    accepts.reconcile([f"{PREFIX}ba"])
    assert reaches(left, "172.30.71.2")
    sh("ip", "netns", "exec", host, "iptables", "-F", "FORWARD")  # an admin's flush, a firewall reload
    assert not reaches(left, "172.30.71.2")
    now[0] += RECHECK_AFTER + 0.1
    accepts.reconcile([f"{PREFIX}ba"])  # the same set: only the age of the last look brings them back
    assert len(rules_in(host, "FORWARD", "abc123")) == 2
    assert reaches(left, "172.30.71.2")


def test_a_namespace_that_forwards_by_default_gets_no_rules(routed_lab):
    host, left = routed_lab
    ForwardAccepts("abc123", f"/run/netns/{host}").reconcile([f"{PREFIX}ba"])
    assert rules_in(host, "FORWARD", "abc123") == []
    assert reaches(left, "172.30.71.2")


def test_rules_are_tagged_per_node_and_parsed_back():
    specs = wanted_rules("n1", ["sgx", "msiy"])
    listing = "\n".join(["-P FORWARD ACCEPT", "-A DOCKER-USER -i other -m comment --comment \"swarmpy n2\" -j ACCEPT"]
                        + ["-A DOCKER-USER " + " ".join(f'"{w}"' if " " in w else w for w in spec) for spec in specs])
    found = tagged_rules(listing, "DOCKER-USER", "n1")
    assert [spec for spec, _ in found] == specs
    assert sorted(interface for _, interface in found) == ["msiy", "msiy", "sgx", "sgx"]
