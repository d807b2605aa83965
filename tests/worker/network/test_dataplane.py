"""The node data plane on real kernels: 3 hosts as network namespaces, busybox task containers.

No control plane: each host's model is cut from a plain cluster view (cluster_view.py) and applied to
that host's NodeDataPlane, as the worker will do with what the dispatcher sends.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import socket
import subprocess
import time
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import dns.message
import dns.rrset
import pytest

from swarmpy.worker.network import netns as nsutil
from tests.worker.network.cluster_view import Net, Service, Task, host_models
from tests.worker.network.lab import OUTSIDE, NetLab, run

pytestmark = pytest.mark.docker

FRONT = Net("frontnet0001", "front", 4097, IPv4Network("10.0.1.0/24"))
BACK = Net("backnet00002", "back", 4098, IPv4Network("10.0.2.0/24"), internal=True)


@pytest.fixture
async def lab(busybox_image):
    lab = NetLab()
    try:
        yield lab
    finally:
        await lab.close()


async def apply_all(lab: NetLab, nets, tasks, upstreams=()) -> None:
    models = host_models(lab.hosts, nets, tasks, upstreams)
    await asyncio.gather(*(lab.planes[host].apply(model) for host, model in models.items()))


def vxlan_counters(lab: NetLab, host: str, vni: int) -> tuple[int, int]:
    """(tx, rx) packets of the host's VXLAN device for `vni`."""
    plane = lab.planes[host]
    out = run("ip", "-n", plane.names.overlay_ns(vni), "-s", "-o", "link", "show", f"vx-{vni:06x}")
    fields = out.split("\\")
    rx = int(fields[3].split()[1])
    tx = int(fields[5].split()[1])
    return tx, rx


async def answered_by(lab: NetLab, container: str, url: str, count: int) -> collections.Counter:
    out = await lab.exec(container, f"for i in $(seq {count}); do timeout 3 wget -qO- {url} || echo FAILED; done",
                         check=False, timeout=120)
    return collections.Counter(out.split())


async def resolve(lab: NetLab, container: str, name: str) -> tuple[str, set[str]]:
    out = await lab.exec(container, f"nslookup {name} 2>&1", check=False)
    after_name = out.split(f"Name:\t{name}", 1)
    addresses = {line.split()[1] for line in out.splitlines() if line.startswith("Address: ")}
    status = "NXDOMAIN" if "NXDOMAIN" in out else ("ok" if len(after_name) > 1 else out.strip())
    return status, addresses


class FakeUpstream(asyncio.DatagramProtocol):
    """The node's own resolver, out on the underlay: answers every A query with 192.0.2.7."""

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        query = dns.message.from_wire(data)
        reply = dns.message.make_response(query)
        reply.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "192.0.2.7"))
        self.transport.sendto(reply.to_wire(), addr)


