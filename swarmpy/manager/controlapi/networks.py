"""Networks in the control API: create, get, list, remove, and the attachments services ask for.

Theory of operation
-------------------
A network is created with the user's spec only; the leader's allocator fills in its subnet (when the
user gave none), gateway and VNI a moment later (swarmkit's split). What can be checked here is checked
before anything is written: the spec's shape (`validate_network_spec`: driver, name, a subnet that
parses, a gateway and ip-range inside it, a subnet big enough), and, inside the write's transaction, that
a user subnet overlaps no other network's subnet, requested or allocated (`create`).

A service names its networks in `spec.task.networks` (docker's TaskTemplate.Networks). The CLI may send
a name, an ID or an ID prefix; `resolve_attachments` runs inside the service's transaction and rewrites
each target to the network's full ID, refusing a network that does not exist (docker's "network X not
found"). `remove` refuses a network that a service's spec still names or that a live task is still
attached to, with swarmkit's FailedPrecondition message.
"""

from __future__ import annotations

import asyncio
import re
from ipaddress import IPv4Address, IPv4Network, ip_address
from typing import Any

from swarmpy.api import control_pb2, objects_pb2
from swarmpy.identity import new_id
from swarmpy.manager.allocator.ipam import (
    DEFAULT_ADDRESS_POOL,
    DEFAULT_SUBNET_SIZE,
    MAX_SUBNET_PREFIX,
    first_overlap,
    parse_subnet,
)
from swarmpy.manager.allocator.networks import OVERLAY, ingress_network, needs_ingress, task_holds_addresses
from swarmpy.manager.store import NameConflict, NotFound, ReadView, Transaction, retry_conflicts

from .errors import AlreadyExists, FailedPrecondition, InvalidArgument, ObjectNotFound
from .validation import SERVICE_NAME

# A DNS label (RFC 1123): what a service alias must be, since the embedded DNS server answers it.
DNS_LABEL = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
MAX_NETWORK_NAME_LENGTH = 255
MTU_OPTION = "com.docker.network.driver.mtu"
# The VXLAN encapsulation (inner Ethernet 14, outer IPv4 20, UDP 8, VXLAN 8) must fit in the MTU.
MIN_MTU, MAX_MTU = 626, 9050


def validate_network_spec(spec: objects_pb2.NetworkSpec) -> None:
    """Raise InvalidArgument for the first problem of a network spec (no store needed)."""
    name = spec.annotations.name
    if not name:
        raise InvalidArgument("annotations.name", name, "a network needs a name")
    if len(name) > MAX_NETWORK_NAME_LENGTH or not SERVICE_NAME.match(name):
        raise InvalidArgument(
            "annotations.name",
            name,
            "a network name must start with a letter or digit and contain only letters, digits, '_', '.' and '-'",
        )
    for key in spec.annotations.labels:
        if not key.strip():
            raise InvalidArgument("annotations.labels key", key, "a label key must not be empty")
    driver = spec.driver_config.name or OVERLAY
    if driver != OVERLAY:
        raise InvalidArgument("driver_config.name", driver, 'the only driver of swarm-scoped networks is "overlay"')
    for key, value in spec.driver_config.options.items():
        if key == MTU_OPTION:
            if not value.isdigit() or not MIN_MTU <= int(value) <= MAX_MTU:
                raise InvalidArgument(f"driver_config.options[{key}]", value, f"the MTU must be a number from {MIN_MTU} to {MAX_MTU}")
        elif key == "encrypted":
            raise InvalidArgument("driver_config.options", key, "encrypted overlay networks are not supported")
        else:
            raise InvalidArgument("driver_config.options", key, f"unknown overlay driver option (the one supported is {MTU_OPTION})")
    if spec.ipv6_enabled:
        raise InvalidArgument("ipv6_enabled", True, "IPv6 overlay networks are not supported")
    if spec.ingress and spec.attachable:
        raise InvalidArgument("attachable", True, "ingress network cannot be attachable")
    if spec.ipam.driver.name not in ("", "default"):
        raise InvalidArgument("ipam.driver.name", spec.ipam.driver.name, 'the only IPAM driver is "default"')
    if len(spec.ipam.configs) > 1:
        raise InvalidArgument("ipam.configs", len(spec.ipam.configs), "a network takes at most one subnet")
    for config in spec.ipam.configs:
        _validate_ipam_config(config)


