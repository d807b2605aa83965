"""The routing mesh end to end (issue 12): three swarmpyd hosts, each in a network namespace of its own,
driven by the CLI; clients outside them (the lab's hub namespace) reach a published port at every
host's address, host 1 running no task of the service.

Each daemon runs under `nsenter --net` (not `ip netns exec`, whose private mount namespace would hide the
overlay namespaces the daemon makes); its data plane plumbs its tasks and joins the ingress network in
its host's namespace. The hosts' namespaces and what the daemons plumbed are removed at teardown.
"""

from __future__ import annotations

import asyncio
import collections
import re
import threading
import time

import pytest

from swarmpy.worker.network import netns as nsutil
from tests.integration.conftest import wait_until
from tests.worker.network.mesh_lab import TaskServers, http_bodies, parse_proxy_header, tcp_exchange, udp_answers

from .conftest import HEARTBEAT
from .test_partition import PartitionableCluster, PartitionLab, _delete_namespaces_of_dead_runs, _require_network_tools, _run

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

WEB = "mkdir -p /www && hostname > /www/index.html && httpd -p 81 -h /www && exec httpd -f -p 80 -h /www"


class MeshLab(PartitionLab):
    """The partition lab's hosts, with an address for clients in the hub and daemons run by nsenter."""

    CLIENT = "10.231.7.254"

    def open(self) -> None:
        super().open()
        _run("ip", "-n", self.hub, "addr", "add", f"{self.CLIENT}/24", "dev", "br0")
        _run("ip", "-n", self.hub, "link", "set", "lo", "up")

    def launcher(self, host: str) -> tuple[str, ...]:
        return ("nsenter", f"--net={nsutil.netns_path(self.namespace(host))}")


@pytest.fixture
def mesh(docker, tmp_path, busybox_image):
    _require_network_tools()
    _delete_namespaces_of_dead_runs()
    lab = MeshLab()
    cluster = PartitionableCluster(tmp_path, docker, lab)
    with lab, cluster.torn_down():
        first = cluster.add("h1")
        first.node_netns = lab.namespace("h1")
        first.ok("swarm", "init", "--advertise-addr", first.ip, "--listen-addr", first.addr,
                 "--dispatcher-heartbeat", HEARTBEAT)
        first.refresh_node_id()
        cluster.refresh_tokens(first)
        for name in ("h2", "h3"):
            cluster.join(name, "worker", through=first).node_netns = lab.namespace(name)
        cluster.wait_ready()
        yield cluster


def hub(cluster) -> str:
    return nsutil.netns_path(cluster.lab.hub)


def answers(cluster, host: str, count: int, port: int = 8080) -> collections.Counter:
    return collections.Counter(asyncio.run(http_bodies(hub(cluster), cluster.lab.addresses[host], port, count)))


def port_open(cluster, host: str, port: int) -> bool:
    reply = asyncio.run(tcp_exchange(hub(cluster), cluster.lab.addresses[host], port, b"GET / HTTP/1.0\r\n\r\n", timeout=2))
    return reply is not None and b"200 OK" in reply