async def test_overlay_vip_dns_isolation_and_egress_across_three_hosts(lab):
    for host in ("h1", "h2", "h3"):
        lab.add_host(host)
    api = Service("svcapi000001", "api", {FRONT.id: IPv4Address("10.0.1.2")}, aliases=("web",))
    client_svc = Service("svcclient001", "client", {FRONT.id: IPv4Address("10.0.1.10")})
    lone = Service("svclone00001", "lone", {BACK.id: IPv4Address("10.0.2.2")})
    rr = Service("svcrr0000001", "rr")  # dnsrr: no VIP
    tasks = [
        Task(f"apitask{i}", api, i, f"h{i}", lab.start_container(f"api{i}"), {FRONT.id: IPv4Interface(f"10.0.1.{2 + i}/24")})
        for i in (1, 2, 3)
    ]
    client = lab.start_container("client")
    lone_c = lab.start_container("lone")
    rr_c = lab.start_container("rr")
    tasks += [
        Task("clienttask1", client_svc, 1, "h1", client, {FRONT.id: IPv4Interface("10.0.1.20/24")}),
        Task("lonetask1", lone, 1, "h2", lone_c, {BACK.id: IPv4Interface("10.0.2.5/24")}),
        Task("rrtask1", rr, 1, "h3", rr_c, {FRONT.id: IPv4Interface("10.0.1.30/24")}),
    ]
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        FakeUpstream, sock=_bound_udp(nsutil.netns_path(lab.hub), OUTSIDE))
    try:
        await apply_all(lab, [FRONT, BACK], tasks, upstreams=(OUTSIDE,))
        # Applying the same models again changes nothing.
        before = lab.counts()
        await apply_all(lab, [FRONT, BACK], tasks, upstreams=(OUTSIDE,))
        assert lab.counts() == before

        # DNS: VIP, task IPs, aliases, task names, dnsrr, forwarding, NXDOMAIN.
        assert await resolve(lab, client, "api") == ("ok", {"10.0.1.2"})
        assert await resolve(lab, client, "web") == ("ok", {"10.0.1.2"})
        assert await resolve(lab, client, "tasks.api") == ("ok", {"10.0.1.3", "10.0.1.4", "10.0.1.5"})
        assert await resolve(lab, client, "api.2.apitask2") == ("ok", {"10.0.1.4"})
        assert await resolve(lab, client, "rr") == ("ok", {"10.0.1.30"})
        assert await resolve(lab, client, "example.org") == ("ok", {"192.0.2.7"})
        assert (await resolve(lab, client, "nosuchservice"))[0] == "NXDOMAIN"

        # A request to a task on another host crosses the VXLAN: h1's device sends, h2's receives.
        tx1, _ = vxlan_counters(lab, "h1", FRONT.vni)
        _, rx2 = vxlan_counters(lab, "h2", FRONT.vni)
        assert (await answered_by(lab, client, "http://10.0.1.4/", 5)) == {"api2": 5}
        assert vxlan_counters(lab, "h1", FRONT.vni)[0] >= tx1 + 10
        assert vxlan_counters(lab, "h2", FRONT.vni)[1] >= rx2 + 10
        mtu = await lab.exec(client, "cat /sys/class/net/eth0/mtu; cat /sys/class/net/eth0/address")
        assert mtu.split() == ["1450", "02:42:0a:00:01:14"]

        # The VIP spreads 300 requests over the 3 tasks, each at least 20 %.
        spread = await answered_by(lab, client, "http://api/", 300)
        assert set(spread) == {"api1", "api2", "api3"} and min(spread.values()) >= 60, spread

        # Isolation: the internal network's task cannot resolve or reach api, and has no way out;
        # the front network's client has egress through the node's masquerade.
        assert (await resolve(lab, lone_c, "api"))[0] == "NXDOMAIN"
        assert "FAILED" in await lab.exec(lone_c, "timeout 3 wget -qO- http://10.0.1.4/ || echo FAILED", check=False)
        assert "default" not in await lab.exec(lone_c, "ip route")
        assert "FAILED" in await lab.exec(lone_c, f"ping -c1 -W1 {OUTSIDE} || echo FAILED", check=False)
        assert " 0% packet loss" in await lab.exec(client, f"ping -c1 -W2 {OUTSIDE}", check=False)

        # Scale api to 1: names and rotation follow within 1 s of the apply.
        run("docker", "rm", "-f", tasks[1].container, tasks[2].container)
        remaining = [t for t in tasks if t.id not in ("apitask2", "apitask3")]
        started = time.monotonic()
        await apply_all(lab, [FRONT, BACK], remaining, upstreams=(OUTSIDE,))
        assert await resolve(lab, client, "tasks.api") == ("ok", {"10.0.1.3"})
        assert await answered_by(lab, client, "http://api/", 10) == {"api1": 10}
        assert time.monotonic() - started < 1 + 3.0  # the apply plus the checks' own docker exec time
        # h3 kept its rr task, h2 its internal task: their front/back namespaces follow their endpoints.
        assert lab.planes["h2"].names.overlay_ns(FRONT.vni) not in run("ip", "netns", "list")
        assert lab.planes["h3"].names.overlay_ns(FRONT.vni) in run("ip", "netns", "list")
    finally:
        transport.close()