def _validate_ipam_config(config: objects_pb2.IPAMConfig) -> None:
    if not config.subnet:
        if config.gateway or config.range:
            raise InvalidArgument(
                "ipam.configs.subnet", "", "a gateway or an ip-range needs the subnet it belongs to (--subnet)"
            )
        return
    subnet = _subnet("ipam.configs.subnet", config.subnet)
    if subnet.prefixlen > MAX_SUBNET_PREFIX:
        raise InvalidArgument(
            "ipam.configs.subnet", config.subnet, f"the subnet is too small: at most /{MAX_SUBNET_PREFIX}, to hold a gateway and an address"
        )
    if config.range:
        ip_range = _subnet("ipam.configs.range", config.range)
        if not ip_range.subnet_of(subnet):
            raise InvalidArgument("ipam.configs.range", config.range, f"the ip-range is not inside subnet {subnet}")
    if config.gateway:
        try:
            gateway = ip_address(config.gateway)
        except ValueError:
            raise InvalidArgument("ipam.configs.gateway", config.gateway, "not an IPv4 address") from None
        if not isinstance(gateway, IPv4Address) or gateway not in subnet:
            raise InvalidArgument("ipam.configs.gateway", config.gateway, f"the gateway is not in subnet {subnet}")
        if gateway in (subnet.network_address, subnet.broadcast_address):
            raise InvalidArgument(
                "ipam.configs.gateway", config.gateway, f"the gateway cannot be the network or broadcast address of {subnet}"
            )


def _subnet(field: str, text: str) -> IPv4Network:
    try:
        return parse_subnet(text)
    except ValueError as error:
        raise InvalidArgument(field, text, str(error)) from None


def network_subnets(network: objects_pb2.Network) -> list[IPv4Network]:
    """The subnets a network holds or asked for."""
    texts = [config.subnet for config in [*network.ipam.configs, *network.spec.ipam.configs] if config.subnet]
    return list(dict.fromkeys(parse_subnet(text) for text in texts))


def create(tx: Transaction, spec: objects_pb2.NetworkSpec) -> str:
    name = spec.annotations.name
    if tx.by_name("network", name) is not None:
        raise NameConflict("network", name)
    for config in spec.ipam.configs:
        if not config.subnet:
            continue
        subnet = parse_subnet(config.subnet)
        for other in tx.networks():
            clash = first_overlap(network_subnets(other), subnet)
            if clash is not None:
                raise InvalidArgument(
                    "ipam.configs.subnet",
                    config.subnet,
                    f"the subnet overlaps with {clash} of network {other.spec.annotations.name}",
                )
    if spec.ingress:
        present = ingress_network(tx)
        if present is not None:
            raise AlreadyExists(f"ingress network ({present.id}) is already present")
    network = objects_pb2.Network(id=new_id())
    network.spec.CopyFrom(spec)
    if not network.spec.driver_config.name:
        network.spec.driver_config.name = OVERLAY
    tx.create("network", network)
    return network.id


def remove(tx: Transaction, ref: str) -> str:
    network = resolve(tx, ref)
    if network.spec.ingress:
        # Every node is on the ingress network, tasks or not: what holds it is a service publishing through it.
        for service in tx.services():
            if needs_ingress(service.spec):
                raise FailedPrecondition(f"ingress network cannot be removed because service {service.id} depends on it")
        tx.delete("network", network.id)
        return network.id
    for service in tx.services():
        if any(attachment.target == network.id for attachment in service.spec.task.networks):
            raise FailedPrecondition(f"network {network.id} is in use by service {service.id}")
    leaving = None
    for task in tx.tasks():
        if task_holds_addresses(task) and any(a.network.id == network.id for a in task.networks):
            if task.desired_state <= objects_pb2.RUNNING and tx.get("service", task.service_id) is not None:
                raise FailedPrecondition(f"network {network.id} is in use by task {task.id}")
            leaving = leaving or task
    if leaving is not None:
        raise TasksLeaving(f"network {network.id} is in use by task {leaving.id}")
    tx.delete("network", network.id)
    return network.id


class TasksLeaving(FailedPrecondition):
    """Only tasks on their way out (shut down, or of a removed service) still hold the network's
    addresses: `docker stack rm` removes the services and at once their networks, and swarmkit accepts
    that (a task no longer wanted does not keep its network), so the removal waits for them."""


LEAVING_TASKS_WAIT = 20.0  # seconds a removal waits for leaving tasks to let go of the network
_LEAVING_POLL = 0.1


def resolve(view: ReadView, ref: str) -> objects_pb2.Network:
    try:
        return view.resolve("network", ref)
    except NotFound:
        raise ObjectNotFound(f"network {ref} not found") from None


def matches(network: objects_pb2.Network, filters: control_pb2.ListNetworksRequest.Filters) -> bool:
    spec = network.spec
    if filters.ids and not any(network.id.startswith(prefix) for prefix in filters.ids):
        return False
    if filters.names and not any(spec.annotations.name.startswith(prefix) for prefix in filters.names):
        return False
    if filters.drivers and (spec.driver_config.name or OVERLAY) not in filters.drivers:
        return False
    for key, value in filters.labels.items():
        if key not in spec.annotations.labels or (value and spec.annotations.labels[key] != value):
            return False
    return True


# -- what services ask for ---------------------------------------------------------------------------


