"""What one node's data plane needs to know about the overlay networks, computed from the store.

Theory of operation
-------------------
`node_network_view(view, node_id)` is a pure function of a store view: for every network the node has
a live task on (a task holding addresses, see allocator/networks.py), it gives the network (ID, name,
VNI, subnet, gateway, internal), the node's own endpoints, every other node's endpoints on the network
(IP, MAC, and the underlay address of the node it runs on: what the VXLAN FDB and neighbour entries
need; no multicast, every peer is told in advance), and the DNS/VIP records: each service with tasks
on the network, its aliases, its VIP there (none in dnsrr mode) and its RUNNING tasks' names and IPs.

The dispatcher sends the whole view in the COMPLETE assignments message and again whenever it differs
from the last one sent (`AssignmentsMessage.network_view`); a node replaces what it had. A task appears
among the endpoints (and peers) as soon as it holds an address on a node, so the path to it is ready
before it starts; it appears in DNS answers and VIP rotation only while it is RUNNING.

The ingress network (issue 12, the routing mesh) is in every view whose node has an ingress address,
tasks there or not: `ingress` is set, `node_address` is the node's own address, the other nodes'
addresses are among the peers, and each service publishing through it carries its ingress ports
(`published`) beside its running tasks' ingress addresses.

MACs are derived from the IPv4 address as docker does (02:42 followed by the four address bytes), so
every node computes the same one without asking. A node's underlay address is its data path address
(`--data-path-addr`, else its advertised host) as it reported it, else the address its session came from.

Every stream recomputes its node's view after each commit that may change it, and each view walks every
task on the node's networks: with 100 tasks starting, parsing their addresses and building their
endpoints was most of the manager's busy time. A `TaskEndpoints` memo, one per dispatcher and shared by
its streams, keeps each task's endpoints keyed by the stored task object itself and its node's underlay
address. The store never changes an object in place (every write stores a new one), so a memo entry
whose task object is the one the view holds is exactly what recomputing would give: the view stays a
pure function of the store's state, with or without the memo, and a changed task, a removed one or a
node's new underlay address simply misses.
"""

from __future__ import annotations

from collections.abc import Iterable

from swarmpy.api import dispatcher_pb2, objects_pb2
from swarmpy.manager.allocator.ipam import mac_for, parse_cidr_address
from swarmpy.manager.allocator.networks import (
    VXLANID_OPTION,
    ingress_network,
    needs_ingress,
    network_vni,
    node_ingress_address,
    task_holds_addresses,
)
from swarmpy.manager.store import ReadView

DEFAULT_DATA_PATH_PORT = 4789
MTU_OPTION = "com.docker.network.driver.mtu"
DEFAULT_MTU = 1500
VXLAN_OVERHEAD = 50  # inner Ethernet 14 + outer IPv4 20 + UDP 8 + VXLAN 8


def underlay_address(node: objects_pb2.Node | None) -> str:
    if node is None:
        return ""
    return node.description.data_path_addr or node.status.addr


def task_dns_name(task: objects_pb2.Task) -> str:
    """docker's container name for a task: <service>.<slot or node>.<task id>."""
    return f"{task.annotations.name}.{task.id}"


def _is_serving(task: objects_pb2.Task) -> bool:
    return task.status.state == objects_pb2.RUNNING and task.desired_state <= objects_pb2.RUNNING


def _endpoint(task: objects_pb2.Task, attachment: objects_pb2.NetworkAttachment, underlay: str) -> dispatcher_pb2.NetworkEndpoint | None:
    if not attachment.addresses:
        return None
    address = attachment.addresses[0]
    try:
        ip, _ = parse_cidr_address(address)
    except ValueError:
        return None  # the store never holds one; a bad one is left out rather than sent
    return dispatcher_pb2.NetworkEndpoint(
        task_id=task.id, task_name=task_dns_name(task), address=address, mac=mac_for(ip), node_id=task.node_id,
        underlay_addr=underlay, aliases=list(attachment.aliases), service_id=task.service_id,
    )


class TaskEndpoints:
    """Each task's endpoints on its networks, remembered per stored task object (see the module docstring)."""

    def __init__(self) -> None:
        # task ID -> (the stored task, its node's underlay address, (network ID, endpoint or None) per attachment)
        self._entries: dict[str, tuple[objects_pb2.Task, str, tuple[tuple[str, dispatcher_pb2.NetworkEndpoint | None], ...]]] = {}

    def of(self, task: objects_pb2.Task, underlay: str) -> tuple[tuple[str, dispatcher_pb2.NetworkEndpoint | None], ...]:
        """The endpoints, which the caller copies and never changes (appending to a repeated field copies)."""
        entry = self._entries.get(task.id)
        if entry is not None and entry[0] is task and entry[1] == underlay:
            return entry[2]
        endpoints = tuple((attachment.network.id, _endpoint(task, attachment, underlay)) for attachment in task.networks)
        self._entries[task.id] = (task, underlay, endpoints)
        return endpoints

    def keep_only(self, task_ids: set[str]) -> None:
        """Forget the tasks a full walk of the store no longer found on any network."""
        if len(self._entries) > len(task_ids):
            self._entries = {task_id: entry for task_id, entry in self._entries.items() if task_id in task_ids}