def _bound_udp(netns_path: str, address: IPv4Address) -> socket.socket:
    sock = nsutil.socket_in_netns(netns_path, socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((str(address), 53))
    sock.setblocking(False)
    return sock


async def test_cleanup_is_exact_and_a_restarted_node_adopts_what_it_had(lab):
    for host in ("h1", "h2"):
        lab.add_host(host)
    counts_before = lab.counts()
    api = Service("svcapi000001", "api", {FRONT.id: IPv4Address("10.0.1.2")})
    lone = Service("svclone00001", "lone", {BACK.id: IPv4Address("10.0.2.2")})
    tasks = [
        Task("apitask1", api, 1, "h1", lab.start_container("api1"), {FRONT.id: IPv4Interface("10.0.1.3/24")}),
        Task("apitask2", api, 2, "h2", lab.start_container("api2"), {FRONT.id: IPv4Interface("10.0.1.4/24")}),
        Task("lonetask1", lone, 1, "h1", lab.start_container("lone"), {BACK.id: IPv4Interface("10.0.2.3/24")}),
    ]
    await apply_all(lab, [FRONT, BACK], tasks)
    plumbed = lab.counts()
    assert plumbed["h1"]["namespaces"] == counts_before["h1"]["namespaces"] + 3  # h1: 2 networks, h2: 1
    assert plumbed["h1"]["links"] > counts_before["h1"]["links"]

    # A restart: a new data plane for each node adopts the kernel as it is, without touching it.
    for host in list(lab.planes):
        await lab.planes[host].close()
        lab.planes[host] = type(lab.planes[host])(lab.node_ids[host], node_netns=lab.namespace(host))
    await apply_all(lab, [FRONT, BACK], tasks)
    assert lab.counts() == plumbed
    spread = await answered_by(lab, tasks[0].container, "http://api/", 20)
    assert set(spread) <= {"api1", "api2"} and sum(spread.values()) == 20, spread
    assert sum((await answered_by(lab, tasks[0].container, "http://10.0.1.4/", 3)).values()) == 3
    egress = run("ip", "-n", lab.namespace("h1"), "-o", "link", "show", "master", lab.planes["h1"].names.egress_bridge)
    assert len(egress.splitlines()) == 1  # the api task's egress veth was adopted, not doubled

    # The tasks stop: everything the nodes made goes, links, addresses, routes, rules and namespaces.
    for task in tasks:
        run("docker", "rm", "-f", task.container)
    await apply_all(lab, [FRONT, BACK], [])
    nft_tables = run("ip", "netns", "exec", lab.namespace("h1"), "nft", "list", "tables")
    assert nft_tables.strip() == ""
    for _ in range(50):  # the kernel frees a deleted namespace's devices asynchronously
        if lab.counts() == counts_before:
            break
        await asyncio.sleep(0.1)
    assert lab.counts() == counts_before


def _without(model, task_ips, *, peers: bool):
    """`model` with the service records (and, if `peers`, the peer entries) of `task_ips` taken out: the
    view of a node before those tasks were RUNNING (or before they were even placed)."""
    networks = []
    for net in model.networks:
        services = tuple(dataclasses.replace(svc, tasks=tuple(t for t in svc.tasks if t.ip not in task_ips))
                         for svc in net.services)
        kept = tuple(p for p in net.peers if not (peers and p.ip in task_ips))
        networks.append(dataclasses.replace(net, services=services, peers=kept))
    return dataclasses.replace(model, networks=tuple(networks))


async def test_names_are_answered_on_receipt_of_a_view_once_their_path_is_programmed(lab):
    for host in ("h1", "h2"):
        lab.add_host(host)
    api = Service("svcapi000001", "api", {FRONT.id: IPv4Address("10.0.1.2")})
    client_svc = Service("svcclient001", "client", {FRONT.id: IPv4Address("10.0.1.10")})
    tasks = [
        Task(f"apitask{i}", api, i, "h2", lab.start_container(f"api{i}"), {FRONT.id: IPv4Interface(f"10.0.1.{2 + i}/24")})
        for i in (1, 2)
    ]
    client = lab.start_container("client")
    tasks.append(Task("clienttask1", client_svc, 1, "h1", client, {FRONT.id: IPv4Interface("10.0.1.20/24")}))
    models = host_models(lab.hosts, [FRONT], tasks)
    await lab.planes["h2"].apply(models["h2"])  # both api tasks plumbed on h2: they could report RUNNING
    full, api2 = models["h1"], {IPv4Address("10.0.1.4")}
    h1 = lab.planes["h1"]
    # h1's last pass knew nothing of api2 yet; then the view with api2 RUNNING arrives.
    await h1.apply(_without(full, api2, peers=True))
    h1.publish_names(full)
    assert await resolve(lab, client, "tasks.api") == ("ok", {"10.0.1.3"})  # no FDB entry for api2 on h1 yet
    assert await resolve(lab, client, "api") == ("ok", {"10.0.1.2"})  # the VIP's rules are there
    # h1's last pass programmed api2 as a peer (placed, not yet running); the RUNNING view is answered at
    # once, with no pass in between, and the address answers.
    await h1.apply(_without(full, api2, peers=False))
    assert await resolve(lab, client, "tasks.api") == ("ok", {"10.0.1.3"})
    h1.publish_names(full)
    assert await resolve(lab, client, "tasks.api") == ("ok", {"10.0.1.3", "10.0.1.4"})
    assert (await answered_by(lab, client, "http://10.0.1.4/", 1)) == {"api2": 1}
    # A task that stops leaves the answers as soon as the view says so.
    h1.publish_names(_without(full, {IPv4Address("10.0.1.3")}, peers=True))
    assert await resolve(lab, client, "tasks.api") == ("ok", {"10.0.1.4"})
    # A new service's name waits for its VIP's rules in the asking container.
    db = Service("svcdb0000001", "db", {FRONT.id: IPv4Address("10.0.1.30")})
    with_db = host_models(lab.hosts, [FRONT], [*tasks, Task("dbtask1", db, 1, "h2", tasks[0].container,
                                                             {FRONT.id: IPv4Interface("10.0.1.31/24")})])["h1"]
    h1.publish_names(with_db)
    assert (await resolve(lab, client, "db"))[0] == "NXDOMAIN"
    await h1.apply(with_db)
    assert await resolve(lab, client, "db") == ("ok", {"10.0.1.30"})


async def test_peers_of_a_newer_view_are_programmed_between_two_container_plumbings(lab):
    lab.add_host("h1")
    svc = Service("svcapi000001", "api", {FRONT.id: IPv4Address("10.0.1.2")})
    first = Task("t1", svc, 1, "h1", lab.start_container("a1"), {FRONT.id: IPv4Interface("10.0.1.3/24")})
    second = Task("t2", svc, 2, "h1", lab.start_container("a2"), {FRONT.id: IPv4Interface("10.0.1.4/24")})
    far = Task("t3", svc, 3, "h9", "f" * 64, {FRONT.id: IPv4Interface("10.0.1.5/24")})
    underlays = {**lab.hosts, "h9": IPv4Address("10.231.9.99")}
    plumber = lab.planes["h1"].plumber
    await asyncio.to_thread(plumber.reconcile, host_models(underlays, [FRONT], [first])["h1"])
    newer = host_models(underlays, [FRONT], [first, second, far])["h1"]
    told = []
    plumber.newest = lambda: newer
    plumber.on_peers = lambda network_id, peers: told.append((network_id, peers))
    # This pass's own model does not have t3 yet; plumbing t2 makes room to catch up with the newer one.
    await asyncio.to_thread(plumber.reconcile, host_models(underlays, [FRONT], [first, second])["h1"])
    ns = lab.planes["h1"].names.overlay_ns(FRONT.vni)
    fdb = run("ip", "netns", "exec", ns, "bridge", "fdb", "show", "dev", f"vx-{FRONT.vni:06x}")
    assert "02:42:0a:00:01:05 dst 10.231.9.99" in fdb
    assert "10.0.1.5 lladdr 02:42:0a:00:01:05 PERMANENT" in run("ip", "-n", ns, "neigh", "show", "dev", f"vx-{FRONT.vni:06x}")
    assert told == [(FRONT.id, {IPv4Address("10.0.1.5"): "10.231.9.99"})]
    assert plumber.caught_up == {FRONT.id: {IPv4Address("10.0.1.5"): "10.231.9.99"}}
    # A whole pass without t3 (and nothing newer) takes it out again: catching up only ever adds.
    plumber.newest = lambda: None
    await asyncio.to_thread(plumber.reconcile, host_models(underlays, [FRONT], [first, second])["h1"])
    assert "02:42:0a:00:01:05" not in run("ip", "netns", "exec", ns, "bridge", "fdb", "show", "dev", f"vx-{FRONT.vni:06x}")


async def test_a_container_that_dies_midway_fails_alone_and_leaves_no_half_made_veth(lab):
    lab.add_host("h1")
    svc = Service("svcapi000001", "api", {FRONT.id: IPv4Address("10.0.1.2")})
    alive = Task("t1", svc, 1, "h1", lab.start_container("a1"), {FRONT.id: IPv4Interface("10.0.1.3/24")})
    dying = Task("t2", svc, 2, "h1", lab.start_container("a2"), {FRONT.id: IPv4Interface("10.0.1.4/24")})
    plane = lab.planes["h1"]
    plumber = plane.plumber
    finished = subprocess.Popen(["true"])
    finished.wait()
    real_pid_of = plumber.pid_of
    plumber.pid_of = lambda c: finished.pid if c == dying.container else real_pid_of(c)  # its process has exited
    plumbed = await asyncio.to_thread(plumber.reconcile, host_models(lab.hosts, [FRONT], [alive, dying])["h1"])
    assert set(plumbed) == {alive.container}
    assert alive.container in plumber.egress_ips and dying.container not in plumber.egress_ips
    assert any(dying.container[:12] in failure and "egress" in failure for failure in plumber.failures), plumber.failures
    links = run("ip", "-n", lab.namespace("h1"), "-o", "link", "show")
    assert "swg" + dying.container[:10] not in links and plane.names.egress_veth(dying.container) not in links


async def test_peers_are_diffed_against_what_was_programmed_and_read_back_when_due(lab, monkeypatch):
    from swarmpy.worker.network import kernel

    lab.add_host("h1")
    svc = Service("svcapi000001", "api", {FRONT.id: IPv4Address("10.0.1.2")})
    local = Task("t1", svc, 1, "h1", lab.start_container("a1"), {FRONT.id: IPv4Interface("10.0.1.3/24")})
    far = [Task(f"t{n}", svc, n, "h9", f"{n}" * 64, {FRONT.id: IPv4Interface(f"10.0.1.{n + 3}/24")}) for n in (2, 3)]
    underlays = {**lab.hosts, "h9": IPv4Address("10.231.9.99")}
    plumber = lab.planes["h1"].plumber
    reads = []
    real_read = kernel.Plumber._read_peers
    monkeypatch.setattr(kernel.Plumber, "_read_peers", staticmethod(lambda ov, vxlan: reads.append(vxlan) or real_read(ov, vxlan)))
    ns, vxlan = lab.planes["h1"].names.overlay_ns(FRONT.vni), f"vx-{FRONT.vni:06x}"

    def fdb() -> str:
        return run("ip", "netns", "exec", ns, "bridge", "fdb", "show", "dev", vxlan)

    await asyncio.to_thread(plumber.reconcile, host_models(underlays, [FRONT], [local, far[0]])["h1"])
    assert len(reads) == 1  # the first pass reads the tables back (what a restarted daemon adopts)
    # A new peer, and one gone: written from the difference with the last pass, nothing read back.
    await asyncio.to_thread(plumber.reconcile, host_models(underlays, [FRONT], [local, far[1]])["h1"])
    assert len(reads) == 1
    assert "02:42:0a:00:01:06 dst 10.231.9.99" in fdb() and "02:42:0a:00:01:05" not in fdb()
    assert "10.0.1.5" not in run("ip", "-n", ns, "neigh", "show", "dev", vxlan)
    # Something deleted behind the data plane's back is repaired by the first pass that reads back.
    run("ip", "netns", "exec", ns, "bridge", "fdb", "del", "02:42:0a:00:01:06", "dev", vxlan, "dst", "10.231.9.99")
    run("ip", "-n", ns, "neigh", "del", "10.0.1.6", "dev", vxlan)
    monkeypatch.setattr(kernel, "VERIFY_INTERVAL", 0.0)
    await asyncio.to_thread(plumber.reconcile, host_models(underlays, [FRONT], [local, far[1]])["h1"])
    assert len(reads) == 2
    assert "02:42:0a:00:01:06 dst 10.231.9.99" in fdb()
    assert "10.0.1.6 lladdr 02:42:0a:00:01:06 PERMANENT" in run("ip", "-n", ns, "neigh", "show", "dev", vxlan)
