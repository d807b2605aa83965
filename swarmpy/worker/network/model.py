"""The desired state of one node's service networking, as a frozen value.

Theory of operation
-------------------
The managers decide everything (subnets, VNIs, VIPs, task addresses); a node only makes its kernel match
what it was told. This module is that "what": a pure, immutable description of one node's view, built by
the worker from the dispatcher's assignments and handed to `NodeDataPlane.apply` (dataplane.py), which
diffs it against the kernel. No I/O here, so every rule below is checked without a kernel.

    NodeNetworks                       one node
      underlay, vxlan_port             this node's VTEP address (advertise or --data-path-addr), UDP port
      networks: (NetworkView, ...)     only networks this node has a local endpoint on, or is told about
        id, name, vni, subnet, gateway, mtu (1450), internal
        endpoints: (LocalEndpoint, ...) tasks on THIS node: task id/name, container, ip/prefix, mac, aliases
        peers:     (RemotePeer, ...)    tasks on OTHER nodes: ip, mac, vtep (their node's underlay)
        services:  (ServiceRecord, ...) DNS and load balancing: name, aliases, vip | None (dnsrr),
                                        tasks (name, ip) of the running tasks, on every node,
                                        ports (PublishedPort, ...) on the ingress network
        ingress, node_address           the routing mesh's network (issue 12) and this node's address on it
      host_ports: (HostPortForward, ...) host-mode ports of local overlay tasks: node port -> container port

Validation is two-tier, on purpose:
- Constructors raise `ModelError` for anything inconsistent (an address outside its subnet, a VNI out of
  range, a duplicate IP, a MAC that is not unicast). A model that exists is a model that can be applied.
- Data that arrives from other nodes (a peer's IP/MAC/VTEP, as strings) goes through `parse_peers`, which
  refuses and logs each entry that does not parse and keeps the rest: one bad peer must not take down the
  network for the good ones, and a bad one is never programmed into the FDB.

Records are frozen, so `remembered(cls, *args)` may hand the same one to every model built from the same
strings: a node rebuilds its model from each view the managers send (several a second while tasks
start), and parsing every peer's, endpoint's and task's addresses again was ~8 ms a view of 100 tasks
on the event loop, which also answers DNS. A record that does not validate raises and is not
remembered, so it is refused (and logged) every time it arrives, as before.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_VXLAN_PORT = 4789
OVERLAY_MTU = 1450  # 1500 minus the VXLAN encapsulation (inner Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8)
MIN_VNI = 4096  # docker's floor: below it lie 802.1Q VLAN IDs
MAX_VNI = 2**24 - 1
DNS_ADDRESS = IPv4Address("127.0.0.11")  # where every task container finds its resolver, as docker's

MEMO_SIZE = 16384  # records remembered by `remembered`: the peers, endpoints and tasks of a large view


@functools.lru_cache(maxsize=MEMO_SIZE)
def remembered(cls: type[T], *args: object) -> T:
    """`cls(*args)` for a frozen record class, the same object again for the same (hashable) arguments;
    see the module docstring."""
    return cls(*args)


_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


class ModelError(ValueError):
    """The desired state is inconsistent: the fault of whoever built it, never applied."""


def mac_for_ip(ip: IPv4Address) -> str:
    """Docker's MAC for an IPv4 endpoint: 02:42 (locally administered) followed by the address's 4 bytes."""
    return "02:42:" + ":".join(f"{byte:02x}" for byte in ip.packed)


def _mac(value: str, what: str) -> str:
    mac = str(value).strip().lower()
    if not _MAC.match(mac):
        raise ModelError(f"{what}: invalid MAC address {value!r}")
    if int(mac[:2], 16) & 1:
        raise ModelError(f"{what}: MAC address {value!r} is multicast, not a unicast endpoint")
    return mac


def _ipv4(value: object, what: str) -> IPv4Address:
    try:
        ip = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise ModelError(f"{what}: invalid IP address {value!r}") from None
    if not isinstance(ip, IPv4Address):
        raise ModelError(f"{what}: {value!r} is not an IPv4 address")
    return ip


def _unicast(ip: IPv4Address, what: str) -> IPv4Address:
    if ip.is_multicast or ip.is_unspecified or ip == IPv4Address("255.255.255.255"):
        raise ModelError(f"{what}: {ip} is not a unicast address")
    return ip


def dns_name(value: str, what: str) -> str:
    """A DNS name of labels, lower-cased without the trailing dot (how the resolver keys its records)."""
    name = str(value).strip().lower().rstrip(".")
    if not name or len(name) > 253 or not all(_DNS_LABEL.match(label) for label in name.split(".")):
        raise ModelError(f"{what}: {value!r} is not a valid DNS name")
    return name


@dataclass(frozen=True)
class LocalEndpoint:
    """A task container on this node, attached to one network."""

    task_id: str
    task_name: str  # `<service>.<slot>.<task id>`, the container's name, resolvable by DNS
    container: str  # engine container ID (the data plane finds its network namespace through its pid)
    address: IPv4Interface  # IP with the network's prefix length
    aliases: tuple[str, ...] = ()
    mac: str = ""  # empty: derived from the address as docker does

    def __post_init__(self) -> None:
        if not self.task_id or not self.container:
            raise ModelError(f"endpoint {self.task_name!r}: task id and container are required")
        object.__setattr__(self, "address", IPv4Interface(self.address))
        _unicast(self.address.ip, f"endpoint {self.task_id}")
        object.__setattr__(self, "mac", _mac(self.mac or mac_for_ip(self.address.ip), f"endpoint {self.task_id}"))
        object.__setattr__(self, "task_name", dns_name(self.task_name, f"endpoint {self.task_id} name"))
        object.__setattr__(
            self, "aliases", tuple(dns_name(a, f"endpoint {self.task_id} alias") for a in self.aliases)
        )

    @property
    def ip(self) -> IPv4Address:
        return self.address.ip


@dataclass(frozen=True)
class RemotePeer:
    """A task on another node: its overlay IP and MAC, behind that node's VTEP."""

    ip: IPv4Address
    mac: str
    vtep: IPv4Address

    def __post_init__(self) -> None:
        object.__setattr__(self, "ip", _unicast(_ipv4(self.ip, "peer ip"), "peer ip"))
        object.__setattr__(self, "mac", _mac(self.mac, f"peer {self.ip}"))
        vtep = _unicast(_ipv4(self.vtep, f"peer {self.ip} vtep"), f"peer {self.ip} vtep")
        if vtep.is_loopback:
            raise ModelError(f"peer {self.ip} vtep: {vtep} is a loopback address")
        object.__setattr__(self, "vtep", vtep)