def _network_header(network: objects_pb2.Network) -> dispatcher_pb2.NodeNetwork | None:
    if not network.ipam.configs or VXLANID_OPTION not in network.driver_state.options:
        return None
    config = network.ipam.configs[0]
    mtu_text = network.spec.driver_config.options.get(MTU_OPTION, "")
    mtu = int(mtu_text) if mtu_text.isdigit() else DEFAULT_MTU
    return dispatcher_pb2.NodeNetwork(
        id=network.id, name=network.spec.annotations.name, vni=network_vni(network), subnet=config.subnet,
        gateway=config.gateway, internal=network.spec.internal, mtu=mtu - VXLAN_OVERHEAD,
    )


def _service_aliases(service: objects_pb2.Service | None, network_id: str) -> list[str]:
    if service is None:
        return []
    return list(dict.fromkeys(
        alias for config in service.spec.task.networks if config.target == network_id for alias in config.aliases
    ))


def _service_record(
    service_id: str, service: objects_pb2.Service | None, fallback_name: str, network_id: str,
    tasks: Iterable[tuple[objects_pb2.Task, str]],
) -> dispatcher_pb2.ServiceRecord:
    dnsrr = service is not None and service.spec.endpoint.mode == objects_pb2.EndpointSpec.DNSRR
    vip = ""
    if service is not None and not dnsrr:
        for virtual_ip in service.endpoint.virtual_ips:
            if virtual_ip.network_id == network_id:
                vip = virtual_ip.addr.split("/", 1)[0]
    record = dispatcher_pb2.ServiceRecord(
        service_id=service_id, name=service.spec.annotations.name if service is not None else fallback_name,
        aliases=_service_aliases(service, network_id), vip=vip, dnsrr=dnsrr,
    )
    for task, ip in sorted(tasks, key=lambda pair: pair[0].id):
        record.tasks.add(task_id=task.id, task_name=task_dns_name(task), ip=ip)
    return record


def _published_ports(service: objects_pb2.Service) -> list[dispatcher_pb2.PublishedPort]:
    """The service's ingress ports as allocated (a published port of 0 has been given one by then)."""
    return [
        dispatcher_pb2.PublishedPort(
            protocol=objects_pb2.PortConfig.Protocol.Name(port.protocol).lower(), published_port=port.published_port,
            target_port=port.target_port, proxy_protocol=port.proxy_protocol,
        )
        for port in service.endpoint.ports
        if port.publish_mode == objects_pb2.PortConfig.INGRESS and port.published_port
    ]


def _add_mesh(
    view: ReadView, header: dispatcher_pb2.NodeNetwork, node_id: str, my_address: str,
    by_service: dict[str, list[tuple[objects_pb2.Task, str]]], service_names: dict[str, str],
) -> None:
    """The ingress network's extra for the routing mesh: this node's address there, every other node's
    (a peer: the replies of the tasks it forwards to come back to it over the overlay), and the published
    ports of every service publishing through it, with no task here or not."""
    header.ingress = True
    header.node_address = my_address
    for node in sorted(view.nodes(), key=lambda n: n.id):
        address = node_ingress_address(node, header.id)
        if node.id == node_id or not address:
            continue
        ip, _ = parse_cidr_address(address)
        header.peers.add(address=address, mac=mac_for(ip), node_id=node.id, underlay_addr=underlay_address(node))
    for service in view.services():
        if needs_ingress(service.spec) and service.id not in by_service:
            by_service[service.id] = []
            service_names[service.id] = service.spec.annotations.name


