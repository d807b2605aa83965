"""Address and VXLAN ID arithmetic for overlay networks: pure bookkeeping, no store, no I/O.

Theory of operation
-------------------
Three kinds of things are handed out, each by its own class, after libnetwork's IPAM and swarmkit's
overlay manager:
- `SubnetPool`: subnets for networks that name none, cut from the cluster's default address pools
  (docker's 10.0.0.0/8 in /24s unless `swarm init --default-addr-pool` says otherwise). A subnet is
  never handed out if it overlaps any subnet already reserved, whether cut from the pool or given by
  a user (user subnets may lie outside the pools; they are reserved all the same).
- `VNIAllocator`: one VXLAN network identifier per network, from 4096 (below it are the 802.1Q VLAN
  IDs) to 2^24 - 1.
- `AddressSpace`: the addresses of one network. The network address, the broadcast address and the
  gateway are reserved; addresses come from the ip-range when one is given, else the whole subnet.
Every allocator is serial, as libnetwork's IPAM is: the next free value after the last one handed out,
wrapping around, so a value just freed is not reused at once (a task that stopped a moment ago may still
be in someone's ARP cache or DNS answer). Each can be rebuilt by `reserve`-ing what the store says is in
use; that is how a new leader starts, so it neither hands out a used value nor leaks a freed one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network

DEFAULT_ADDRESS_POOL = "10.0.0.0/8"
DEFAULT_SUBNET_SIZE = 24
VNI_FIRST = 4096
VNI_LAST = (1 << 24) - 1
# The smallest network worth making: network, broadcast, gateway and at least one address.
MAX_SUBNET_PREFIX = 30


class IPAMError(Exception):
    """A request the bookkeeping cannot satisfy; the message is written for users."""


class Exhausted(IPAMError):
    """Nothing left to hand out."""


class Overlap(IPAMError):
    """A subnet overlaps one already in use."""

    def __init__(self, subnet: IPv4Network, other: IPv4Network) -> None:
        super().__init__(f"subnet {subnet} overlaps with {other}, which is already in use")
        self.subnet = subnet
        self.other = other


def parse_subnet(text: str) -> IPv4Network:
    """A CIDR with no host bits set; ValueError (docker's wording) otherwise."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"invalid CIDR address: {text}") from None
    if not isinstance(network, IPv4Network) or "/" not in text:
        raise ValueError(f"invalid CIDR address: {text}")
    if network.network_address != ipaddress.ip_address(text.split("/", 1)[0]):
        raise ValueError(f"{text} has host bits set (the network is {network})")
    return network


def mac_for(ip: IPv4Address | str) -> str:
    """docker's MAC for a container address: 02:42 followed by the four bytes of the IPv4 address."""
    packed = IPv4Address(ip).packed
    return "02:42:" + ":".join(f"{byte:02x}" for byte in packed)


class _Serial:
    """Integers in [first, last]: which are used, and where the next search starts."""

    def __init__(self, first: int, last: int) -> None:
        self.first = first
        self.last = last
        self.used: set[int] = set()
        self._next = first

    def reserve(self, value: int) -> None:
        if self.first <= value <= self.last:  # outside (e.g. a gateway outside the ip-range): nothing to hold
            self.used.add(value)

    def release(self, value: int) -> None:
        self.used.discard(value)

    def allocate(self) -> int | None:
        span = self.last - self.first + 1
        if len(self.used) >= span:
            return None
        value = self._next
        for _ in range(span):
            if value not in self.used:
                self.used.add(value)
                self._next = value + 1 if value < self.last else self.first
                return value
            value = value + 1 if value < self.last else self.first
        return None


class VNIAllocator:
    """VXLAN IDs from 4096 up."""

    def __init__(self) -> None:
        self._ids = _Serial(VNI_FIRST, VNI_LAST)

    def reserve(self, vni: int) -> None:
        if not VNI_FIRST <= vni <= VNI_LAST:
            raise IPAMError(f"VXLAN ID {vni} is outside {VNI_FIRST}-{VNI_LAST}")
        self._ids.reserve(vni)

    def release(self, vni: int) -> None:
        self._ids.release(vni)

    def allocate(self) -> int:
        vni = self._ids.allocate()
        if vni is None:
            raise Exhausted("no VXLAN ID left")
        return vni

    def in_use(self, vni: int) -> bool:
        return vni in self._ids.used


class SubnetPool:
    """Subnets of one size cut from the default address pools; overlaps with any reserved subnet refused."""

    def __init__(self, pools: Sequence[str] = (), subnet_size: int = 0) -> None:
        self.pools = [parse_subnet(pool) for pool in (pools or [DEFAULT_ADDRESS_POOL])]
        self.subnet_size = subnet_size or DEFAULT_SUBNET_SIZE
        for pool in self.pools:
            if pool.prefixlen > self.subnet_size:
                raise IPAMError(
                    f"default address pool {pool} is smaller than the subnet size /{self.subnet_size}"
                )
        self._reserved: dict[IPv4Network, int] = {}  # subnet -> how many holders (a restore may see one twice)
        self._cursor = 0  # index over all candidate subnets, for serial allocation

    def overlapping(self, subnet: IPv4Network) -> IPv4Network | None:
        for other in self._reserved:
            if subnet.overlaps(other):
                return other
        return None

    def reserve(self, subnet: IPv4Network) -> None:
        """Mark a subnet in use. Refuses one that overlaps another (the same subnet counts once more)."""
        if subnet not in self._reserved:
            other = self.overlapping(subnet)
            if other is not None:
                raise Overlap(subnet, other)
        self._reserved[subnet] = self._reserved.get(subnet, 0) + 1

    def release(self, subnet: IPv4Network) -> None:
        holders = self._reserved.get(subnet, 0)
        if holders <= 1:
            self._reserved.pop(subnet, None)
        else:
            self._reserved[subnet] = holders - 1

    def _candidates(self) -> list[tuple[IPv4Network, int]]:
        """(pool, how many subnets it holds), in order."""
        return [(pool, 1 << (self.subnet_size - pool.prefixlen)) for pool in self.pools]

    def _nth(self, index: int) -> tuple[IPv4Network, int]:
        """The index-th candidate subnet, and how many candidates its pool has after it."""
        for pool, count in self._candidates():
            if index < count:
                base = int(pool.network_address) + (index << (32 - self.subnet_size))
                return IPv4Network((base, self.subnet_size)), count - index - 1
            index -= count
        raise IndexError(index)

    def allocate(self) -> IPv4Network:
        total = sum(count for _, count in self._candidates())
        reserved = sorted(self._reserved)
        index = self._cursor % total
        visited = 0
        while visited < total:
            candidate, left_in_pool = self._nth(index)
            blocker = next((other for other in reserved if candidate.overlaps(other)), None)
            if blocker is None:
                self._reserved[candidate] = 1
                self._cursor = index + 1
                return candidate
            # Skip every candidate the blocker covers at once: a user's /16 must not cost 256 steps.
            step = 1
            if blocker.prefixlen < self.subnet_size:
                covered = int(blocker.broadcast_address) + 1 - int(candidate.network_address)
                step = min(max(1, covered >> (32 - self.subnet_size)), left_in_pool + 1)
            visited += step
            index = (index + step) % total
        pools = ", ".join(str(pool) for pool in self.pools)
        raise Exhausted(f"no free /{self.subnet_size} subnet left in the default address pools ({pools})")


class AddressSpace:
    """The addresses of one network: gateway, VIPs and task addresses."""

    def __init__(self, subnet: IPv4Network, gateway: IPv4Address | None = None, ip_range: IPv4Network | None = None) -> None:
        if subnet.prefixlen > MAX_SUBNET_PREFIX:
            raise IPAMError(f"subnet {subnet} is too small: it must hold a gateway and at least one address")
        if ip_range is not None and not ip_range.subnet_of(subnet):
            raise IPAMError(f"ip range {ip_range} is not inside subnet {subnet}")
        self.subnet = subnet
        first_host = int(subnet.network_address) + 1
        last_host = int(subnet.broadcast_address) - 1
        pool = ip_range if ip_range is not None else subnet
        first = max(first_host, int(pool.network_address))
        last = min(last_host, int(pool.broadcast_address))
        if first > last:
            raise IPAMError(f"ip range {ip_range} holds no usable address of subnet {subnet}")
        self._addresses = _Serial(first, last)
        if gateway is None:
            gateway = IPv4Address(first_host)  # docker's: the first usable address
        if gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
            raise IPAMError(f"gateway {gateway} is not a usable address of subnet {subnet}")
        self.gateway = gateway
        self._addresses.reserve(int(gateway))

    def cidr(self, address: IPv4Address) -> str:
        return f"{address}/{self.subnet.prefixlen}"

    def reserve(self, address: IPv4Address) -> None:
        if address not in self.subnet:
            raise IPAMError(f"address {address} is not in subnet {self.subnet}")
        self._addresses.reserve(int(address))

    def release(self, address: IPv4Address) -> None:
        if address != self.gateway:
            self._addresses.release(int(address))

    def allocate(self) -> IPv4Address:
        value = self._addresses.allocate()
        if value is None:
            raise Exhausted(f"could not find an available IP in subnet {self.subnet}")
        return IPv4Address(value)

    def in_use(self, address: IPv4Address) -> bool:
        return int(address) in self._addresses.used

    @property
    def used(self) -> int:
        return len(self._addresses.used)


def parse_cidr_address(text: str) -> tuple[IPv4Address, int]:
    """ "10.0.1.5/24" -> (10.0.1.5, 24); ValueError for anything else."""
    interface = ipaddress.ip_interface(text)
    if interface.version != 4 or "/" not in text:
        raise ValueError(f"not an IPv4 address in CIDR form: {text!r}")
    return interface.ip, interface.network.prefixlen  # type: ignore[return-value]


def first_overlap(subnets: Iterable[IPv4Network], subnet: IPv4Network) -> IPv4Network | None:
    for other in subnets:
        if subnet.overlaps(other):
            return other
    return None