def test_published_port_answers_on_every_host_spread_over_the_tasks(mesh, image):
    h1 = mesh["h1"]
    network = h1.ok("network", "inspect", "ingress", "--format", "{{.Name}} {{.Ingress}} {{(index .IPAM.Config 0).Subnet}}")
    assert network.stdout.strip() == "ingress true 10.0.0.0/24"
    h1.ok("service", "create", "-d", "--name", "web", "--replicas", "2", "--constraint", "node.role==worker",
          "--replicas-max-per-node", "1", "--stop-grace-period", "1s", "-p", "8080:80", image, "sh", "-c", WEB)
    wait_until(lambda: "*:8080->80/tcp" in h1.ok("service", "ls").stdout and "2/2" in h1.ok("service", "ls").stdout,
               timeout=60, what="web 2/2 with its port", details=lambda: h1.cli("service", "ps", "web").stdout)
    names = wait_until(lambda: (lambda seen: seen if len(seen) == 2 and "FAILED" not in seen else None)(
        set(answers(mesh, "h1", 20))), timeout=30, what="both tasks answering through h1")

    # 300 requests at each host's address, h1 included (it runs no task): both tasks, each >= 25 %.
    for host in ("h1", "h2", "h3"):
        spread = answers(mesh, host, 300)
        assert set(spread) == names and min(spread.values()) >= 75, (host, spread)

    # A task's container is killed: the other keeps answering, the replacement joins the rotation.
    victim = next(c for c in mesh.our_running_containers("web") if c.labels["swarmpy.node.id"] == mesh["h2"].node_id)
    killed = time.monotonic()
    victim.kill()
    tries, failures = 0, []
    while time.monotonic() - killed < 12:
        tries += 1
        if asyncio.run(http_bodies(hub(mesh), mesh.lab.addresses["h1"], 8080, 1)) == ["FAILED"]:
            failures.append(round(time.monotonic() - killed, 1))
    # The dead task leaves the rotation once its worker reports it stopped and every node has the new
    # view: until then a connection sent to it fails (reset while its namespace lingers, else after its
    # 3 s connect timeout), so failures may end up to 1 s + 3 s after the kill. Its replacement (after
    # the restart delay) enters when RUNNING; in some runs one connection fails about then (a known
    # defect, in the notes): at most one failure is allowed past that window.
    print(f"after the kill: {len(failures)} of {tries} connections failed, at {failures} s")
    late = [at for at in failures if at > 4.0]
    if len(late) > 1 or tries - len(failures) < 20:
        tables = _run("ip", "netns", "exec", mesh.lab.namespace("h1"), "nft", "list", "ruleset")
        pytest.fail(f"{len(failures)} of {tries} failed, at {failures} s after the kill\n"
                    f"{h1.cli('service', 'ps', 'web').stdout}\n{tables}\n{h1.log_tail(60)}")
    new_names = wait_until(lambda: (lambda seen: seen if len(seen) == 2 and "FAILED" not in seen else None)(
        set(answers(mesh, "h3", 30))), timeout=45, what="the replacement in the rotation")
    assert new_names != names  # a new container (its hostname) answers

    # publish-add, publish-rm, rm: the port opens and closes on every host, checked from outside.
    h1.ok("service", "update", "-d", "--publish-add", "8081:81", "web")
    wait_until(lambda: all(port_open(mesh, h, 8081) for h in ("h1", "h2", "h3")), timeout=15, what="8081 open everywhere")
    tasks_before = h1.ok("service", "ps", "-q", "web").stdout.split()
    h1.ok("service", "update", "-d", "--publish-rm", "80", "web")  # docker's: by target port
    wait_until(lambda: not any(port_open(mesh, h, 8080) for h in ("h1", "h2", "h3")), timeout=15, what="8080 closed")
    assert all(port_open(mesh, h, 8081) for h in ("h1", "h2", "h3"))
    assert h1.ok("service", "ps", "-q", "web").stdout.split() == tasks_before  # no task was restarted
    started = time.monotonic()
    h1.ok("service", "rm", "web")
    wait_until(lambda: not any(port_open(mesh, h, 8081) for h in ("h1", "h2", "h3")), timeout=15, what="8081 closed")
    assert time.monotonic() - started < 15

    # Bad input: one line naming the field and value, nothing changed.
    for flags, message in [
        (("-p", "published=8080,target=80,mode=host,proxy-protocol=v2"), "proxy-protocol"),
        (("-p", "published=8080,target=0"), "target"),
        (("-p", "published=8080,target=80,protocol=icmp"), "icmp"),
    ]:
        bad = h1.cli("service", "create", "-d", "--name", "bad", *flags, image, "sleep", "1000")
        assert bad.code != 0 and message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad
    assert "bad" not in h1.ok("service", "ls").stdout


