"""Service networking end to end: 3 hosts, each its own swarmpyd in its own network namespace, driven
through the swarmpy CLI; tasks talk over the overlay, find each other by the embedded DNS, and spread
over a VIP, all plumbed by the daemons themselves (issue 11's proof).

The hosts are overlay_lab.py's (tests/cluster's partition lab: a namespace per host, its one interface on
a bridge in a hub namespace, iptables chains to cut it off; m1 the manager, h2 and h3 workers). The engine is the machine's one: each daemon creates only its own containers, and plumbs
only those (by its node label). The leader failing over during allocation is test_network_failover.py's.
"""

from __future__ import annotations

import collections
import json
import socket
import subprocess
import threading
import time

import dns.message
import dns.rdatatype
import dns.rrset

import pytest

from swarmpy.api import objects_pb2
from swarmpy.manager.allocator.ipam import mac_for, parse_cidr_address
from swarmpy.worker.network.kernel import Names, count_kernel_objects
from swarmpy.worker.network import netns as nsutil

from .conftest import running_tasks, wait_converged
from .overlay_lab import OUTSIDE, overlay_cluster
from .test_partition import _require_network_tools
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.timeout(240)]

SERVE = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"


@pytest.fixture(scope="module")
def cluster(docker, tmp_path_factory, busybox_image):
    _require_network_tools()
    with overlay_cluster(tmp_path_factory.mktemp("overlay"), docker) as cluster:
        cluster.baseline = {name: kernel_counts(cluster, name) for name in cluster.daemons}
        yield cluster


# -- looking at it ------------------------------------------------------------------------------------


def kernel_counts(cluster, host: str) -> dict[str, int]:
    """The host's links, addresses, routes, rules, nftables tables and its daemon's overlay namespaces."""
    daemon = cluster.daemons[host]
    path = nsutil.netns_path(daemon.node_netns)
    counts = count_kernel_objects(path, (Names(daemon.node_id.lower()[:6]).ns_prefix,))
    counts["nft tables"] = len(run("nsenter", f"--net={path}", "nft", "list", "tables").stdout.splitlines())
    return counts


