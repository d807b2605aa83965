"""The dispatcher's network view (dispatcher.proto NetworkView) turned into this node's desired state
(model.NodeNetworks), for the data plane to apply.

The view comes from the managers, but every piece that describes another node (a peer's IP, MAC and
VTEP) is treated as foreign data: it goes through `model.parse_peers`, which refuses and logs an entry
that does not parse and keeps the rest, so a bad entry is never programmed into the kernel. A local
endpoint, a service record or a whole network that the model refuses is likewise left out with a log
line naming it, rather than taking the node's other networks down with it.

Local endpoints are kept only for tasks whose container is known (`containers`: task ID -> container ID):
the data plane plumbs a container, and a task not yet created has none to plumb.

Peers, local endpoints and task records are built through `model.remembered`: the same strings give the
same frozen record without being parsed again (a refused one is refused again each time).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from swarmpy.api import dispatcher_pb2

from .model import (
    LocalEndpoint,
    ModelError,
    NetworkView,
    OVERLAY_MTU,
    NodeNetworks,
    PublishedPort,
    ServiceRecord,
    TaskRecord,
    parse_peers,
    remembered,
)

log = logging.getLogger(__name__)


def _endpoints(network: dispatcher_pb2.NodeNetwork, containers: Mapping[str, str]) -> list[LocalEndpoint]:
    endpoints = []
    for endpoint in network.local:
        container = containers.get(endpoint.task_id)
        if not container:
            continue
        try:
            endpoints.append(remembered(
                LocalEndpoint, endpoint.task_id, endpoint.task_name, container, endpoint.address, tuple(endpoint.aliases), endpoint.mac,
            ))
        except (ModelError, ValueError) as error:
            log.warning("network %s: refused local endpoint of task %s: %s", network.name, endpoint.task_id, error)
    return endpoints


def _services(network: dispatcher_pb2.NodeNetwork) -> list[ServiceRecord]:
    records = []
    for service in network.services:
        try:
            records.append(ServiceRecord(
                service_id=service.service_id, name=service.name,
                vip=service.vip or None,  # type: ignore[arg-type]
                tasks=tuple(remembered(TaskRecord, task.task_name, task.ip) for task in service.tasks),
                aliases=tuple(service.aliases),
                ports=tuple(
                    PublishedPort(p.protocol, p.published_port, p.target_port, p.proxy_protocol) for p in service.published
                ),
            ))
        except (ModelError, ValueError) as error:
            log.warning("network %s: refused the records of service %s: %s", network.name, service.name, error)
    return records


def node_networks(
    view: dispatcher_pb2.NetworkView,
    containers: Mapping[str, str],
    upstream_resolvers: Iterable[str] = (),
) -> NodeNetworks:
    """This node's desired networking. Raises ModelError only if the node's own underlay is unusable."""
    networks = []
    for network in view.networks:
        peers = parse_peers(
            ({"ip": peer.address, "mac": peer.mac, "vtep": peer.underlay_addr} for peer in network.peers),
            local_underlay=view.underlay_addr or None,
        )
        try:
            networks.append(NetworkView(
                id=network.id, name=network.name, vni=network.vni, subnet=network.subnet,  # type: ignore[arg-type]
                gateway=network.gateway, internal=network.internal, mtu=network.mtu or OVERLAY_MTU,  # type: ignore[arg-type]
                endpoints=tuple(_endpoints(network, containers)), peers=peers, services=tuple(_services(network)),
                ingress=network.ingress, node_address=network.node_address or None,  # type: ignore[arg-type]
            ))
        except (ModelError, ValueError) as error:
            log.error("refused network %s (%s) from the dispatcher: %s", network.name, network.id, error)
    return NodeNetworks(
        underlay=view.underlay_addr,  # type: ignore[arg-type]
        vxlan_port=view.data_path_port or 4789,
        networks=tuple(networks),
        upstream_resolvers=tuple(upstream_resolvers),  # type: ignore[arg-type]
    )