@dataclass(frozen=True)
class TaskRecord:
    """A running task of a service as DNS sees it: its name and its IP on this network."""

    name: str
    ip: IPv4Address

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", dns_name(self.name, "task name"))
        object.__setattr__(self, "ip", _ipv4(self.ip, f"task {self.name} ip"))


PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass(frozen=True, order=True)
class PublishedPort:
    """An ingress port of a service (issue 12, the routing mesh): open on every node, spread over the tasks."""

    protocol: str
    published: int
    target: int
    proxy_protocol: str = ""  # "v2": each connection starts with a PROXY v2 header (TCP only)

    def __post_init__(self) -> None:
        what = f"published port {self.published}/{self.protocol}"
        if self.protocol not in PROTOCOLS:
            raise ModelError(f"{what}: unknown protocol {self.protocol!r}")
        if not (1 <= int(self.published) <= 65535 and 1 <= int(self.target) <= 65535):
            raise ModelError(f"{what}: published and target ports must be 1-65535 (target {self.target})")
        if self.proxy_protocol not in ("", "v2") or (self.proxy_protocol and self.protocol != "tcp"):
            raise ModelError(f"{what}: proxy protocol {self.proxy_protocol!r} (only v2, only over tcp)")


@dataclass(frozen=True)
class ServiceRecord:
    """A service on one network: its names, its VIP (None in dnsrr mode) and its running tasks anywhere;
    on the ingress network also its published ports."""

    service_id: str
    name: str
    vip: IPv4Address | None
    tasks: tuple[TaskRecord, ...] = ()
    aliases: tuple[str, ...] = ()
    ports: tuple[PublishedPort, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "ports", tuple(self.ports))
        object.__setattr__(self, "name", dns_name(self.name, f"service {self.service_id} name"))
        object.__setattr__(
            self, "aliases", tuple(dns_name(a, f"service {self.name} alias") for a in self.aliases)
        )
        if self.vip is not None:
            object.__setattr__(self, "vip", _unicast(_ipv4(self.vip, f"service {self.name} vip"), "vip"))
        object.__setattr__(self, "tasks", tuple(self.tasks))

    @property
    def backends(self) -> tuple[IPv4Address, ...]:
        """The task IPs a connection to the VIP spreads over, in a stable order (sorted)."""
        return tuple(sorted({t.ip for t in self.tasks}))


