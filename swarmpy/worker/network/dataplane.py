"""One node's overlay data plane: `await NodeDataPlane.apply(model)` makes the kernel match a NodeNetworks.

Theory of operation
-------------------
The worker owns one NodeDataPlane. Whenever its view of the networks changes (a task of this node
starts or stops, a peer comes or goes, a service's tasks change), it builds the whole NodeNetworks model
(model.py) and calls `apply`; there are no incremental calls to get out of step. `apply` is one
reconcile pass, serialised by a lock, in layers:

1. kernel.py, on a thread (netlink blocks): namespaces, bridges, VXLAN devices, FDB and neighbour
   entries, veths into the running containers, egress. Returns which containers are plumbed.
2. DNS: the records are swapped for the names whose path this plumbing made (`publish_names`).
3. nftables, in-process (nftlib.py): per plumbed container its VIP table, read back and brought to the
   model by a small transaction of only what differs (nftrules.lb_delta: no table rewrite, no `nft`
   process per container), then the VIP names are published too; the node's egress masquerade table
   while any container has egress, and the node's host-mode port table
   (nftrules.host_ports_ruleset) while a running overlay task publishes one. Each plumbed container gets
   its 127.0.0.11 listener.
4. The routing mesh (mesh.py, issue 12): the node joins the ingress network and opens its published ports.

Contract with the worker (the executor): create each task container with network mode "none" and
`dns=["127.0.0.11"]` (plus the user's --dns-search/--dns-option), start it, then `apply` a model that
lists its endpoints; an endpoint whose container is not running is skipped until a later apply finds
it running. The process therefore starts before its interfaces exist: a task that needs the network at
its first instruction must wait for it (the plumbing takes milliseconds); the engine gives no hook
between creating the namespace and starting the process for a network-"none" container. When a task
stops, apply a model without it: its veths went with its namespace; its listener and VIP table are
dropped. A network or container that fails (another process holding the VNI, a container dying
midway) does not stop the rest: everything else is applied, then `apply` raises DataPlaneError naming
each failure, and the worker applies again later. `close()` stops the listeners but leaves the kernel
as it is, so a restarted daemon adopts it (kernel.py finds everything by name); `teardown()` applies
the empty model. Between passes, `publish_names(model)` (called as soon as a new view arrives) lets the
resolver answer from the newer model, for the names whose path the last pass already programmed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network

from swarmpy.worker.network import netns as nsutil
from swarmpy.worker.network import nftlib, nftrules
from swarmpy.worker.network.dns import Resolver
from swarmpy.worker.network.forward_accept import ForwardAccepts
from swarmpy.worker.network.kernel import Names, Plumbed, Plumber
from swarmpy.worker.network.mesh import Mesh, ingress_of
from swarmpy.worker.network.model import NodeNetworks

log = logging.getLogger(__name__)

DEFAULT_EGRESS_SUBNET = IPv4Network("172.31.0.0/16")


def docker_pid_of(container: str) -> int | None:
    """The running container's init pid from the engine (blocking: called on the reconcile thread)."""
    import docker
    import docker.errors

    client = docker.from_env()
    try:
        state = client.api.inspect_container(container)["State"]
    except docker.errors.NotFound:
        return None
    finally:
        client.close()
    return int(state["Pid"]) if state.get("Running") and state.get("Pid") else None


class DataPlaneError(Exception):
    """Part of a model could not be applied (the rest was): the caller should apply again later."""


def remove_node_leftovers(node_id: str, node_netns: str | None = None) -> list[str]:
    """Delete, by name, what a dead daemon of `node_id` left plumbed (blocking): its overlay namespaces
    (the mesh's veth goes with the ingress one), its egress bridge, its egress and mesh tables. For harnesses that kill daemons; a running daemon adopts
    these instead. Returns what it removed."""
    from pyroute2 import netns as pyroute2_netns

    names = Names(node_id.lower()[:6])
    removed = []
    for ns in pyroute2_netns.listnetns():
        if ns.startswith(names.ns_prefix):
            pyroute2_netns.remove(ns)
            removed.append(ns)
    with nsutil.iproute(node_netns) as node:
        for index in node.link_lookup(ifname=names.egress_bridge):
            node.link("del", index=index)
            removed.append(names.egress_bridge)
    ForwardAccepts(names.tag, nsutil.netns_path(node_netns)).reconcile(())
    script = (nftrules.delete_table(names.egress_table) + nftrules.delete_table(names.host_ports_table)
              + nftrules.delete_table(Mesh(names, node_netns).table))
    nftlib.run(nsutil.netns_path(node_netns), script)
    return removed