def run(*command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def in_task(container: str, script: str, timeout: float = 60) -> str:
    return run("docker", "exec", container, "sh", "-c", script, timeout=timeout).stdout


# (busybox's `wget -T` crashes in the test image: every wait is `timeout 3 wget`.)


def lookup(container: str, name: str) -> set[str] | None:
    """The A records `name` resolves to inside the container; None for NXDOMAIN."""
    out = in_task(container, f"nslookup -type=a {name} 2>&1")
    if "NXDOMAIN" in out:
        return None
    return {line.split()[1] for line in out.splitlines() if line.startswith("Address: ")}


def answers(container: str, url: str, count: int) -> collections.Counter:
    script = f"for i in $(seq {count}); do timeout 3 wget -qO- {url} 2>/dev/null || echo FAILED; done"
    return collections.Counter(in_task(container, script, timeout=30 + 3 * count).split())


def reaches(container: str, ip: str) -> bool:
    return bool(in_task(container, f"timeout 3 wget -qO- http://{ip}/ 2>/dev/null").strip())


def way_out(container: str) -> str:
    """wget's complaint when fetching from the outside (which serves nothing)."""
    return run("docker", "exec", container, "timeout", "3", "wget", "-qO-", f"http://{OUTSIDE}/").stderr.lower()


def task_container(cluster, task: objects_pb2.Task) -> str:
    found = cluster.docker.containers.list(filters={"label": f"com.docker.swarm.task.id={task.id}"})
    assert found, f"no container for task {task.id}"
    return found[0].id


def overlay_ip(task: objects_pb2.Task, network_name: str) -> str:
    for attachment in task.networks:
        if attachment.network.spec.annotations.name == network_name:
            return str(parse_cidr_address(attachment.addresses[0])[0])
    raise AssertionError(f"task {task.id} has no address on {network_name}")


def inspect(manager, kind: str, name: str) -> dict:
    return json.loads(manager.ok(kind, "inspect", name).stdout)[0]


def vni_of(manager, network: str) -> int:
    return int(inspect(manager, "network", network)["Options"]["com.docker.network.driver.overlay.vxlanid_list"])


def overlay_ns(daemon, vni: int) -> str:
    return Names(daemon.node_id.lower()[:6]).overlay_ns(vni)


def vxlan_packets(daemon, vni: int) -> tuple[int, int]:
    """(tx, rx) packets of the host's VXLAN device of `vni`."""
    out = run("ip", "-n", overlay_ns(daemon, vni), "-s", "-o", "link", "show", f"vx-{vni:06x}").stdout
    fields = out.split("\\")
    return int(fields[5].split()[1]), int(fields[3].split()[1])


def fdb_macs(daemon, vni: int) -> set[str]:
    out = run("bridge", "-n", overlay_ns(daemon, vni), "fdb", "show", "dev", f"vx-{vni:06x}").stdout
    return {line.split()[0] for line in out.splitlines() if " dst " in line}


def serve(manager, name: str, network: str, replicas: int, *extra: str) -> None:
    manager.ok("service", "create", "-d", "--name", name, "--network", network, "--replicas", str(replicas),
               "--stop-grace-period", "1s", *extra, "swarmpy-test/busybox", "sh", "-c", SERVE)


def client(cluster, name: str, network: str, host: str = "m1", *extra: str) -> str:
    """A task on `host` to ask from; returns its container."""
    manager = cluster.daemons["m1"]
    manager.ok("service", "create", "-d", "--name", name, "--network", network, "--stop-grace-period", "1s",
               "--constraint", f"node.hostname=={cluster.daemons[host].hostname}", *extra, "swarmpy-test/busybox",
               "sleep", "100000")
    return task_container(cluster, wait_converged(cluster, manager, name, 1)[0])


def remove(manager, *services: str) -> None:
    manager.ok("service", "rm", *services)


class OutsideResolver:
    """A DNS server at OUTSIDE:53 in the hub ("a corporate resolver"): every A question gets ANSWER."""

    ANSWER = "192.0.2.77"

    def __init__(self, hub_netns: str) -> None:
        self.hub_netns = hub_netns
        self.asked: list[str] = []

    def __enter__(self) -> OutsideResolver:
        def bind() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((OUTSIDE, 53))
            sock.settimeout(0.2)
            return sock

        self.sock = nsutil.in_netns(nsutil.netns_path(self.hub_netns), bind)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="outside-resolver", daemon=True)
        self.thread.start()
        return self

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            self.asked.append(query.question[0].name.to_text())
            reply = dns.message.make_response(query)
            if query.question[0].rdtype == dns.rdatatype.A:
                reply.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", self.ANSWER))
            self.sock.sendto(reply.to_wire(), peer)

    def __exit__(self, *exc_info) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()


# -- the tests ----------------------------------------------------------------------------------------


