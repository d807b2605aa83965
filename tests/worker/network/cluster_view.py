"""A cluster's networks, services and tasks as the managers would hold them, cut into each host's model.

The control plane does this from the store; the data-plane tests and benchmarks do it from plain lists,
so they exercise the node side alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from swarmpy.worker.network.model import (
    LocalEndpoint,
    NetworkView,
    NodeNetworks,
    RemotePeer,
    ServiceRecord,
    TaskRecord,
    mac_for_ip,
)


@dataclass
class Net:
    id: str
    name: str
    vni: int
    subnet: IPv4Network
    internal: bool = False

    @property
    def gateway(self) -> IPv4Address:
        return next(self.subnet.hosts())


@dataclass
class Service:
    id: str
    name: str
    vips: dict[str, IPv4Address] = field(default_factory=dict)  # network id → VIP; empty: dnsrr
    aliases: tuple[str, ...] = ()


@dataclass
class Task:
    id: str
    service: Service
    slot: int
    host: str
    container: str
    addresses: dict[str, IPv4Interface]  # network id → ip/prefix

    @property
    def name(self) -> str:
        return f"{self.service.name}.{self.slot}.{self.id}"


def host_models(
    underlays: dict[str, IPv4Address], nets: list[Net], tasks: list[Task], upstreams: tuple[IPv4Address, ...] = ()
) -> dict[str, NodeNetworks]:
    models = {}
    for host, underlay in underlays.items():
        views = []
        for net in nets:
            on_net = [t for t in tasks if net.id in t.addresses]
            local = [t for t in on_net if t.host == host]
            if not local:
                continue
            services = {t.service.id: t.service for t in on_net}
            views.append(NetworkView(
                id=net.id, name=net.name, vni=net.vni, subnet=net.subnet, gateway=net.gateway,
                internal=net.internal,
                endpoints=tuple(LocalEndpoint(t.id, t.name, t.container, t.addresses[net.id]) for t in local),
                peers=tuple(
                    RemotePeer(t.addresses[net.id].ip, mac_for_ip(t.addresses[net.id].ip), underlays[t.host])
                    for t in on_net if t.host != host
                ),
                services=tuple(
                    ServiceRecord(
                        svc.id, svc.name, svc.vips.get(net.id),
                        tuple(TaskRecord(t.name, t.addresses[net.id].ip) for t in on_net if t.service is svc),
                        svc.aliases,
                    )
                    for svc in services.values()
                ),
            ))
        models[host] = NodeNetworks(underlay=underlay, networks=tuple(views), upstream_resolvers=upstreams)
    return models
