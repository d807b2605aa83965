"""The routing mesh's node side on real kernels (issue 12): 3 lab hosts, busybox tasks on hosts 2 and 3,
clients outside (the hub namespace) and on a host itself; no control plane (mesh_lab.py cuts the models)."""

from __future__ import annotations

import asyncio
import collections
import time
from ipaddress import IPv4Interface

import pytest

from swarmpy.worker.network import netns as nsutil
from swarmpy.worker.network.model import PublishedPort
from tests.worker.network.lab import NetLab, run
from tests.worker.network.mesh_lab import (
    MeshCluster,
    MeshTask,
    TaskServers,
    apply_mesh,
    http_bodies,
    parse_proxy_header,
    tcp_exchange,
    udp_answers,
)

pytestmark = pytest.mark.docker

HTTP = PublishedPort("tcp", 8080, 80)
UDP = PublishedPort("udp", 9053, 5353)
PEER = PublishedPort("tcp", 8081, 81)
PROXIED = PublishedPort("tcp", 8082, 82, proxy_protocol="v2")
OUTSIDE_CLIENT = "10.231.9.254"


@pytest.fixture
async def lab(busybox_image):
    lab = NetLab()
    servers = TaskServers()
    lab.servers = servers
    try:
        yield lab
    finally:
        await servers.close()
        await lab.close()


def mesh_cluster(lab: NetLab) -> MeshCluster:
    for host in ("h1", "h2", "h3"):
        lab.add_host(host)
    cluster = MeshCluster({h: IPv4Interface(f"10.0.0.{2 + i}/24") for i, h in enumerate(("h1", "h2", "h3"))})
    cluster.tasks = [
        MeshTask(f"webtask{n}", f"h{n}", lab.start_container(f"web{n}"), IPv4Interface(f"10.0.0.{10 + n}/24"))
        for n in (2, 3)
    ]
    cluster.ports = (HTTP, UDP, PEER, PROXIED)
    return cluster


def tables(lab: NetLab, host: str) -> str:
    return run("ip", "netns", "exec", lab.namespace(host), "nft", "list", "tables")


async def test_a_published_port_answers_on_every_host_spread_over_the_tasks_tcp_and_udp(lab):
    cluster = mesh_cluster(lab)
    before = {h: c for h, c in lab.counts().items()}
    await apply_mesh(lab, cluster)
    for task in cluster.tasks:
        await lab.servers.start(f"web{task.host[1]}", task.container, 5353, 81, 82)
    ruleset = {h: run("ip", "netns", "exec", lab.namespace(h), "nft", "list", "ruleset") for h in lab.hosts}
    counts = lab.counts()
    await apply_mesh(lab, cluster)  # the same view again changes nothing
    assert lab.counts() == counts
    assert {h: run("ip", "netns", "exec", lab.namespace(h), "nft", "list", "ruleset") for h in lab.hosts} == ruleset

    hub = nsutil.netns_path(lab.hub)
    for host, address in lab.hosts.items():
        spread = collections.Counter(await http_bodies(hub, str(address), 8080, 300))
        assert set(spread) == {"web2", "web3"} and min(spread.values()) >= 75, (host, spread)  # each >= 25 %
        answers = collections.Counter(await udp_answers(hub, str(address), 9053, 40))
        assert set(answers) == {"web2", "web3"}, (host, answers)

    # 127.0.0.1 on a host (h1 has no task): through the output hook, route_localnet and a masquerade.
    local = collections.Counter(await http_bodies(lab.netns_path("h1"), "127.0.0.1", 8080, 40))
    assert set(local) == {"web2", "web3"}, local

    # Source addresses: a hit on h2 that lands on h2's task keeps the client's; one sent on to h3 arrives
    # from h2's ingress address (the reverse path).
    seen = collections.Counter()
    for _ in range(60):
        reply = await tcp_exchange(hub, str(lab.hosts["h2"]), 8081)
        seen[reply.decode() if reply else "FAILED"] += 1
    assert set(seen) == {f"{OUTSIDE_CLIENT} web2", "10.0.0.3 web3"}, seen

    # PROXY v2: every connection to 8082 carries the client's address and the address it connected to.
    for host in ("h1", "h2"):
        for _ in range(6):
            assert (await tcp_exchange(hub, str(lab.hosts[host]), 8082, b"hello")) in (b"web2", b"web3")
    received = [data for datas in lab.servers.received.values() for data in datas]
    assert len(received) == 12 and set(lab.servers.received) == {"web2", "web3"}
    for data in received:
        src, sport, dst, dport, rest = parse_proxy_header(data)
        assert src == OUTSIDE_CLIENT and sport > 1024 and dport == 8082 and rest == b"hello"
        assert dst in (str(lab.hosts["h1"]), str(lab.hosts["h2"]))

    # A task stops: it leaves the rotation on every host with the next view.
    run("docker", "rm", "-f", cluster.tasks[1].container)
    cluster.running = {"webtask2"}
    started = time.monotonic()
    await apply_mesh(lab, cluster)
    assert time.monotonic() - started < 1.0, f"the change took {time.monotonic() - started:.2f} s to reach 3 hosts"
    for address in lab.hosts.values():
        assert collections.Counter(await http_bodies(hub, str(address), 8080, 20)) == {"web2": 20}

    # publish-rm then publish-add: the port closes and opens on every host.
    cluster.ports = (UDP, PEER, PROXIED)
    await apply_mesh(lab, cluster)
    for address in lab.hosts.values():
        assert await tcp_exchange(hub, str(address), 8080, b"GET / HTTP/1.0\r\n\r\n") is None
    cluster.ports = (HTTP, UDP, PEER)
    await apply_mesh(lab, cluster)
    for address in lab.hosts.values():
        assert await http_bodies(hub, str(address), 8080, 3) == ["web2"] * 3
        assert await tcp_exchange(hub, str(address), 8082, b"x") is None  # its relay stopped

    # The service goes: exact cleanup, no table, no veth, no namespace left.
    for plane in lab.planes.values():
        await plane.teardown()
    for host in lab.hosts:
        assert "swarmpy_mesh" not in tables(lab, host)
    for _ in range(50):
        if lab.counts() == before:
            break
        await asyncio.sleep(0.1)
    assert lab.counts() == before