def test_dns_vip_spread_vxlan_scale_and_dnsrr(cluster):
    m1 = cluster.daemons["m1"]
    m1.ok("network", "create", "-d", "overlay", "front")
    vni = vni_of(m1, "front")
    serve(m1, "api", "front", 3, "--replicas-max-per-node", "1")
    asker = client(cluster, "client", "front")
    tasks = wait_converged(cluster, m1, "api", 3)
    assert {t.node_id for t in tasks} == {d.node_id for d in cluster.daemons.values()}
    vip = str(parse_cidr_address(inspect(m1, "service", "api")["Endpoint"]["VirtualIPs"][0]["Addr"])[0])
    task_ips = {overlay_ip(t, "front") for t in tasks}

    assert wait_until(lambda: lookup(asker, "api") == {vip}, timeout=5, what="api -> its VIP")
    assert wait_until(lambda: lookup(asker, "tasks.api") == task_ips, timeout=5, what="tasks.api -> 3 IPs")
    assert lookup(asker, "nosuchservice") is None

    sent_before = vxlan_packets(cluster.daemons["m1"], vni)
    spread = answers(asker, "http://api/", 300)
    assert "FAILED" not in spread and len(spread) == 3 and sum(spread.values()) == 300, spread
    assert min(spread.values()) >= 60, f"each replica should get >= 20 % of 300: {spread}"
    tx, rx = vxlan_packets(cluster.daemons["m1"], vni)
    assert tx > sent_before[0] + 100 and rx > sent_before[1] + 100, (sent_before, (tx, rx))

    # Scale to 1: DNS and the VIP's rotation follow as soon as the managers say so.
    m1.ok("service", "scale", "-d", "api=1")
    started = time.monotonic()
    left = wait_until(lambda: (ips := lookup(asker, "tasks.api")) and len(ips) == 1 and ips, timeout=10,
                      interval=0.05, what="tasks.api down to one IP")
    followed = time.monotonic() - started
    print(f"scale 3 -> 1: tasks.api answered one IP {followed:.2f} s after the CLI returned")
    assert followed <= 1.5, followed  # 1 s, plus one `docker exec` of the probe
    assert left <= task_ips
    rotation = answers(asker, "http://api/", 20)
    assert len(rotation) == 1 and "FAILED" not in rotation, rotation

    # dnsrr: the name gives the tasks' IPs, there is no VIP.
    serve(m1, "rr", "front", 2, "--endpoint-mode", "dnsrr")
    rr_ips = {overlay_ip(t, "front") for t in wait_converged(cluster, m1, "rr", 2)}
    assert not inspect(m1, "service", "rr")["Endpoint"].get("VirtualIPs")
    assert wait_until(lambda: lookup(asker, "rr") == rr_ips, timeout=5, what="rr -> its 2 task IPs")
    remove(m1, "api", "client", "rr")


def test_isolation_between_networks_internal_has_no_way_out(cluster):
    m1 = cluster.daemons["m1"]
    m1.ok("network", "create", "-d", "overlay", "blue")
    m1.ok("network", "create", "-d", "overlay", "green")
    m1.ok("network", "create", "-d", "overlay", "--internal", "sealed")
    serve(m1, "bluesvc", "blue", 1, "--constraint", f"node.hostname=={cluster.daemons['h2'].hostname}")
    blue_ip = overlay_ip(wait_converged(cluster, m1, "bluesvc", 1)[0], "blue")
    on_blue = client(cluster, "onblue", "blue")
    on_green = client(cluster, "ongreen", "green")
    wait_until(lambda: reaches(on_blue, "bluesvc"), timeout=10, what="bluesvc reachable on blue")
    assert lookup(on_green, "bluesvc") is None
    assert not reaches(on_green, blue_ip)
    # Egress: a task on a normal overlay gets out through its host (the hub refuses port 80: it got there);
    # one on an --internal network only has no default route, so no way out at all.
    assert "refused" in way_out(on_blue)
    sealed = client(cluster, "insealed", "sealed")
    assert "default" not in in_task(sealed, "ip route")
    assert "unreachable" in way_out(sealed)
    remove(m1, "bluesvc", "onblue", "ongreen", "insealed")


def test_a_tasks_dns_servers_answer_the_names_the_swarm_does_not(cluster):
    """--dns on a task of an overlay: its resolv.conf names only the embedded resolver (as docker's), which
    asks those servers, not the node's, for names that are not the swarm's."""
    m1 = cluster.daemons["m1"]
    m1.ok("network", "create", "-d", "overlay", "dnsnet")
    try:
        with OutsideResolver(cluster.lab.hub) as outside:
            with_dns = client(cluster, "withdns", "dnsnet", "h2", "--dns", OUTSIDE, "--dns-search", "corp.example")
            plain = client(cluster, "nodns", "dnsnet", "h2")
            resolv = in_task(with_dns, "cat /etc/resolv.conf")
            assert [line for line in resolv.splitlines() if line.startswith("nameserver")] == ["nameserver 127.0.0.11"], resolv
            assert "search corp.example" in resolv and "options ndots:0" in resolv, resolv  # as docker writes it
            assert lookup(with_dns, "intranet.corp.example") == {OutsideResolver.ANSWER}
            assert "intranet.corp.example." in outside.asked
            asked = len(outside.asked)
            assert lookup(plain, "other.corp.example") != {OutsideResolver.ANSWER}  # the node's resolvers, not ours
            # (busybox's nslookup tries the search domains first whatever ndots says: an absolute name here)
            assert lookup(with_dns, "nodns.") and len(outside.asked) == asked  # swarm names stay the swarm's
    finally:
        m1.cli("service", "rm", "withdns", "nodns")
        wait_until(lambda: m1.cli("network", "rm", "dnsnet").code == 0, timeout=30, what="dnsnet removable")