def node_network_view(view: ReadView, node_id: str, endpoints: TaskEndpoints | None = None) -> dispatcher_pb2.NetworkView:
    """The view for one node; see the module docstring. `endpoints`, the memo a dispatcher's streams
    share, changes the cost and never the result."""
    if endpoints is None:
        endpoints = TaskEndpoints()
    cluster = view.get_cluster()
    me = view.get_node(node_id)
    result = dispatcher_pb2.NetworkView(
        data_path_port=(cluster.vxlan_udp_port if cluster is not None else 0) or DEFAULT_DATA_PATH_PORT,
        underlay_addr=underlay_address(me),
    )
    ingress = ingress_network(view)
    my_ingress = node_ingress_address(me, ingress.id) if me is not None and ingress is not None else ""
    if my_ingress and not any(needs_ingress(service.spec) for service in view.services()):
        my_ingress = ""  # nothing is published: the node has no reason to join (nor to cost a full pass)
    # Most nodes of a big swarm run no task on an overlay: their view costs only a look at their own tasks.
    if not my_ingress and not any(task.networks and task_holds_addresses(task) for task in view.tasks_by_node(node_id)):
        return result
    # One pass over the tasks: who is on which network, with which endpoint.
    on_network: dict[str, list[tuple[objects_pb2.Task, dispatcher_pb2.NetworkEndpoint | None]]] = {}
    mine: set[str] = set()
    underlays: dict[str, str] = {}
    walked: set[str] = set()
    for task in view.tasks():
        if not task.networks or not task.node_id or not task_holds_addresses(task):
            continue
        walked.add(task.id)
        if task.node_id not in underlays:
            underlays[task.node_id] = underlay_address(view.get_node(task.node_id))
        for network_id, endpoint in endpoints.of(task, underlays[task.node_id]):
            on_network.setdefault(network_id, []).append((task, endpoint))
            if task.node_id == node_id:
                mine.add(network_id)
    endpoints.keep_only(walked)
    if my_ingress and ingress is not None:
        mine.add(ingress.id)
        on_network.setdefault(ingress.id, [])
    for network_id in sorted(mine):
        network = view.get_network(network_id)
        header = _network_header(network) if network is not None else None
        if header is None:
            continue
        by_service: dict[str, list[tuple[objects_pb2.Task, str]]] = {}
        service_names: dict[str, str] = {}
        for task, endpoint in sorted(on_network[network_id], key=lambda pair: pair[0].id):
            if endpoint is None:
                continue
            (header.local if task.node_id == node_id else header.peers).append(endpoint)
            service_names.setdefault(task.service_id, task.service_annotations.name)
            serving = by_service.setdefault(task.service_id, [])
            if _is_serving(task):
                serving.append((task, endpoint.address.split("/", 1)[0]))
        if network.spec.ingress:
            _add_mesh(view, header, node_id, my_ingress, by_service, service_names)
        for service_id in sorted(by_service):
            service = view.get_service(service_id)
            record = _service_record(service_id, service, service_names[service_id], network_id, by_service[service_id])
            if header.ingress and service is not None and needs_ingress(service.spec):
                record.published.extend(_published_ports(service))
            header.services.append(record)
        result.networks.append(header)
    return result


EVERY_NODE = None  # network_view_audience: every node's view may have changed


def network_view_audience(view: ReadView, kind: str, old: object, new: object) -> set[str] | None:
    """Whose network view a store change can alter: an empty set (nobody's), a set of node IDs, or
    EVERY_NODE. A node's own record reaches other nodes' views in two ways only: as the underlay address
    of its tasks' endpoints on an overlay, and as a routing-mesh peer, which a view carries only while
    some service publishes through ingress. While neither holds -- the case of nodes joining a swarm --
    a node change concerns that node's own view alone; waking every stream for it made a join cost work
    in each of the swarm's streams (1,000 joins: a million recomputed views, seconds of the leader's loop).
    A leftover task on ingress whose service is gone is not looked for: the removal of such tasks wakes
    every stream anyway."""
    if not affects_network_views(kind, old, new):
        return set()
    if kind != "node":
        return EVERY_NODE
    node = new if new is not None else old
    node_id = node.id  # type: ignore[attr-defined]
    if any(task.networks and task_holds_addresses(task) for task in view.tasks_by_node(node_id)):
        return EVERY_NODE
    if any(needs_ingress(service.spec) for service in view.services()):
        return EVERY_NODE
    return {node_id}


def affects_network_views(kind: str, old: object, new: object) -> bool:
    """Whether a store change can change some node's network view (the dispatcher wakes every stream)."""
    if kind == "task":
        return any(obj is not None and obj.networks for obj in (old, new))  # type: ignore[attr-defined]
    if kind == "service":
        return any(
            obj is not None and (obj.spec.task.networks or obj.endpoint.virtual_ips or obj.endpoint.ports)  # type: ignore[attr-defined]
            for obj in (old, new)
        )
    if kind == "node":
        return (
            old is None or new is None or underlay_address(old) != underlay_address(new)  # type: ignore[arg-type]
            or list(old.attachments) != list(new.attachments)  # type: ignore[attr-defined]
        )
    return kind in ("network", "cluster")
