"""Rows of `service ls` and `node ls`, in docker's columns and wording.

Service rows are built from the Engine API's JSON (what GET /services?status=true answers), whichever
door the CLI came through: a gRPC answer is first converted by engineapi.convert.to_json, the one
conversion both doors share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from swarmpy.cli.table import natural_key, pretty_word, strip_digest, truncate_id

if TYPE_CHECKING:  # protobuf is not imported for `service ls` over the Engine API (swarmpy.cli.quick)
    from swarmpy.api import control_pb2, objects_pb2

SERVICE_COLUMNS = ("ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS")
NODE_COLUMNS = ("ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION")


_MODE_WORDS = {"Replicated": "replicated", "Global": "global", "ReplicatedJob": "replicated job",
               "GlobalJob": "global job"}


def service_mode(spec: dict[str, Any]) -> str:
    """`spec`: a ServiceSpec as the Engine API writes it (Spec of GET /services)."""
    return _MODE_WORDS.get(next(iter(spec.get("Mode") or {}), ""), "replicated")


def replicas_text(spec: dict[str, Any], status: dict[str, Any] | None) -> str:
    """`status`: the Engine API's ServiceStatus (GET /services?status=true), None when not asked."""
    mode = spec.get("Mode") or {}
    running = (status or {}).get("RunningTasks", 0)
    desired = (status or {}).get("DesiredTasks", 0)
    if "ReplicatedJob" in mode or "GlobalJob" in mode:
        # docker: running/desired (completed/total completed)
        completed = (status or {}).get("CompletedTasks", 0)
        total = (mode["ReplicatedJob"].get("TotalCompletions", 0) if "ReplicatedJob" in mode
                 else desired + completed)
        return f"{running}/{desired} ({completed}/{total} completed)"
    if status is None and "Replicated" in mode:
        desired = mode["Replicated"].get("Replicas", 0)
    text = f"{running}/{desired}"
    max_replicas = ((spec.get("TaskTemplate") or {}).get("Placement") or {}).get("MaxReplicas")
    if max_replicas:
        text += f" (max {max_replicas} per node)"
    return text


def ingress_ports_text(ports: list[dict[str, Any]]) -> str:
    """docker's service ls PORTS: ingress ports only, consecutive ones folded into ranges. `ports`: the
    Engine API's PortConfig objects."""
    ordered = sorted(ports, key=lambda p: (p.get("Protocol", "tcp"), p.get("PublishedPort", 0)))
    ranges: list[list] = []  # [published_start, published_end, target_start, target_end, protocol]
    for port in ordered:
        if port.get("PublishMode", "ingress") != "ingress":
            continue
        protocol, published, target = port.get("Protocol", "tcp"), port.get("PublishedPort", 0), port.get("TargetPort", 0)
        if ranges:
            current = ranges[-1]
            published_gap = published - current[1]
            target_gap = target - current[3]
            is_range = current[3] != current[2]
            overlaps = target <= current[3]
            if (protocol == current[4] and 0 <= published_gap <= 1 and 0 <= target_gap <= 1
                    and not (is_range and overlaps)):
                current[1], current[3] = published, target
                continue
        ranges.append([published, published, target, target, protocol])

    def span(start: int, end: int) -> str:
        return f"{start}-{end}" if end > start else f"{start}"

    return ", ".join(f"*:{span(r[0], r[1])}->{span(r[2], r[3])}/{r[4]}" for r in ranges if r[0] > 0)


def service_json_row(service: dict[str, Any]) -> dict[str, str]:
    """One `service ls` row from a service as GET /services writes it (ServiceStatus when asked)."""
    spec = service.get("Spec") or {}
    ports = (service.get("Endpoint") or {}).get("Ports") or (spec.get("EndpointSpec") or {}).get("Ports") or []
    return {
        "ID": truncate_id(service.get("ID", "")),
        "Name": spec.get("Name", ""),
        "Mode": service_mode(spec),
        "Replicas": replicas_text(spec, service.get("ServiceStatus")),
        "Image": strip_digest(((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", "")),
        "Ports": ingress_ports_text(ports),
    }


def service_json_rows(services: list[dict[str, Any]]) -> list[dict[str, str]]:
    ordered = sorted(services, key=lambda s: natural_key((s.get("Spec") or {}).get("Name", "")))
    return [service_json_row(service) for service in ordered]


def service_row(service: objects_pb2.Service, status: control_pb2.ServiceStatus | None) -> dict[str, str]:
    """The row of a service the gRPC Control API gave: converted as the Engine API converts it, so both
    doors print from one shape."""
    from swarmpy.engineapi.convert import to_json

    return service_json_row(to_json.listed_service(service, status))


def service_rows(response: control_pb2.ListServicesResponse) -> list[dict[str, str]]:
    from swarmpy.engineapi.convert import to_json

    statuses = {status.service_id: status for status in response.statuses}
    return service_json_rows([to_json.listed_service(s, statuses.get(s.id)) for s in response.services])


def manager_status_text(node: objects_pb2.Node) -> str:
    from swarmpy.api import objects_pb2
    from swarmpy.engineapi.convert.to_json import enum_word

    if not node.HasField("manager_status"):
        return ""
    if node.manager_status.leader:
        return "Leader"
    return pretty_word(enum_word(objects_pb2.ManagerStatus.Reachability, node.manager_status.reachability))


def tls_status(node: objects_pb2.Node, cluster_tls: objects_pb2.NodeTLSInfo | None) -> str:
    """docker's TLSStatus: Ready when the node trusts the swarm's root and holds a certificate of the
    issuer it should (a CA rotation's progress), Needs Rotation otherwise, Unknown without the facts."""
    from swarmpy.api import objects_pb2

    empty = objects_pb2.NodeTLSInfo()
    if cluster_tls is None or cluster_tls == empty or node.description.tls_info == empty:
        return "Unknown"
    return "Ready" if node.description.tls_info == cluster_tls else "Needs Rotation"


def node_row(node: objects_pb2.Node, self_node_id: str, cluster_tls: objects_pb2.NodeTLSInfo | None = None) -> dict[str, str]:
    from swarmpy.api import objects_pb2
    from swarmpy.engineapi.convert.to_json import enum_word

    return {
        "ID": node.id + (" *" if node.id == self_node_id else ""),
        "Hostname": node.description.hostname,
        "Status": pretty_word(enum_word(objects_pb2.NodeStatus.State, node.status.state)),
        "Availability": pretty_word(enum_word(objects_pb2.NodeSpec.Availability, node.spec.availability)),
        "ManagerStatus": manager_status_text(node),
        "EngineVersion": node.description.engine.engine_version,
        "TLSStatus": tls_status(node, cluster_tls),  # --format only: not a column of the table
    }


def node_rows(nodes, self_node_id: str, cluster_tls: objects_pb2.NodeTLSInfo | None = None) -> list[dict[str, str]]:
    ordered = sorted(nodes, key=lambda n: natural_key(n.description.hostname))
    return [node_row(node, self_node_id, cluster_tls) for node in ordered]
