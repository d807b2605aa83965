"""The allocator's network bookkeeping: which subnet, VNI, VIP and task address belongs to whom.

Theory of operation
-------------------
`NetworkAllocator` works on protobuf objects read from the store and returns the objects to write; it
does no I/O, so the loop in allocator.py owns every store write. Its state is nothing but a cache of what
the store already says: `restore(view)` rebuilds it from the cluster's address pools, the networks'
allocated subnets and VNIs, the services' VIPs and the live tasks' addresses. The loop calls `restore`
when it starts (a new leader) and again whenever a write of its own is refused, so an allocation that
never reached the store is forgotten rather than leaked, and nothing the store holds is handed out twice.

What is allocated, after swarmkit's network allocator:
- a network: its subnet (the user's, or a free one from the cluster's pools), gateway and VNI, kept in
  `network.ipam` and `network.driver_state` (the VNI under docker's vxlanid_list option);
- a service in vip mode: one VIP per network its tasks attach to (`endpoint.virtual_ips`); dnsrr: none;
- a task: one address per network of its spec, as `task.networks[i]` (a copy of the network plus the
  address in CIDR form and the attachment's aliases), and first one on the ingress network when its
  service publishes a port in ingress mode (issue 12: the routing mesh); such a service also gets a VIP
  there, as swarmkit gives it;
- a node: one address on the ingress network (`node.attachments`), the mesh's source address towards
  tasks on other nodes. A task stops holding its addresses once it has
  terminated, or once it is no longer wanted before it ever reached a node.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_address

from swarmpy.api import objects_pb2
from swarmpy.identity import new_id
from swarmpy.manager.store import ReadView
from swarmpy.manager.store.memory import clone

from .ipam import AddressSpace, Exhausted, IPAMError, SubnetPool, VNIAllocator, parse_cidr_address, parse_subnet

log = logging.getLogger(__name__)

OVERLAY = "overlay"
VXLANID_OPTION = "com.docker.network.driver.overlay.vxlanid_list"
DEFAULT_IPAM_DRIVER = "default"


class AddressExhausted(IPAMError):
    """A network has no address left: names the network, as swarmkit's message does."""

    def __init__(self, what: str, network: objects_pb2.Network) -> None:
        super().__init__(
            f"failed to allocate network IP for {what} network {network.spec.annotations.name}:"
            " could not find an available IP"
        )
        self.network_id = network.id
        self.network_name = network.spec.annotations.name


def network_allocated(network: objects_pb2.Network) -> bool:
    return bool(network.ipam.configs) and VXLANID_OPTION in network.driver_state.options


def network_vni(network: objects_pb2.Network) -> int:
    return int(network.driver_state.options[VXLANID_OPTION].split(",")[0])


def task_holds_addresses(task: objects_pb2.Task) -> bool:
    """A task keeps its addresses until it has terminated, or until it is unwanted before reaching a node."""
    if task.status.state > objects_pb2.RUNNING:
        return False
    return not (task.desired_state > objects_pb2.RUNNING and not task.node_id)


def task_networks_allocated(task: objects_pb2.Task) -> bool:
    return len(task.networks) >= len(task.spec.networks)


def ingress_network(view: ReadView) -> objects_pb2.Network | None:
    """The swarm's ingress network (the routing mesh's), if there is one: at most one has the flag."""
    return next((network for network in view.networks() if network.spec.ingress), None)


INGRESS_NAME = "ingress"
INGRESS_SUBNET = "10.0.0.0/24"
INGRESS_GATEWAY = "10.0.0.1"
INTERNAL_LABEL = "com.docker.swarm.internal"


def default_ingress_network() -> objects_pb2.Network:
    """The network `swarm init` creates, as docker's: "ingress", 10.0.0.0/24, labelled internal."""
    network = objects_pb2.Network(id=new_id())
    spec = network.spec
    spec.annotations.name = INGRESS_NAME
    spec.annotations.labels[INTERNAL_LABEL] = "true"
    spec.driver_config.name = OVERLAY
    spec.ingress = True
    spec.ipam.driver.name = DEFAULT_IPAM_DRIVER
    spec.ipam.configs.add(subnet=INGRESS_SUBNET, gateway=INGRESS_GATEWAY)
    return network


def needs_ingress(spec: objects_pb2.ServiceSpec) -> bool:
    """swarmkit's IsIngressNetworkNeeded: a service publishing a port in ingress mode (never in dnsrr)."""
    return spec.endpoint.mode != objects_pb2.EndpointSpec.DNSRR and any(
        port.publish_mode == objects_pb2.PortConfig.INGRESS for port in spec.endpoint.ports
    )


def wanted_vip_networks(service: objects_pb2.Service) -> list[str]:
    """The networks a service needs a VIP on: each network its tasks attach to, in vip mode only (the
    ingress network's VIP, which needs the store to find, comes on top: see vips_allocated)."""
    if service.spec.endpoint.mode == objects_pb2.EndpointSpec.DNSRR:
        return []
    return list(dict.fromkeys(attachment.target for attachment in service.spec.task.networks))


