"""The routing mesh on one node: `await Mesh.apply(model)` opens the published ports of the ingress network.

Theory of operation
-------------------
Issue 12. Every node, with tasks of a service or without, answers on the service's published ports and
spreads the connections over the service's running tasks wherever they run. The managers send every
node the ingress network with the node's own address there (model.NetworkView.ingress/node_address);
kernel.py keeps that network's overlay namespace (bridge, VXLAN, peers: the tasks and the other nodes'
addresses) on every such node. On top of it this module, in one direction, from the model each time:

1. kernel (pyroute2, on a thread): one veth, `msi<tag>` in the node's namespace holding the node's
   ingress address and docker's MAC for it, its peer `msb<tag>` a port of the ingress bridge; the node
   namespace forwards (ip_forward) and lets 127.0.0.1 leave by the veth (route_localnet). Without an
   ingress network in the model the veth is deleted (its peer goes with it).
2. nftables (meshrules.py): one table in the node's namespace, DNAT from every local address's
   published port to a task's ingress address and target port, masquerading only what must come back
   through this node. Rewritten only when its text changes; deleted with the ingress network.
3. PROXY v2 relays (proxy_relay.py), one per TCP port published with `proxy-protocol=v2`, started and
   stopped to match the model; their backends follow the tasks.

`close()` stops the relays and leaves the kernel (a restarted daemon adopts it: everything is found by
name); `teardown()` also removes the table and the veth.
"""

from __future__ import annotations

import asyncio
import logging
from ipaddress import IPv4Address, IPv4Interface

from pyroute2 import IPRoute

from swarmpy.worker.network import netns as nsutil
from swarmpy.worker.network.nftlib import run_nft
from swarmpy.worker.network.kernel import Names, delete_link_quietly
from swarmpy.worker.network.meshrules import MeshPort, mesh_ruleset, no_mesh
from swarmpy.worker.network.model import NetworkView, NodeNetworks, mac_for_ip
from swarmpy.worker.network.proxy_relay import ProxyRelay

log = logging.getLogger(__name__)


def ingress_of(model: NodeNetworks) -> NetworkView | None:
    return next((net for net in model.networks if net.ingress and net.node_address is not None), None)


def mesh_ports(ingress: NetworkView) -> tuple[list[MeshPort], dict[int, MeshPort]]:
    """(the ports the kernel serves, the PROXY ports by published port) of the ingress network."""
    kernel: list[MeshPort] = []
    relayed: dict[int, MeshPort] = {}
    for service in ingress.services:
        for port in service.ports:
            served = MeshPort(port.protocol, port.published, port.target, service.backends)
            if port.proxy_protocol:
                relayed[port.published] = served
            else:
                kernel.append(served)
    return kernel, relayed


class Mesh:
    def __init__(self, names: Names, node_netns: str | None) -> None:
        self.names = names
        self.node_netns = node_netns
        self.node_netns_path = nsutil.netns_path(node_netns)
        self.veth = f"msi{names.tag[:8]}"
        self.bridge_port = f"msb{names.tag[:8]}"
        self.table = f"swarmpy_mesh_{names.tag}"
        self._rules: str | None = None
        self._relays: dict[int, ProxyRelay] = {}

    async def apply(self, model: NodeNetworks) -> None:
        ingress = ingress_of(model)
        await asyncio.to_thread(self._plumb, ingress)
        if ingress is None:
            await self._set_rules(no_mesh(self.table))
            await self._set_relays({}, None)
            return
        kernel_ports, relayed = mesh_ports(ingress)
        local = [ep.ip for ep in ingress.endpoints]
        await self._set_rules(mesh_ruleset(self.table, self.veth, kernel_ports, local))
        assert ingress.node_address is not None
        await self._set_relays(relayed, ingress.node_address.ip)

    async def close(self) -> None:
        await self._set_relays({}, None)

    async def teardown(self) -> None:
        await self._set_rules(no_mesh(self.table))
        await asyncio.to_thread(self._plumb, None)
        await self.close()

    # -- nftables and relays -------------------------------------------------------------------------
    async def _set_rules(self, rules: str) -> None:
        if rules != self._rules:
            await run_nft(self.node_netns_path, rules)
            self._rules = rules

    async def _set_relays(self, wanted: dict[int, MeshPort], source: IPv4Address | None) -> None:
        for port, relay in list(self._relays.items()):
            if port not in wanted or wanted[port].target != relay.target or relay.source != source:
                await relay.close()
                del self._relays[port]
        for port, served in wanted.items():
            relay = self._relays.get(port)
            if relay is None:
                assert source is not None
                relay = ProxyRelay(self.node_netns_path, port, served.target, source)
                try:
                    await relay.start()
                except OSError as error:
                    log.error("cannot relay published port %d with PROXY v2: %s", port, error)
                    continue
                self._relays[port] = relay
            relay.backends = served.backends

    # -- the veth into the ingress network (blocking: on a thread) ------------------------------------
    def _plumb(self, ingress: NetworkView | None) -> None:
        """One look at the veth on every pass (the cheap part); the rest only when it must be (re)made.
        The handles live for one pass: pyroute2's IPRoute belongs to the thread that made it."""
        with nsutil.iproute(self.node_netns) as node:
            self._plumb_with(node, ingress)

    def _plumb_with(self, node: IPRoute, ingress: NetworkView | None) -> None:
        found = node.link_lookup(ifname=self.veth)
        if ingress is None:
            if found:
                log.info("leaving the ingress network: removing %s", self.veth)
                delete_link_quietly(node, found[0])
            return
        assert ingress.node_address is not None
        mac = mac_for_ip(ingress.node_address.ip)
        if found and self._veth_matches(node, found[0], mac, ingress.node_address):
            return
        if found:
            delete_link_quietly(node, found[0])
        overlay_ns = self.names.overlay_ns(ingress.vni)
        log.info("joining the ingress network as %s on %s", ingress.node_address, self.veth)
        node.link("add", ifname=self.veth, kind="veth", peer={"ifname": self.bridge_port, "mtu": ingress.mtu},
                  mtu=ingress.mtu, address=mac)
        index = node.link_lookup(ifname=self.veth)[0]
        node.addr("add", index=index, address=str(ingress.node_address.ip), prefixlen=ingress.node_address.network.prefixlen)
        node.link("set", index=node.link_lookup(ifname=self.bridge_port)[0], net_ns_fd=overlay_ns)
        with nsutil.iproute(overlay_ns) as overlay:
            port = overlay.link_lookup(ifname=self.bridge_port)[0]
            overlay.link("set", index=port, master=overlay.link_lookup(ifname=Names.bridge(ingress.vni))[0], state="up")
        nsutil.write_sysctl(self.node_netns_path, "net.ipv4.ip_forward", "1")
        nsutil.write_sysctl(self.node_netns_path, f"net.ipv4.conf.{self.veth}.route_localnet", "1")
        node.link("set", index=index, state="up")  # last: a veth that is up was made whole

    @staticmethod
    def _veth_matches(node: IPRoute, index: int, mac: str, address: IPv4Interface) -> bool:
        """Its MAC and address are the wanted ones, it is up, and its peer is still there (a veth whose
        bridge end went with a deleted overlay namespace is deleted with it, so it would not be found)."""
        link = node.get_links(index)[0]
        have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in node.get_addr(index=index, family=2)}
        up = link["flags"] & 1
        return bool(up) and link.get_attr("IFLA_ADDRESS") == mac and have == {(str(address.ip), address.network.prefixlen)}
