"""Makes one node's links, addresses, routes, neighbours and FDB entries match a NodeNetworks model.

Theory of operation
-------------------
Blocking netlink (pyroute2), so `Plumber.reconcile` runs on a thread of its own (the data plane's
`apply` hands it there); it reads the kernel, compares, and changes only what differs, in one direction:
the model is the truth, the kernel follows, and running it twice changes nothing the second time.

Layout, per node (the "node namespace" is the daemon's own, or the test host's):

    node ns:     swpgw<tag>  egress bridge, <egress gateway>/16, masquerade (nftrules)  [if any egress]
                 sg<cid11>   egress veth of a container (ifalias records its address)     [non-internal]
    per network: namespace swp-<tag>-ov-<vni hex>, created with the node's first running endpoint on
                 the network and deleted with its last:
                   ov-<vni>  bridge holding the gateway address
                   vx-<vni>  VXLAN (id VNI, dstport, local = underlay, learning off, proxy ARP on, no
                             group: no multicast), created in the node ns and moved in, so its UDP socket
                             stays on the underlay; per remote peer a permanent neighbour IP->MAC and an
                             FDB entry MAC->VTEP; local endpoints never enter the FDB
                   ve<cid11> host end of a container's veth, enslaved to ov-<vni>
    container:   ethN (MTU 1450, docker's MAC, ip/prefix) per network, in network order; ethK on the
                 egress bridge with the default route when any of its networks is not --internal; a
                 container only on internal networks has no default route, so no way out.

Adoption after a restart needs no state file: everything is found by name (namespaces by prefix, veths
by the container ID in their name, egress addresses in the veth's ifalias), compared with the model and
kept, fixed or deleted.

Reading the kernel cheaply. pyroute2 decodes netlink in Python, under the GIL the daemon's event loop
needs: a pass that dumped each namespace's links, FDB and neighbours and looked up every veth by name
held the GIL for a third of a node's busy time while 100 tasks started, and the loop (DNS answers, the
views, the status reports) starved for up to a second. So a pass lists link names and indexes through
libc (netns.link_indexes, decoded in C), reads a link's attributes only for what it has not seen (an
egress veth's ifalias, once), and diffs a network's peers against what this Plumber last programmed in
that namespace (`_Programmed`), reading the FDB and neighbour tables back in full only on the first pass
(adoption), after any failure there, when the VXLAN device changed, and every VERIFY_INTERVAL, so
anything changed behind its back is repaired within that time. Deleting a network's namespace takes its bridge, VXLAN and veths (and so the
containers' ends) with it; the kernel frees them asynchronously, so callers that count links wait.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from pyroute2 import IPRoute, netns as pyroute2_netns
from pyroute2.netlink.exceptions import NetlinkError

from swarmpy.worker.network import netns as nsutil
from swarmpy.worker.network.model import LocalEndpoint, NetworkView, NodeNetworks

log = logging.getLogger(__name__)

NUD_PERMANENT = 0x80
EGRESS_ALIAS = "swarmpy-egress"
VERIFY_INTERVAL = 30.0  # seconds between full reads of a namespace's FDB and neighbour tables


@dataclass(frozen=True)
class Names:
    """Every kernel name the data plane owns, from the node's tag, so adoption can find them again."""

    tag: str  # short, unique per node on one machine (node ID prefix)

    @property
    def ns_prefix(self) -> str:
        return f"swp-{self.tag}-ov-"

    def overlay_ns(self, vni: int) -> str:
        return f"{self.ns_prefix}{vni:06x}"

    @staticmethod
    def bridge(vni: int) -> str:
        return f"ov-{vni:06x}"

    @staticmethod
    def vxlan(vni: int) -> str:
        return f"vx-{vni:06x}"

    @staticmethod
    def endpoint_veth(container: str) -> str:
        return f"ve{container[:11]}"

    @staticmethod
    def egress_veth(container: str) -> str:
        return f"sg{container[:11]}"

    @property
    def egress_bridge(self) -> str:
        return f"swpgw{self.tag[:8]}"

    @property
    def egress_table(self) -> str:
        return f"swarmpy_egress_{self.tag}"

    @property
    def host_ports_table(self) -> str:
        return f"swarmpy_hostports_{self.tag}"