def sync_vip_table(netns_path: str, vips: list[nftrules.Vip]) -> bool:
    """Make the LB table in the namespace at `netns_path` (a task container's) serve `vips`, reading
    it back first and writing only the difference (nftrules.lb_delta), in one thread that entered the
    namespace. Blocking. Returns whether anything had to be written."""

    def sync() -> bool:
        listing = json.loads(nftlib.run_here("list ruleset", json=True) or "{}")
        script = nftrules.lb_delta(listing, vips)
        if script is not None:
            nftlib.run_here(script)
        return script is not None

    try:
        return nsutil.in_netns(netns_path, sync)
    except nftlib.NftError as exc:
        raise nftlib.NftError(f"nft in {netns_path} failed: {exc}") from None


def locations(model: NodeNetworks) -> dict[str, dict[IPv4Address, str]]:
    """Per network, where each task address of the model is: "local" or the VTEP of the node it is on."""
    return {
        net.id: {**{peer.ip: str(peer.vtep) for peer in net.peers}, **{ep.ip: "local" for ep in net.endpoints}}
        for net in model.networks
    }


class _PhaseClock:
    """Where a pass spent its time (seconds per phase), for the log line of a slow pass."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._mark = time.monotonic()

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase] = now - self._mark
        self._mark = now


class NodeDataPlane:
    def __init__(
        self,
        node_id: str,
        *,
        node_netns: str | None = None,
        pid_of: Callable[[str], int | None] = docker_pid_of,
        egress_subnet: IPv4Network = DEFAULT_EGRESS_SUBNET,
    ) -> None:
        """`node_netns`: the namespace acting as this node's host (None: the daemon's own); tests run
        several nodes in one process, each in its own."""
        self.names = Names(node_id.lower()[:6])
        self.node_netns_path = nsutil.netns_path(node_netns)
        self.plumber = Plumber(self.names, node_netns, pid_of, egress_subnet)
        self.resolver = Resolver(self.node_netns_path)
        self.mesh = Mesh(self.names, node_netns)
        self.forwarding = ForwardAccepts(self.names.tag, self.node_netns_path)
        self.egress_subnet = egress_subnet
        self._lock = asyncio.Lock()
        self._egress_rules: str | None = None
        self._host_port_rules: str | None = None
        self.plumbed: dict[str, Plumbed] = {}
        self.last_phases: dict[str, float] = {}  # seconds per phase of the last whole pass
        # What the kernel can route to, as the last pass left it (see `publish_names`): per network, each
        # task address with where its path leads ("local": a plumbed veth; else the VTEP its FDB entry
        # names), and per container the VIPs its LB table serves.
        self._paths: dict[str, dict[IPv4Address, str]] = {}
        self._lb_vips: dict[str, set[IPv4Address]] = {}
        self._newest: NodeNetworks | None = None  # the latest model, applied or only published

    def publish_names(self, model: NodeNetworks | None = None) -> None:
        """Answer DNS from `model` (default: the latest one) now, before a pass applies it, with only the
        names whose path is already in the kernel.

        Why this order is safe. The managers list a task's name only once it is RUNNING, and its own
        node reports RUNNING only after plumbing it (node_networking.py, container_started); so what is
        left is this node's side of the path, which is programmed by a pass that may still be queued.
        A task address is therefore published only if the last finished plumbing put its path where the
        model says it is: its FDB and neighbour entries pointing at the VTEP the model gives (a remote
        task; an address reused on another node waits for its new entry), or its veth (a task of this
        node). A VIP is published only on a network whose every plumbed container's LB table serves it
        (a VIP's DNAT, even with older backends, routes; a VIP with no rule would not). Names that left
        the model leave the answers at once: removing is always safe. Everything else waits for the
        pass, which publishes again after plumbing and again after the LB tables."""
        if model is not None:
            self._newest = model
        if self._newest is None:
            return
        reachable: dict[str, set[IPv4Address]] = {}
        for net_id, where in locations(self._newest).items():
            paths = self._paths.get(net_id, {})
            reachable[net_id] = {ip for ip, place in where.items() if paths.get(ip) == place}
        for net in self._newest.networks:
            askers = [c for c, p in self.plumbed.items() if net.id in p.networks]
            served = set.intersection(*(self._lb_vips.get(c, set()) for c in askers)) if askers else None
            reachable[net.id] |= {
                svc.vip for svc in net.services if svc.vip is not None and (served is None or svc.vip in served)
            }
        scopes = {c: p.networks for c, p in self.plumbed.items()}
        self.resolver.update(self._newest, scopes, reachable)

    async def apply(self, model: NodeNetworks) -> None:
        self._newest = model  # the latest until a newer one is published meanwhile
        async with self._lock:
            clock = _PhaseClock()
            loop = asyncio.get_running_loop()
            self.plumber.newest = lambda: self._newest
            self.plumber.on_peers = lambda net_id, peers: loop.call_soon_threadsafe(self._peers_programmed, net_id, peers)
            plumbed = await asyncio.to_thread(self.plumber.reconcile, model)
            clock.lap("plumbing")
            clock.phases["of which pids"] = self.plumber.pid_lookup_seconds
            gone = set(self.plumbed) - set(plumbed)
            self.plumbed = plumbed
            for container in gone:
                self._lb_vips.pop(container, None)
                await self.resolver.forget(container)
            self._paths = {}
            for net in model.networks:
                if net.id in self.plumber.failed_networks:
                    continue  # its FDB may be half programmed: none of its new names until it is whole
                paths = {peer.ip: str(peer.vtep) for peer in net.peers}
                paths.update({ep.ip: "local" for ep in net.endpoints
                              if ep.container in plumbed and net.id in plumbed[ep.container].networks})
                # Peers of a newer model programmed mid-pass are in the kernel too (kernel.py `_catch_up`).
                for ip, vtep in self.plumber.caught_up.get(net.id, {}).items():
                    paths.setdefault(ip, vtep)
                self._paths[net.id] = paths
            self.publish_names()  # the task names whose paths this plumbing made
            clock.lap("names")
            await self._apply_egress_rules()
            await self._apply_host_ports(model)
            failures = list(self.plumber.failures)
            failures += await asyncio.to_thread(self._sync_lb_tables, model, plumbed)
            clock.lap("vip tables")
            self.publish_names()  # and the VIPs the LB tables now serve
            for container, p in plumbed.items():
                try:
                    await self.resolver.listen(container, p.pid)
                except OSError as exc:  # the container died meanwhile
                    failures.append(f"container {container[:12]}: {exc}")
            clock.lap("listeners")
            await self.mesh.apply(model)  # after the plumbing: it needs the ingress overlay namespace
            clock.lap("mesh")
            # Last: the firewall exceptions for what the two above route through this namespace.
            routed = [self.names.egress_bridge] if self.plumber.egress_active else []
            routed += [self.mesh.veth] if ingress_of(model) is not None else []
            try:
                await asyncio.to_thread(self.forwarding.reconcile, routed)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                failures.append(f"forwarding rules: {exc}")
            clock.lap("forwarding")
            self.last_phases = clock.phases
            if failures:
                raise DataPlaneError("; ".join(failures))

    def _peers_programmed(self, network_id: str, peers: dict[IPv4Address, str]) -> None:
        """The plumbing, still running, programmed these peers of a newer model: their names may go out."""
        self._paths.setdefault(network_id, {}).update(peers)
        self.publish_names()

    def _sync_lb_tables(self, model: NodeNetworks, plumbed: dict[str, Plumbed]) -> list[str]:
        """Every plumbed container's VIP table brought to the model (blocking: on a thread). Each is read
        back and only its difference written (sync_vip_table), so an unchanged container costs one
        in-process listing (well under a millisecond), a changed one a small transaction."""
        failures = []
        for container, p in plumbed.items():
            vips = [
                (svc.vip, svc.backends)
                for net in model.networks
                if net.id in p.networks
                for svc in net.services
                if svc.vip is not None
            ]
            try:
                sync_vip_table(nsutil.container_netns(p.pid), vips)
            except (RuntimeError, OSError) as exc:  # nft refused, or the container died meanwhile
                self._lb_vips[container] = set()
                failures.append(f"container {container[:12]}: {exc}")
            else:
                self._lb_vips[container] = {vip for vip, _ in vips}
        return failures

    async def teardown(self) -> None:
        """Remove everything this node programmed (the model with no networks)."""
        await self.apply(NodeNetworks(underlay=IPv4Address("192.0.2.1")))

    async def close(self) -> None:
        await self.mesh.close()
        await self.resolver.close()
        await asyncio.to_thread(self.plumber.close)

    async def _apply_host_ports(self, model: NodeNetworks) -> None:
        """The host-mode ports of the running overlay tasks, DNATed to their egress addresses; a task
        without egress (only --internal networks) has no way in from the node and gets none."""
        egress = self.plumber.egress_ips
        forwards = [(f.protocol, f.published, egress[f.container], f.target)
                    for f in model.host_ports if f.container in egress]
        for unreachable in sorted({f.container for f in model.host_ports if f.container not in egress}):
            log.debug("container %s: host-mode ports not published (no egress interface yet, or internal only)",
                      unreachable[:12])
        rules = nftrules.host_ports_ruleset(self.names.host_ports_table, forwards)
        if rules != self._host_port_rules:
            await nftlib.run_nft(self.node_netns_path, rules)
            self._host_port_rules = rules

    async def _apply_egress_rules(self) -> None:
        table = self.names.egress_table
        if self.plumber.egress_active:
            rules = nftrules.egress_ruleset(table, self.egress_subnet, self.names.egress_bridge)
        else:
            rules = nftrules.delete_table(table)
        if rules != self._egress_rules:
            await nftlib.run_nft(self.node_netns_path, rules)
            self._egress_rules = rules