def validate_attachments(spec: objects_pb2.ServiceSpec) -> None:
    """The service's network attachments, DNS settings and extra hosts, by their shape alone."""
    for index, attachment in enumerate(spec.task.networks):
        field = f"task.networks[{index}]"
        if not attachment.target:
            raise InvalidArgument(f"{field}.target", "", "a network attachment needs a network")
        for alias in attachment.aliases:
            if not DNS_LABEL.match(alias):
                raise InvalidArgument(
                    f"{field}.aliases", alias, "an alias must be a DNS label: letters, digits and '-', at most 63"
                )
        for address in attachment.addresses:
            raise InvalidArgument(f"{field}.addresses", address, "static addresses for services are not supported")
    dns = spec.task.container.dns_config
    for server in dns.nameservers:
        try:
            ip_address(server)
        except ValueError:
            raise InvalidArgument("task.container.dns_config.nameservers", server, "not an IP address") from None
    for domain in dns.search:
        if not domain or any(not DNS_LABEL.match(label) for label in domain.rstrip(".").split(".")):
            raise InvalidArgument("task.container.dns_config.search", domain, "not a DNS domain name")
    for line in spec.task.container.hosts:
        parts = line.split()
        if len(parts) < 2:
            raise InvalidArgument("task.container.hosts", line, 'an extra host must be "IP HOSTNAME [ALIAS...]"')
        try:
            ip_address(parts[0])
        except ValueError:
            raise InvalidArgument("task.container.hosts", line, f"{parts[0]} is not an IP address") from None


def resolve_attachments(view: ReadView, spec: objects_pb2.ServiceSpec) -> None:
    """Rewrite each attachment's target to its network's ID; refuse unknown or repeated networks."""
    seen: set[str] = set()
    for attachment in spec.task.networks:
        network = resolve(view, attachment.target)
        if network.spec.ingress:
            raise InvalidArgument("task.networks.target", attachment.target, "a service cannot attach to the ingress network")
        if network.id in seen:
            raise InvalidArgument(
                "task.networks.target", network.spec.annotations.name, "the service attaches to this network more than once"
            )
        seen.add(network.id)
        attachment.target = network.id
    if needs_ingress(spec) and ingress_network(view) is None:
        raise FailedPrecondition("service needs ingress network, but no ingress network is present")


def validate_swarm_networking(pools, subnet_size: int, data_path_port: int, data_path_addr: str) -> None:
    """`swarm init`'s --default-addr-pool, --default-addr-pool-mask-length, --data-path-port/-addr."""
    parsed = []
    for pool in pools:
        subnet = _subnet("default_addr_pool", pool)
        clash = first_overlap(parsed, subnet)
        if clash is not None:
            raise InvalidArgument("default_addr_pool", pool, f"the pool overlaps with pool {clash}")
        parsed.append(subnet)
    size = subnet_size or DEFAULT_SUBNET_SIZE
    if not 1 <= size <= MAX_SUBNET_PREFIX:
        raise InvalidArgument("default_addr_pool_mask_length", subnet_size, f"must be between 1 and {MAX_SUBNET_PREFIX}")
    for subnet in parsed or [parse_subnet(DEFAULT_ADDRESS_POOL)]:
        if subnet.prefixlen > size:
            raise InvalidArgument(
                "default_addr_pool", str(subnet), f"the pool is smaller than the mask length /{size} of its subnets"
            )
    if data_path_port and not 1024 <= data_path_port <= 49151:
        raise InvalidArgument("data_path_port", data_path_port, "must be between 1024 and 49151")
    if data_path_addr:
        try:
            ip_address(data_path_addr)
        except ValueError:
            raise InvalidArgument("data_path_addr", data_path_addr, "not an IP address") from None


class NetworkRPCs:
    """The Network RPCs' bodies (ControlServicer supplies _store and _read)."""

    _store: Any

    async def _create_network(self, spec: objects_pb2.NetworkSpec) -> objects_pb2.Network:
        validate_network_spec(spec)
        network_id = await self._store.update(lambda tx: create(tx, spec))
        return self._read("network", network_id)  # type: ignore[attr-defined]

    def _get_network(self, ref: str) -> objects_pb2.Network:
        return resolve(self._store.view(), ref)

    def _list_networks(self, filters: control_pb2.ListNetworksRequest.Filters) -> list[objects_pb2.Network]:
        found = [network for network in self._store.view().networks() if matches(network, filters)]
        return sorted(found, key=lambda network: (network.spec.annotations.name, network.id))

    async def _remove_network(self, ref: str) -> str:
        deadline = asyncio.get_running_loop().time() + LEAVING_TASKS_WAIT
        while True:
            try:
                return await retry_conflicts(lambda: self._store.update(lambda tx: remove(tx, ref)),
                                             what=f"removing network {ref}")
            except TasksLeaving:
                if asyncio.get_running_loop().time() >= deadline:
                    raise
            await asyncio.sleep(_LEAVING_POLL)
