"""Hosts for data-plane tests: network namespaces, each with its own underlay address on one bridge.

The bridge sits in a hub namespace of its own (as tests/cluster's partition lab does), not in the
machine's root namespace, where the engine's br_netfilter and FORWARD DROP policy would filter it. The
hub also holds the address a host's egress is tested against ("the outside"). Everything the lab made,
the overlay namespaces its data planes made, and the containers it started are removed in `close`,
also when the test failed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from ipaddress import IPv4Address

from swarmpy.worker.network import netns as nsutil
from swarmpy.worker.network.dataplane import NodeDataPlane
from swarmpy.worker.network.kernel import count_kernel_objects

SUBNET = "10.231.9"  # exists only inside the lab's namespaces
OUTSIDE = IPv4Address(f"{SUBNET}.254")
IMAGE = "swarmpy-test/busybox:latest"
LABEL = "swarmpy.test.netlab"


def run(*command: str, check: bool = True, timeout: float = 60) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


class NetLab:
    def __init__(self) -> None:
        self.tag = f"swpnet-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.hub = f"{self.tag}-hub"
        self.hosts: dict[str, IPv4Address] = {}
        self.planes: dict[str, NodeDataPlane] = {}
        self.node_ids: dict[str, str] = {}
        self._namespaces: list[str] = []
        self._add_namespace(self.hub)
        run("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", self.hub, "addr", "add", f"{OUTSIDE}/24", "dev", "br0")
        run("ip", "-n", self.hub, "link", "set", "br0", "up")
        run("ip", "-n", self.hub, "link", "set", "lo", "up")

    def namespace(self, host: str) -> str:
        return f"{self.tag}-{host}"

    def add_host(self, host: str) -> IPv4Address:
        ns, n = self.namespace(host), len(self.hosts) + 1
        self._add_namespace(ns)
        run("ip", "-n", self.hub, "link", "add", f"port{n}", "type", "veth", "peer", "name", "eth0", "netns", ns)
        run("ip", "-n", self.hub, "link", "set", f"port{n}", "master", "br0", "up")
        run("ip", "-n", ns, "addr", "add", f"{SUBNET}.{n}/24", "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        self.hosts[host] = IPv4Address(f"{SUBNET}.{n}")
        self.node_ids[host] = uuid.uuid4().hex[:12]
        self.planes[host] = NodeDataPlane(self.node_ids[host], node_netns=ns)
        return self.hosts[host]

    def start_container(self, name: str, command: str = "") -> str:
        """A busybox container with no network of its own, serving `hostname` over HTTP on port 80."""
        script = command or "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"
        return run(
            "docker", "run", "-d", "--network", "none", "--dns", "127.0.0.11", "--label", f"{LABEL}={self.tag}",
            "--hostname", name, "--name", f"{self.tag}-{name}", IMAGE, "sh", "-c", script,
        ).strip()

    async def exec(self, container: str, script: str, check: bool = True, timeout: float = 60) -> str:
        """Run in a thread: the data planes' resolvers are served by the caller's event loop."""
        return await asyncio.to_thread(run, "docker", "exec", container, "sh", "-c", script, check=check, timeout=timeout)

    async def close(self) -> None:
        failures = []
        for plane in self.planes.values():
            await plane.close()
        for container in run("docker", "ps", "-aq", "--filter", f"label={LABEL}={self.tag}").split():
            run("docker", "rm", "-f", container, check=False)
        ours = tuple(plane.names.ns_prefix for plane in self.planes.values())
        leftovers = [n for n in os.listdir("/run/netns") if n.startswith(ours)] if ours else []
        for ns in [*leftovers, *reversed(self._namespaces)]:
            result = subprocess.run(["ip", "netns", "delete", ns], capture_output=True, text=True, timeout=15)
            if result.returncode != 0:
                failures.append(f"{ns}: {result.stderr.strip()}")
        self._namespaces.clear()
        assert not failures, f"network namespaces left behind: {failures}"

    def counts(self) -> dict[str, dict[str, int]]:
        """Per host, its links, addresses, routes and rules, and the namespaces of this lab and its nodes
        (others' tests on the machine make theirs meanwhile)."""
        prefixes = (self.tag, *(plane.names.ns_prefix for plane in self.planes.values()))
        return {h: count_kernel_objects(self.netns_path(h), prefixes) for h in self.hosts}

    def netns_path(self, host: str) -> str:
        return nsutil.netns_path(self.namespace(host))

    def _add_namespace(self, ns: str) -> None:
        run("ip", "netns", "add", ns)
        self._namespaces.append(ns)