def test_partitioned_host_is_unreachable_then_back_without_stale_entries(cluster):
    m1, h3 = cluster.daemons["m1"], cluster.daemons["h3"]
    m1.ok("network", "create", "-d", "overlay", "part")
    vni = vni_of(m1, "part")
    serve(m1, "papi", "part", 3, "--replicas-max-per-node", "1")
    asker = client(cluster, "pclient", "part")
    tasks = wait_converged(cluster, m1, "papi", 3)
    by_host = {cluster.by_node_id(t.node_id).name: overlay_ip(t, "part") for t in tasks}
    for ip in by_host.values():
        wait_until(lambda: reaches(asker, ip), timeout=10, what=f"{ip} reachable")

    cluster.cut([h3], [m1, cluster.daemons["h2"]])
    try:
        assert not reaches(asker, by_host["h3"])
        assert reaches(asker, by_host["m1"]) and reaches(asker, by_host["h2"])
    finally:
        cluster.heal()
    cluster.wait_ready(timeout=60)
    tasks = wait_converged(cluster, m1, "papi", 3, timeout=60)
    for task in tasks:
        wait_until(lambda: reaches(asker, overlay_ip(task, "part")), timeout=20, what="every task reachable again")
    # The FDB of m1 holds exactly the remote tasks of now (papi's, on h2 and h3), nothing stale.
    m1_id = m1.node_id
    remote = {mac_for(parse_cidr_address(a.addresses[0])[0])
              for t in running_tasks(m1, "papi") if t.node_id != m1_id
              for a in t.networks if a.network.spec.annotations.name == "part"}
    wait_until(lambda: fdb_macs(m1, vni) == remote, timeout=5, what="m1's FDB to hold exactly the live peers",
               details=lambda: f"{fdb_macs(m1, vni)} != {remote}")
    remove(m1, "papi", "pclient")


def test_a_restarted_worker_adopts_and_cleanup_is_exact(cluster):
    m1, h2 = cluster.daemons["m1"], cluster.daemons["h2"]
    m1.ok("network", "create", "-d", "overlay", "adopt")
    serve(m1, "aapi", "adopt", 1, "--constraint", f"node.hostname=={h2.hostname}")
    asker = client(cluster, "aclient", "adopt")
    wait_converged(cluster, m1, "aapi", 1)
    wait_until(lambda: reaches(asker, "aapi"), timeout=10, what="aapi reachable")
    plumbed = kernel_counts(cluster, "h2")
    h2.restart()
    cluster.wait_ready(timeout=60)
    wait_until(lambda: reaches(asker, "aapi"), timeout=10, what="aapi reachable after h2's daemon restarted")
    time.sleep(1)  # let the restarted daemon's first passes run
    assert kernel_counts(cluster, "h2") == plumbed  # adopted: nothing added twice, nothing lost
    remove(m1, "aapi", "aclient")

    for network in ("front", "blue", "green", "sealed", "part", "adopt"):
        wait_until(lambda: m1.cli("network", "rm", network).code == 0, timeout=30, what=f"network {network} removable")
    assert wait_until(lambda: all(kernel_counts(cluster, h) == cluster.baseline[h] for h in cluster.daemons),
                      timeout=15, what="every host back to its links, addresses, routes, rules and namespaces",
                      details=lambda: f"{ {h: kernel_counts(cluster, h) for h in cluster.daemons} } != {cluster.baseline}")