def test_udp_source_addresses_proxy_v2_and_host_mode(mesh, image):
    h1 = mesh["h1"]
    h1.ok("service", "create", "-d", "--name", "probe", "--replicas", "2", "--constraint", "node.role==worker",
          "--replicas-max-per-node", "1", "--stop-grace-period", "1s", "-p", "published=9053,target=5353,protocol=udp",
          "-p", "8081:81", "-p", "published=8082,target=82,proxy-protocol=v2", image, "sleep", "100000")
    containers = wait_until(lambda: (lambda found: found if len(found) == 2 else None)(mesh.our_running_containers("probe")),
                            timeout=60, what="2 probe tasks")
    host_of = {c.id: mesh.by_node_id(c.labels["swarmpy.node.id"]).name for c in containers}
    # Test servers inside the tasks' namespaces (busybox has no UDP server and cannot read a PROXY header),
    # served by an event loop of their own while the test's clients run.
    servers, loop = TaskServers(), asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        for c in containers:
            asyncio.run_coroutine_threadsafe(servers.start(host_of[c.id], c.id, 5353, 81, 82), loop).result(15)
        wait_until(lambda: set(asyncio.run(udp_answers(hub(mesh), mesh.lab.addresses["h1"], 9053, 20))) == {"h2", "h3"},
                   timeout=20, what="UDP answered by both tasks through h1")
        for host in ("h2", "h3"):
            assert set(asyncio.run(udp_answers(hub(mesh), mesh.lab.addresses[host], 9053, 30))) == {"h2", "h3"}
        # Source addresses: through h2, its own task sees the client, h3's sees h2's ingress address.
        seen = collections.defaultdict(set)
        for _ in range(40):
            reply = asyncio.run(tcp_exchange(hub(mesh), mesh.lab.addresses["h2"], 8081))
            assert reply is not None
            peer, name = reply.decode().split()
            seen[name].add(peer)
        assert seen["h2"] == {MeshLab.CLIENT}, seen
        assert len(seen["h3"]) == 1 and next(iter(seen["h3"])).startswith("10.0.0."), seen
        # PROXY v2 through h1 (no task there): the header names the client and the address it dialled.
        for _ in range(6):
            assert asyncio.run(tcp_exchange(hub(mesh), mesh.lab.addresses["h1"], 8082, b"hello")) in (b"h2", b"h3")
        received = [data for datas in servers.received.values() for data in datas]
        assert len(received) == 6
        for data in received:
            src, _, dst, dport, rest = parse_proxy_header(data)
            assert (src, dst, dport, rest) == (MeshLab.CLIENT, mesh.lab.addresses["h1"], 8082, b"hello")
    finally:
        asyncio.run_coroutine_threadsafe(servers.close(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
    h1.ok("service", "rm", "probe")

    # Host mode: two tasks, one host, the same host port.
    h2_name = h1.ok("node", "inspect", mesh["h2"].node_id, "--format", "{{.Description.Hostname}}").stdout.strip()
    h1.ok("service", "create", "-d", "--name", "hm", "--replicas", "2", "--constraint", f"node.hostname=={h2_name}",
          "--stop-grace-period", "1s", "-p", "published=18090,target=80,mode=host", image, "sh", "-c", WEB)

    def settled():
        listing = h1.ok("service", "ps", "--no-trunc", "hm").stdout
        running = re.search(r"Running\s+Running", listing)
        return listing if running and "host-mode port already in use on 1 node" in listing else None

    listing = wait_until(settled, timeout=60, what="one running, one pending", details=lambda: h1.cli("service", "ps", "hm").stdout)
    running = [line for line in listing.splitlines() if re.search(r"Running\s+Running", line)]
    assert len(running) == 1 and re.search(r"\*:18090->80/tcp", running[0]), listing
    h1.ok("service", "rm", "hm")
