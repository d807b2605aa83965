"""One node's overlay data plane: `await NodeDataPlane.apply(model)` makes the kernel match a NodeNetworks.

Theory of operation
-------------------
The worker owns one NodeDataPlane. Whenever its view of the networks changes (a task of this node
starts or stops, a peer comes or goes, a service's tasks change), it builds the whole NodeNetworks model
(model.py) and calls `apply`; there are no incremental calls to get out of step. `apply` is one
reconcile pass, serialised by a lock, in three layers:

1. kernel.py, on a thread (netlink blocks): namespaces, bridges, VXLAN devices, FDB and neighbour
   entries, veths into the running containers, egress. Returns which containers are plumbed.
2. nftables: per plumbed container its VIP table (rewritten only when its VIPs or backends changed),
   and the node's egress masquerade table while any container has egress.
3. DNS: the records are swapped, and each plumbed container gets its 127.0.0.11 listener.
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
the empty model.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network

from swarmpy.worker.network import netns as nsutil
from swarmpy.worker.network import nftrules
from swarmpy.worker.network.dns import Resolver
from swarmpy.worker.network.forward_accept import ForwardAccepts
from swarmpy.worker.network.kernel import Names, Plumbed, Plumber
from swarmpy.worker.network.mesh import Mesh, ingress_of
from swarmpy.worker.network.model import NodeNetworks

log = logging.getLogger(__name__)

DEFAULT_EGRESS_SUBNET = IPv4Network("172.31.0.0/16")
LB_WRITES_AT_ONCE = 8


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
    script = nftrules.delete_table(names.egress_table) + nftrules.delete_table(Mesh(names, node_netns).table)
    command = ["nsenter", f"--net={nsutil.netns_path(node_netns)}", "nft", "-f", "-"]
    subprocess.run(command, input=script, text=True, capture_output=True, timeout=15, check=False)
    return removed


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
        self._lb_applied: dict[str, str] = {}  # container → the LB ruleset last written into it
        self._egress_rules: str | None = None
        self.plumbed: dict[str, Plumbed] = {}

    async def apply(self, model: NodeNetworks) -> None:
        async with self._lock:
            plumbed = await asyncio.to_thread(self.plumber.reconcile, model)
            gone = set(self.plumbed) - set(plumbed)
            self.plumbed = plumbed
            for container in gone:
                self._lb_applied.pop(container, None)
                await self.resolver.forget(container)
            await self._apply_egress_rules()
            scopes = {c: p.networks for c, p in plumbed.items()}
            self.resolver.update(model, scopes)
            failures = list(self.plumber.failures)
            # Every container's VIP table changes when a service's tasks do: with tens of containers per
            # node, one `nft` at a time made a pass take seconds, so they run a few at once.
            slots = asyncio.Semaphore(LB_WRITES_AT_ONCE)

            async def program(container: str, p: Plumbed) -> None:
                try:
                    async with slots:
                        await self._apply_lb(model, p)
                    await self.resolver.listen(container, p.pid)
                except (RuntimeError, OSError) as exc:  # nft failed, or the container died meanwhile
                    failures.append(f"container {container[:12]}: {exc}")

            await asyncio.gather(*(program(container, p) for container, p in plumbed.items()))
            await self.mesh.apply(model)  # after the plumbing: it needs the ingress overlay namespace
            # Last: the firewall exceptions for what the two above route through this namespace.
            routed = [self.names.egress_bridge] if self.plumber.egress_active else []
            routed += [self.mesh.veth] if ingress_of(model) is not None else []
            try:
                await asyncio.to_thread(self.forwarding.reconcile, routed)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                failures.append(f"forwarding rules: {exc}")
            if failures:
                raise DataPlaneError("; ".join(failures))

    async def teardown(self) -> None:
        """Remove everything this node programmed (the model with no networks)."""
        await self.apply(NodeNetworks(underlay=IPv4Address("192.0.2.1")))

    async def close(self) -> None:
        await self.mesh.close()
        await self.resolver.close()
        await asyncio.to_thread(self.plumber.close)

    async def _apply_lb(self, model: NodeNetworks, plumbed: Plumbed) -> None:
        vips = [
            (svc.vip, svc.backends)
            for net in model.networks
            if net.id in plumbed.networks
            for svc in net.services
            if svc.vip is not None
        ]
        rules = nftrules.lb_ruleset(vips)
        if self._lb_applied.get(plumbed.container) == rules:
            return
        await nsutil.run_nft(nsutil.container_netns(plumbed.pid), rules)
        self._lb_applied[plumbed.container] = rules

    async def _apply_egress_rules(self) -> None:
        table = self.names.egress_table
        if self.plumber.egress_active:
            rules = nftrules.egress_ruleset(table, self.egress_subnet, self.names.egress_bridge)
        else:
            rules = nftrules.delete_table(table)
        if rules != self._egress_rules:
            await nsutil.run_nft(self.node_netns_path, rules)
            self._egress_rules = rules