@dataclass
class Plumbed:
    """What the reconcile found or made for one running container, for the nft and DNS layers."""

    container: str
    pid: int
    networks: list[str] = field(default_factory=list)


@dataclass
class _Programmed:
    """A network namespace's peers as this Plumber left them: its VXLAN device's index, the FDB entries
    (MAC, VTEP) and neighbours (IP, MAC) there, and when they were last read back from the kernel."""

    vxlan: int
    fdb: set[tuple[str, str]]
    neigh: set[tuple[str, str]]
    verified: float


def _attr(msg: object, name: str) -> object:
    return msg.get_attr(name)  # type: ignore[attr-defined]



def delete_link_quietly(handle: IPRoute, index: int) -> None:
    """Delete a link that may be gone already: a veth goes with its peer, or with the namespace its peer
    was in, between our lookup and our delete."""
    try:
        handle.link("del", index=index)
    except NetlinkError as exc:
        if exc.code != errno.ENODEV:
            raise

class Plumber:
    def __init__(
        self,
        names: Names,
        node_netns: str | None,
        pid_of: Callable[[str], int | None],
        egress_subnet: IPv4Network,
    ) -> None:
        self.names = names
        self.node_netns_path = nsutil.netns_path(node_netns)
        self.node_netns = node_netns
        self.pid_of = pid_of
        self.egress_subnet = egress_subnet
        self.egress_gateway = next(egress_subnet.hosts())
        self._node: IPRoute | None = None
        self._overlays: dict[str, IPRoute] = {}
        # Catching up with newer peers mid-pass (see `_catch_up`): where the newest model is read, who is
        # told of peers programmed early (called on this thread), and what was programmed that way.
        self.newest: Callable[[], NodeNetworks | None] = lambda: None
        self.on_peers: Callable[[str, dict[IPv4Address, str]], None] = lambda network_id, peers: None
        self.caught_up: dict[str, dict[IPv4Address, str]] = {}
        self._peers: dict[str, tuple[NetworkView, int, dict[IPv4Address, str]]] = {}  # ns -> (net, vxlan, ip -> vtep)
        # What earlier passes of this process programmed or read (see the module docstring), kept across
        # passes: per overlay namespace its peers; per egress veth name (index, container, address), or
        # (index, None, None) for a link of that name that is not ours.
        self._programmed: dict[str, _Programmed] = {}
        self._egress_known: dict[str, tuple[int, str | None, IPv4Address | None]] = {}

    # -- handles -----------------------------------------------------------------------------------------
    def node(self) -> IPRoute:
        if self._node is None:
            self._node = nsutil.iproute(self.node_netns)
        return self._node

    def overlay(self, ns: str) -> IPRoute:
        if ns not in self._overlays:
            self._overlays[ns] = nsutil.iproute(ns)
        return self._overlays[ns]

    def close(self) -> None:
        for handle in [self._node, *self._overlays.values()]:
            if handle is not None:
                handle.close()
        self._node = None
        self._overlays.clear()

    # -- the reconcile -----------------------------------------------------------------------------------
    def reconcile(self, model: NodeNetworks) -> dict[str, Plumbed]:
        """Make the kernel match `model`; returns the plumbed running containers by container ID.

        The netlink handles live for one reconcile: pyroute2's IPRoute belongs to the thread that made
        it, and each reconcile runs on whichever thread the executor gives it."""
        try:
            return self._reconcile(model)
        finally:
            self.close()

    def _reconcile(self, model: NodeNetworks) -> dict[str, Plumbed]:
        started = time.monotonic()
        pids: dict[str, int] = {}
        for container in model.containers:
            pid = self.pid_of(container)
            if pid:
                pids[container] = pid
            else:
                log.info("container %s is not running: not plumbed", container[:12])
        self.pid_lookup_seconds = time.monotonic() - started
        wanted = {
            self.names.overlay_ns(net.vni): net
            for net in model.networks
            # The ingress network is on every node with an address there (the routing mesh joins it: mesh.py).
            if any(ep.container in pids for ep in net.endpoints) or net.node_address is not None
        }
        for ns in self._existing_overlays():
            if ns not in wanted:
                self._remove_overlay(ns)
        plumbed: dict[str, Plumbed] = {}
        # One network or one container failing (a VNI another process holds, a container dying midway) is
        # recorded and the rest done: the caller applies what worked and tries the failures again.
        self.failures = []
        self.failed_networks = set()
        self.caught_up = {}
        self._peers = {}
        for ns, net in wanted.items():
            try:
                bridge, links = self._ensure_overlay(ns, net, model)
            except (NetlinkError, OSError) as exc:
                self._programmed.pop(ns, None)  # half programmed: read back whole next time
                self.failures.append(f"network {net.name} (VNI {net.vni}): {exc}")
                self.failed_networks.add(net.id)
                continue
            for ep in net.endpoints:
                if ep.container not in pids:
                    continue
                try:
                    if self._ensure_endpoint(ns, net, ep, pids[ep.container], bridge, links):
                        self._catch_up()
                except (NetlinkError, OSError, StopIteration) as exc:
                    self.failures.append(f"task {ep.task_id} on network {net.name}: {exc}")
                    continue
                plumbed.setdefault(ep.container, Plumbed(ep.container, pids[ep.container])).networks.append(net.id)
            self._remove_stale_endpoints(ns, {ep.container for ep in net.endpoints if ep.container in pids})
        egress = {
            c: pids[c]
            for c in pids
            if any(not net.internal for net, _ in model.endpoints_of(c))
        }
        for container in self._reconcile_egress(egress):  # not plumbed until it has its way out too
            plumbed.pop(container, None)
        return plumbed

    # -- overlay namespaces ------------------------------------------------------------------------------
    def _existing_overlays(self) -> list[str]:
        return sorted(n for n in pyroute2_netns.listnetns() if n.startswith(self.names.ns_prefix))

    def _remove_overlay(self, ns: str) -> None:
        handle = self._overlays.pop(ns, None)
        if handle is not None:
            handle.close()
        self._programmed.pop(ns, None)
        log.info("removing overlay namespace %s", ns)
        pyroute2_netns.remove(ns)

    def _ensure_overlay(self, ns: str, net: NetworkView, model: NodeNetworks) -> tuple[int, dict[str, int]]:
        """The network's namespace, bridge, VXLAN and peers; returns the bridge's index and the links the
        namespace had when the pass began (name -> index)."""
        if ns not in pyroute2_netns.listnetns():
            self._programmed.pop(ns, None)  # a namespace of that name deleted behind our back
            log.info("creating overlay namespace %s for network %s (VNI %d)", ns, net.name, net.vni)
            nsutil.create_netns(ns)
            nsutil.write_sysctl(nsutil.netns_path(ns), "net.ipv4.ip_forward", "0")
        ov = self.overlay(ns)
        ov.link("set", index=1, state="up")
        bridge = self._ensure_bridge(ov, net)
        vxlan = self._ensure_vxlan(ns, ov, net, model, bridge)
        self._program_peers(ns, ov, vxlan, net)
        self._peers[ns] = (net, vxlan, {p.ip: str(p.vtep) for p in net.peers})
        return bridge, nsutil.link_indexes(ns)

    def _catch_up(self) -> None:
        """Program the peers a newer model added since this pass began, between two container plumbings.

        A pass that plumbs tens of new containers takes seconds on a loaded node, and a remote task that
        starts meanwhile is RUNNING (and named by the managers) long before the next pass programs its
        FDB entry: its name would wait for all of it. Peers are additive and cheap, so the newest model's
        new ones are added now and reported (`on_peers`: the resolver may name them). Only additions,
        and only of addresses not programmed elsewhere (an address that moved to another VTEP waits for
        a whole pass, which also deletes what left)."""
        newest = self.newest()
        if newest is None:
            return
        for ns, (net, vxlan, have) in self._peers.items():
            later = next((n for n in newest.networks if n.id == net.id and n.vni == net.vni), None)
            if later is None:
                continue
            macs = {p.mac for p in net.peers}
            new = [p for p in later.peers if p.ip not in have and p.mac not in macs and p.vtep != newest.underlay]
            if not new:
                continue
            ov = self.overlay(ns)
            programmed = self._programmed.pop(ns, None)  # back once all went in: a failure leaves it unknown
            for peer in new:
                ov.fdb("append", ifindex=vxlan, lladdr=peer.mac, dst=str(peer.vtep), state=NUD_PERMANENT)
                ov.neigh("replace", ifindex=vxlan, dst=str(peer.ip), lladdr=peer.mac, state=NUD_PERMANENT)
                have[peer.ip] = str(peer.vtep)
                if programmed is not None:
                    programmed.fdb.add((peer.mac, str(peer.vtep)))
                    programmed.neigh.add((str(peer.ip), peer.mac))
            if programmed is not None:
                self._programmed[ns] = programmed
            added = {peer.ip: str(peer.vtep) for peer in new}
            self.caught_up.setdefault(net.id, {}).update(added)
            self.on_peers(net.id, added)

    def _ensure_bridge(self, ov: IPRoute, net: NetworkView) -> int:
        name = Names.bridge(net.vni)
        found = ov.link_lookup(ifname=name)
        if not found:
            ov.link("add", ifname=name, kind="bridge", mtu=net.mtu)
            found = ov.link_lookup(ifname=name)
        index = found[0]
        gateway = IPv4Interface(f"{net.gateway}/{net.subnet.prefixlen}")
        have = {(_attr(a, "IFA_ADDRESS"), a["prefixlen"]) for a in ov.get_addr(index=index, family=2)}
        for address, prefix in have - {(str(gateway.ip), gateway.network.prefixlen)}:
            ov.addr("del", index=index, address=address, prefixlen=prefix)
        if (str(gateway.ip), gateway.network.prefixlen) not in have:
            ov.addr("add", index=index, address=str(gateway.ip), prefixlen=gateway.network.prefixlen)
        ov.link("set", index=index, state="up")
        return index

    def _ensure_vxlan(self, ns: str, ov: IPRoute, net: NetworkView, model: NodeNetworks, bridge: int) -> int:
        name = Names.vxlan(net.vni)
        found = ov.link_lookup(ifname=name)
        if found:
            info = ov.get_links(found[0])[0].get(("IFLA_LINKINFO", "IFLA_INFO_DATA"))
            current = (info.get("IFLA_VXLAN_ID"), info.get("IFLA_VXLAN_PORT"), info.get("IFLA_VXLAN_LOCAL"))
            if current != (net.vni, model.vxlan_port, str(model.underlay)):
                log.info("VXLAN %s in %s is %s, wanted %s: recreating", name, ns, current, net.vni)
                ov.link("del", index=found[0])
                found = []
        if not found:
            node = self.node()
            stale = node.link_lookup(ifname=name)  # left in the node ns by a crash between add and move
            if stale:
                node.link("del", index=stale[0])
            node.link(
                "add", ifname=name, kind="vxlan", vxlan_id=net.vni, vxlan_port=model.vxlan_port,
                vxlan_local=str(model.underlay), vxlan_learning=0, vxlan_proxy=1, mtu=net.mtu,
            )
            node.link("set", index=node.link_lookup(ifname=name)[0], net_ns_fd=ns)
            found = ov.link_lookup(ifname=name)
        index = found[0]
        ov.link("set", index=index, master=bridge, mtu=net.mtu, state="up")
        return index

    def _program_peers(self, ns: str, ov: IPRoute, vxlan: int, net: NetworkView) -> None:
        """The FDB and neighbour entries of the network's remote peers, diffed against what this Plumber
        programmed there (the kernel's tables read back only when that is unknown or due, see the module
        docstring). The record is dropped while the entries change, so a failure midway leaves it unknown."""
        want_fdb = {(p.mac, str(p.vtep)) for p in net.peers}
        want_neigh = {(str(p.ip), p.mac) for p in net.peers}
        known = self._programmed.pop(ns, None)
        now = time.monotonic()
        if known is not None and known.vxlan == vxlan and now - known.verified < VERIFY_INTERVAL:
            have_fdb, have_neigh, verified = known.fdb, known.neigh, known.verified
        else:
            have_fdb, have_neigh, verified = self._read_peers(ov, vxlan), self._read_neighbours(ov, vxlan), now
        for mac, vtep in have_fdb - want_fdb:
            ov.fdb("del", ifindex=vxlan, lladdr=mac, dst=vtep)
        for ip, mac in have_neigh - want_neigh:
            ov.neigh("del", ifindex=vxlan, dst=ip, lladdr=mac)
        for mac, vtep in want_fdb - have_fdb:
            ov.fdb("append", ifindex=vxlan, lladdr=mac, dst=vtep, state=NUD_PERMANENT)
        for ip, mac in want_neigh - have_neigh:
            ov.neigh("replace", ifindex=vxlan, dst=ip, lladdr=mac, state=NUD_PERMANENT)
        self._programmed[ns] = _Programmed(vxlan, want_fdb, want_neigh, verified)

    @staticmethod
    def _read_peers(ov: IPRoute, vxlan: int) -> set[tuple[str, str]]:
        return {
            (_attr(m, "NDA_LLADDR"), _attr(m, "NDA_DST"))
            for m in ov.fdb("dump", ifindex=vxlan)
            if _attr(m, "NDA_DST") and m["ifindex"] == vxlan
        }

    @staticmethod
    def _read_neighbours(ov: IPRoute, vxlan: int) -> set[tuple[str, str]]:
        return {
            (_attr(m, "NDA_DST"), _attr(m, "NDA_LLADDR"))
            for m in ov.neigh("dump", ifindex=vxlan, family=2)
            if m["state"] & NUD_PERMANENT
        }

    # -- container endpoints -----------------------------------------------------------------------------
    def _ensure_endpoint(self, ns: str, net: NetworkView, ep: LocalEndpoint, pid: int, bridge: int,
                         links: dict[str, int]) -> bool:
        """Returns whether it had to plumb the endpoint (False: it was there). `links`: the namespace's
        links as the pass found them."""
        ov = self.overlay(ns)
        host_end = Names.endpoint_veth(ep.container)
        if host_end in links:
            return False  # plumbed earlier (or by the daemon before a restart); its container end went in with it
        peer_name = "cp" + ep.container[:11]
        ov.link("add", ifname=host_end, kind="veth", peer={"ifname": peer_name, "mtu": net.mtu}, mtu=net.mtu)
        ov.link("set", index=ov.link_lookup(ifname=host_end)[0], master=bridge, state="up")
        self._move_into_container(
            ov, peer_name, pid, net.mtu, ep.mac, ep.address, default_via=None
        )
        return True

    def _move_into_container(
        self, source: IPRoute, temp_name: str, pid: int, mtu: int, mac: str | None,
        address: IPv4Interface, default_via: IPv4Address | None,
    ) -> None:
        source.link("set", index=source.link_lookup(ifname=temp_name)[0], net_ns_pid=pid)
        with nsutil.iproute(nsutil.container_netns(pid)) as inner:
            names = {link.get("ifname") for link in inner.get_links()}
            ifname = next(f"eth{i}" for i in range(64) if f"eth{i}" not in names)
            index = inner.link_lookup(ifname=temp_name)[0]
            settings = {"ifname": ifname, "mtu": mtu}
            if mac:
                settings["address"] = mac
            inner.link("set", index=index, **settings)
            inner.link("set", index=1, state="up")
            inner.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen)
            inner.link("set", index=index, state="up")
            if default_via is not None:
                inner.route("replace", dst="0.0.0.0/0", gateway=str(default_via), oif=index)

    def _remove_stale_endpoints(self, ns: str, containers: set[str]) -> None:
        """Host ends of endpoints no longer wanted, and any temporary end a crash left between add and move."""
        ov = self.overlay(ns)
        keep = {Names.endpoint_veth(c) for c in containers}
        for name, index in nsutil.link_indexes(ns).items():
            if (name.startswith("ve") and name not in keep) or name.startswith("cp"):
                log.info("removing stale endpoint %s in %s", name, ns)
                delete_link_quietly(ov, index)

    # -- egress (docker_gwbridge) ------------------------------------------------------------------------
    def _reconcile_egress(self, containers: dict[str, int]) -> set[str]:
        """The egress bridge and each container's veth on it; returns the containers it failed to plumb."""
        node = self.node()
        egress_failed: set[str] = set()
        bridge_name = self.names.egress_bridge
        links = nsutil.link_indexes(self.node_netns)
        existing = self._egress_addresses(links)
        for name, index in links.items():
            if name.startswith("swg"):  # a temporary end a crash left before the move
                delete_link_quietly(node, index)
        for container, (index, _) in list(existing.items()):
            if container not in containers:
                log.info("removing egress endpoint of %s", container)
                delete_link_quietly(node, index)
                self._egress_known.pop(Names.egress_veth(container), None)
                del existing[container]
        found = node.link_lookup(ifname=bridge_name)
        if not containers:
            if found:
                node.link("del", index=found[0])
            self.egress_active = False
            self.egress_ips = {}
            return egress_failed
        if not found:
            node.link("add", ifname=bridge_name, kind="bridge")
            found = node.link_lookup(ifname=bridge_name)
            node.addr("add", index=found[0], address=str(self.egress_gateway), prefixlen=self.egress_subnet.prefixlen)
            node.link("set", index=found[0], state="up")
            nsutil.write_sysctl(self.node_netns_path, "net.ipv4.ip_forward", "1")
        self.egress_active = True
        used = {self.egress_gateway} | {ip for _, ip in existing.values()}
        free = (ip for ip in self.egress_subnet.hosts() if ip not in used)
        for container, pid in containers.items():
            if container in existing:
                continue
            address = IPv4Interface(f"{next(free)}/{self.egress_subnet.prefixlen}")
            host_end, temp = Names.egress_veth(container), "swg" + container[:10]
            # One container dying midway (ESRCH on the move into its namespace) fails only that container:
            # its half-made veth goes, the others are plumbed, and the caller retries the failure.
            try:
                node.link("add", ifname=host_end, kind="veth", peer={"ifname": temp})
                index = node.link_lookup(ifname=host_end)[0]
                node.link("set", index=index, master=found[0], ifalias=f"{EGRESS_ALIAS} {address} {container}", state="up")
                self._move_into_container(node, temp, pid, 1500, None, address, default_via=self.egress_gateway)
            except (NetlinkError, OSError, IndexError) as exc:
                self.failures.append(f"egress of container {container[:12]}: {exc}")
                egress_failed.add(container)
                for name in (host_end, temp):
                    for stale in node.link_lookup(ifname=name):
                        delete_link_quietly(node, stale)
                continue
            self._egress_known[host_end] = (index, container, address.ip)
            self._catch_up()
            existing[container] = (index, address.ip)
        self.egress_ips = {container: ip for container, (_, ip) in existing.items() if container in containers}
        return egress_failed

    def _egress_addresses(self, links: dict[str, int]) -> dict[str, tuple[int, IPv4Address]]:
        """The node's egress veths by container: (link index, the address recorded in its ifalias). A
        link's ifalias is read once per index (a veth made by this process is known from its making)."""
        found: dict[str, tuple[int, IPv4Address]] = {}
        known = {name: self._egress_known[name] for name in links if name in self._egress_known}
        for name, index in links.items():
            if not name.startswith("sg"):
                continue
            if name not in known or known[name][0] != index:
                try:
                    alias = self.node().get_links(index)[0].get("IFLA_IFALIAS") or ""
                except NetlinkError as exc:
                    if exc.code != errno.ENODEV:
                        raise
                    continue  # gone since the listing
                if alias.startswith(EGRESS_ALIAS):
                    _, address, container = alias.split()
                    known[name] = (index, container, IPv4Interface(address).ip)
                else:
                    known[name] = (index, None, None)
            _, container, ip = known[name]
            if container is not None and ip is not None:
                found[container] = (index, ip)
        self._egress_known = known  # links that went are forgotten
        return found

    egress_active = False
    pid_lookup_seconds = 0.0  # of the last reconcile: asking the engine for new containers' pids
    egress_ips: dict[str, IPv4Address] = {}  # container -> its egress address, after the last reconcile
    failures: list[str] = []  # what the last reconcile could not do, one line each
    failed_networks: set[str] = set()  # the networks whose namespace, devices or peers it could not make


def count_kernel_objects(netns_path: str, ns_prefixes: tuple[str, ...] = ("",)) -> dict[str, int]:
    """Links, addresses, routes and rules of a namespace, and the named namespaces starting with one of
    `ns_prefixes` (all by default): a cleanup check."""
    def count() -> dict[str, int]:
        with IPRoute() as ipr:
            return {
                "links": len(ipr.get_links()),
                "addresses": len(ipr.get_addr()),
                "routes": len(ipr.get_routes(family=2)),
                "rules": len(ipr.get_rules(family=2)),
            }

    counts = nsutil.in_netns(netns_path, count)
    names = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    counts["namespaces"] = sum(1 for name in names if name.startswith(ns_prefixes))
    return counts