def vips_allocated(service: objects_pb2.Service) -> bool:
    have = [vip.network_id for vip in service.endpoint.virtual_ips]
    wanted = wanted_vip_networks(service)
    extra = [network_id for network_id in have if network_id not in wanted]
    return sorted(set(have) & set(wanted)) == sorted(wanted) and len(extra) <= int(needs_ingress(service.spec))


def node_ingress_address(node: objects_pb2.Node, ingress_id: str) -> str:
    """The node's address (CIDR) on the ingress network, or "" while it has none."""
    for attachment in node.attachments:
        if attachment.network.id == ingress_id and attachment.addresses:
            return attachment.addresses[0]
    return ""


@dataclass
class _NetworkState:
    network_id: str
    name: str
    subnet: IPv4Network
    vni: int
    space: AddressSpace
    holders: dict[str, list[IPv4Address]] = field(default_factory=dict)  # service or task ID -> addresses


class NetworkAllocator:
    """See the module docstring."""

    def __init__(self) -> None:
        self._reset(objects_pb2.Cluster())

    def _reset(self, cluster: objects_pb2.Cluster) -> None:
        self.pool = SubnetPool(list(cluster.default_address_pool), cluster.subnet_size)
        self.vnis = VNIAllocator()
        self._networks: dict[str, _NetworkState] = {}

    # -- rebuilding from the store -----------------------------------------------------------

    def restore(self, view: ReadView) -> None:
        self._reset(view.get_cluster() or objects_pb2.Cluster())
        for network in view.networks():
            if network_allocated(network):
                try:
                    self._adopt_network(network)
                except (IPAMError, ValueError) as error:  # data the store holds but we cannot use
                    log.error("network %s (%s): its allocation cannot be restored: %s", network.spec.annotations.name, network.id, error)
        for service in view.services():
            for vip in service.endpoint.virtual_ips:
                self._adopt_address(service.id, vip.network_id, vip.addr)
        for node in view.nodes():
            for attachment in node.attachments:
                for address in attachment.addresses:
                    self._adopt_address(node.id, attachment.network.id, address)
        for task in view.tasks():
            if task_holds_addresses(task):
                for attachment in task.networks:
                    for address in attachment.addresses:
                        self._adopt_address(task.id, attachment.network.id, address)

    def _adopt_network(self, network: objects_pb2.Network) -> None:
        config = network.ipam.configs[0]
        subnet = parse_subnet(config.subnet)
        space = AddressSpace(
            subnet,
            IPv4Address(config.gateway) if config.gateway else None,
            parse_subnet(config.range) if config.range else None,
        )
        vni = network_vni(network)
        self.pool.reserve(subnet)
        self.vnis.reserve(vni)
        self._networks[network.id] = _NetworkState(network.id, network.spec.annotations.name, subnet, vni, space)

    def _adopt_address(self, holder: str, network_id: str, cidr: str) -> None:
        state = self._networks.get(network_id)
        if state is None:
            return
        try:
            address, _ = parse_cidr_address(cidr)
            state.space.reserve(address)
        except (IPAMError, ValueError) as error:
            log.error("%s holds address %r on network %s, which cannot be restored: %s", holder, cidr, state.name, error)
            return
        state.holders.setdefault(holder, []).append(address)

    # -- networks ----------------------------------------------------------------------------

    def is_allocated(self, network_id: str) -> bool:
        return network_id in self._networks

    def allocate_network(self, network: objects_pb2.Network) -> objects_pb2.Network:
        """The network with its subnet, gateway and VNI filled in; nothing is held if it raises."""
        if network.id in self._networks:
            raise IPAMError(f"network {network.spec.annotations.name} is already allocated")
        requested = network.spec.ipam.configs[0] if network.spec.ipam.configs else objects_pb2.IPAMConfig()
        if requested.subnet:
            subnet = parse_subnet(requested.subnet)
            self.pool.reserve(subnet)
        else:
            subnet = self.pool.allocate()
        try:
            space = AddressSpace(
                subnet,
                ip_address(requested.gateway) if requested.gateway else None,  # type: ignore[arg-type]
                parse_subnet(requested.range) if requested.range else None,
            )
            vni = self.vnis.allocate()
        except (IPAMError, ValueError):
            self.pool.release(subnet)
            raise
        self._networks[network.id] = _NetworkState(network.id, network.spec.annotations.name, subnet, vni, space)
        allocated = clone(network)
        allocated.driver_state.name = network.spec.driver_config.name or OVERLAY
        allocated.driver_state.options.clear()
        allocated.driver_state.options.update(network.spec.driver_config.options)
        allocated.driver_state.options[VXLANID_OPTION] = str(vni)
        del allocated.ipam.configs[:]
        allocated.ipam.driver.name = network.spec.ipam.driver.name or DEFAULT_IPAM_DRIVER
        allocated.ipam.configs.add(subnet=str(subnet), range=requested.range, gateway=str(space.gateway))
        return allocated

    def release_network(self, network_id: str) -> None:
        state = self._networks.pop(network_id, None)
        if state is None:
            return
        self.pool.release(state.subnet)
        self.vnis.release(state.vni)

    # -- addresses ---------------------------------------------------------------------------

    def _allocate_on(self, holder: str, network: objects_pb2.Network, what: str) -> str:
        state = self._networks[network.id]
        try:
            address = state.space.allocate()
        except Exhausted:
            raise AddressExhausted(what, network) from None
        state.holders.setdefault(holder, []).append(address)
        return state.space.cidr(address)

    def release_holder(self, holder: str, network_ids: list[str] | None = None) -> None:
        """Free what a service (VIPs) or a task (addresses) holds, on the given networks or all."""
        for network_id, state in self._networks.items():
            if network_ids is not None and network_id not in network_ids:
                continue
            for address in state.holders.pop(holder, []):
                state.space.release(address)

    def holds(self, holder: str) -> bool:
        return any(holder in state.holders for state in self._networks.values())

    def allocate_vips(self, service: objects_pb2.Service, view: ReadView) -> list[objects_pb2.Endpoint.VirtualIP]:
        """The service's VIPs for its current spec: kept where the network stays, new where it is added,
        freed where it is dropped. Raises (holding nothing new) if a network is missing or full."""
        wanted = wanted_vip_networks(service)
        ingress = ingress_network(view)
        if needs_ingress(service.spec) and ingress is not None:
            # No ingress network (only a store made without `swarm init`: the control API refuses such a
            # service): its ports are allocated all the same, and the mesh has nothing to publish them on.
            wanted.append(ingress.id)
        kept = {vip.network_id: vip for vip in service.endpoint.virtual_ips if vip.network_id in wanted}
        new: list[str] = []
        vips: list[objects_pb2.Endpoint.VirtualIP] = []
        try:
            for network_id in wanted:
                if network_id in kept:
                    vips.append(clone(kept[network_id]))
                    continue
                network = view.get_network(network_id)
                if network is None or network_id not in self._networks:
                    raise IPAMError(f"network {network_id} is not allocated yet")
                addr = self._allocate_on(service.id + "/vip-pending", network, f"service {service.id}")
                new.append(network_id)
                vips.append(objects_pb2.Endpoint.VirtualIP(network_id=network_id, addr=addr))
        except IPAMError:
            self.release_holder(service.id + "/vip-pending")
            raise
        dropped = [vip.network_id for vip in service.endpoint.virtual_ips if vip.network_id not in wanted]
        self.release_holder(service.id, dropped)
        for network_id in new:
            state = self._networks[network_id]
            state.holders.setdefault(service.id, []).extend(state.holders.pop(service.id + "/vip-pending", []))
        return vips

    def allocate_task(self, task: objects_pb2.Task, view: ReadView) -> list[objects_pb2.NetworkAttachment]:
        """One attachment per network of the task's spec. Raises (holding nothing) if one is missing or full."""
        if self.holds(task.id):
            self.release_holder(task.id)
        attachments: list[objects_pb2.NetworkAttachment] = []
        configs = list(task.spec.networks)
        service = view.get_service(task.service_id)
        ingress = ingress_network(view)
        if service is not None and ingress is not None and needs_ingress(service.spec):
            # swarmkit's order: the ingress attachment first, then the service's own networks.
            configs.insert(0, objects_pb2.NetworkAttachmentConfig(target=ingress.id))
        try:
            for config in configs:
                network = view.get_network(config.target)
                if network is None or config.target not in self._networks:
                    raise IPAMError(f"network {config.target} is not allocated yet")
                attachment = objects_pb2.NetworkAttachment(
                    aliases=list(config.aliases), driver_attachment_opts=dict(config.driver_attachment_opts)
                )
                attachment.network.CopyFrom(network)
                attachment.addresses.append(self._allocate_on(task.id, network, f"task {task.id}"))
                attachments.append(attachment)
        except IPAMError:
            self.release_holder(task.id)
            raise
        return attachments

    def allocate_node(self, node: objects_pb2.Node, ingress: objects_pb2.Network) -> objects_pb2.NetworkAttachment:
        """The node's ingress attachment (swarmkit's node LB address): the source address of the mesh's
        connections to tasks on other nodes, so their replies come back over the overlay to this node."""
        if ingress.id not in self._networks:
            raise IPAMError(f"network {ingress.id} is not allocated yet")
        self.release_holder(node.id)
        attachment = objects_pb2.NetworkAttachment()
        attachment.network.CopyFrom(ingress)
        attachment.addresses.append(self._allocate_on(node.id, ingress, f"node {node.id}"))
        return attachment

    # -- for tests and diagnostics -------------------------------------------------------------

    def addresses_in_use(self, network_id: str) -> int:
        state = self._networks.get(network_id)
        return 0 if state is None else state.space.used