@dataclass(frozen=True)
class NetworkView:
    """One overlay network as this node must program it."""

    id: str
    name: str
    vni: int
    subnet: IPv4Network
    gateway: IPv4Address
    internal: bool = False
    mtu: int = OVERLAY_MTU
    endpoints: tuple[LocalEndpoint, ...] = ()
    peers: tuple[RemotePeer, ...] = ()
    services: tuple[ServiceRecord, ...] = ()
    ingress: bool = False  # the routing mesh's network: programmed on every node, tasks there or not
    node_address: IPv4Interface | None = None  # this node's own address on it (ingress only)

    def __post_init__(self) -> None:
        what = f"network {self.name or self.id}"
        if self.node_address is not None:
            object.__setattr__(self, "node_address", IPv4Interface(self.node_address))
        if not re.fullmatch(r"[0-9a-zA-Z]{6,}", self.id or ""):
            raise ModelError(f"{what}: id {self.id!r} must be at least 6 alphanumerics")
        if not (MIN_VNI <= int(self.vni) <= MAX_VNI):
            raise ModelError(f"{what}: VXLAN ID {self.vni} outside {MIN_VNI}-{MAX_VNI}")
        try:
            subnet = IPv4Network(self.subnet)
        except ValueError as exc:
            raise ModelError(f"{what}: invalid subnet {self.subnet!r}: {exc}") from None
        if subnet.prefixlen > 30:
            raise ModelError(f"{what}: subnet {subnet} is too small")
        object.__setattr__(self, "subnet", subnet)
        gateway = _ipv4(self.gateway, f"{what} gateway")
        if gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
            raise ModelError(f"{what}: gateway {gateway} is not a host address of {subnet}")
        object.__setattr__(self, "gateway", gateway)
        if not (576 <= int(self.mtu) <= 9000):
            raise ModelError(f"{what}: MTU {self.mtu} outside 576-9000")
        for name in ("endpoints", "peers", "services"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        self._check_addresses(what)

    def _check_addresses(self, what: str) -> None:
        taken: dict[IPv4Address, str] = {self.gateway: "the gateway"}

        def claim(ip: IPv4Address, owner: str) -> None:
            if ip not in self.subnet:
                raise ModelError(f"{what}: {owner} address {ip} is outside {self.subnet}")
            if ip in taken:
                raise ModelError(f"{what}: {owner} address {ip} is already {taken[ip]}'s")
            taken[ip] = owner

        if self.node_address is not None:
            if not self.ingress or self.node_address.network != self.subnet:
                raise ModelError(f"{what}: node address {self.node_address} needs the ingress network's {self.subnet}")
            claim(self.node_address.ip, "this node")
        for ep in self.endpoints:
            if ep.address.network != self.subnet:
                raise ModelError(f"{what}: endpoint {ep.task_id} address {ep.address} is not in {self.subnet}")
            claim(ep.ip, f"endpoint {ep.task_id}")
        for peer in self.peers:
            claim(peer.ip, f"peer {peer.mac}")
        for svc in self.services:
            if svc.vip is not None:
                claim(svc.vip, f"service {svc.name} VIP")
        if len({ep.task_id for ep in self.endpoints}) != len(self.endpoints):
            raise ModelError(f"{what}: a task has two endpoints")

    @property
    def short_id(self) -> str:
        return self.id[:10]


@dataclass(frozen=True, order=True)
class HostPortForward:
    """A host-mode published port of a task container on overlay networks: the node's `published` port
    (on every local address) DNATed to the container's `target` port (through its egress interface)."""

    container: str
    protocol: str  # "tcp" or "udp"
    published: int
    target: int

    def __post_init__(self) -> None:
        if self.protocol not in ("tcp", "udp") or not (0 < self.published < 65536 and 0 < self.target < 65536):
            raise ModelError(f"container {self.container[:12]}: bad host port {self.protocol} {self.published}->{self.target}")


@dataclass(frozen=True)
class NodeNetworks:
    """Everything one node programs: its underlay and the networks it takes part in."""

    underlay: IPv4Address
    vxlan_port: int = DEFAULT_VXLAN_PORT
    networks: tuple[NetworkView, ...] = ()
    upstream_resolvers: tuple[IPv4Address, ...] = field(default=())  # the node's own, for forwarding
    host_ports: tuple[HostPortForward, ...] = ()  # host-mode ports of this node's overlay tasks
    # (container, its --dns servers): where its embedded resolver forwards, in place of upstream_resolvers
    container_resolvers: tuple[tuple[str, tuple[IPv4Address, ...]], ...] = ()

    def __post_init__(self) -> None:
        underlay = _unicast(_ipv4(self.underlay, "underlay"), "underlay")
        object.__setattr__(self, "underlay", underlay)
        if not (1024 <= int(self.vxlan_port) <= 49151) and int(self.vxlan_port) != DEFAULT_VXLAN_PORT:
            raise ModelError(f"data path port {self.vxlan_port} outside 1024-49151")
        object.__setattr__(self, "networks", tuple(self.networks))
        object.__setattr__(
            self, "upstream_resolvers", tuple(_ipv4(r, "upstream resolver") for r in self.upstream_resolvers)
        )
        seen_ids: set[str] = set()
        seen_vnis: set[int] = set()
        for net in self.networks:
            if net.id in seen_ids or net.vni in seen_vnis:
                raise ModelError(f"network {net.name}: id {net.id} or VNI {net.vni} appears twice")
            seen_ids.add(net.id)
            seen_vnis.add(net.vni)
            for peer in net.peers:
                if peer.vtep == underlay:
                    raise ModelError(f"network {net.name}: peer {peer.ip} has this node's own VTEP {underlay}")

    def network(self, network_id: str) -> NetworkView:
        for net in self.networks:
            if net.id == network_id:
                return net
        raise KeyError(network_id)

    def endpoints_of(self, container: str) -> list[tuple[NetworkView, LocalEndpoint]]:
        """The container's attachments, in the order of the networks (its eth0, eth1, ...)."""
        return [(net, ep) for net in self.networks for ep in net.endpoints if ep.container == container]

    @property
    def containers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ep.container for net in self.networks for ep in net.endpoints))


def parse_peers(
    raw: Iterable[Mapping[str, object]], *, local_underlay: str | IPv4Address | None = None
) -> tuple[RemotePeer, ...]:
    """Peers from another node's data ({"ip", "mac", "vtep"}, strings): each entry that does not parse is
    refused with a log line naming it, the others are kept. "ip" may carry a prefix ("10.0.1.5/24")."""
    peers: list[RemotePeer] = []
    own = IPv4Address(str(local_underlay)) if local_underlay is not None else None
    for entry in raw:
        try:
            ip = str(entry.get("ip", "")).split("/", 1)[0]
            mac, vtep = str(entry.get("mac") or ""), entry.get("vtep")
            peer = remembered(RemotePeer, ip, mac, vtep) if isinstance(vtep, str) else RemotePeer(ip, mac, vtep)  # type: ignore[arg-type]
            if own is not None and peer.vtep == own:
                raise ModelError(f"peer {peer.ip} vtep: {own} is this node's own underlay")
        except (ModelError, AttributeError, TypeError) as exc:
            log.warning("refused peer entry %r: %s", dict(entry) if isinstance(entry, Mapping) else entry, exc)
            continue
        peers.append(peer)
    return tuple(peers)
