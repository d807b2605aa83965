"""Rows of `service ls` and `node ls`, in docker's columns and wording."""

from __future__ import annotations

from swarmpy.api import control_pb2, objects_pb2
from swarmpy.engineapi.convert.to_json import enum_word
from swarmpy.cli.table import natural_key, pretty_word, strip_digest, truncate_id

SERVICE_COLUMNS = ("ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS")
NODE_COLUMNS = ("ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION")


_MODE_WORDS = {"global": "global", "replicated_job": "replicated job", "global_job": "global job"}


def service_mode(spec: objects_pb2.ServiceSpec) -> str:
    return _MODE_WORDS.get(spec.WhichOneof("mode") or "", "replicated")


def replicas_text(spec: objects_pb2.ServiceSpec, status: control_pb2.ServiceStatus | None) -> str:
    mode = spec.WhichOneof("mode")
    if mode in ("replicated_job", "global_job"):
        # docker: running/desired (completed/total completed)
        running, desired = (status.running_tasks, status.desired_tasks) if status else (0, 0)
        completed = status.completed_tasks if status else 0
        total = spec.replicated_job.total_completions if mode == "replicated_job" else desired + completed
        return f"{running}/{desired} ({completed}/{total} completed)"
    running = status.running_tasks if status else 0
    desired = status.desired_tasks if status else (spec.replicated.replicas if service_mode(spec) == "replicated" else 0)
    text = f"{running}/{desired}"
    if spec.task.placement.max_replicas:
        text += f" (max {spec.task.placement.max_replicas} per node)"
    return text


def ingress_ports_text(ports) -> str:
    """docker's service ls PORTS: ingress ports only, consecutive ones folded into ranges."""
    ordered = sorted(ports, key=lambda p: (enum_word(objects_pb2.PortConfig.Protocol, p.protocol), p.published_port))
    ranges: list[list] = []  # [published_start, published_end, target_start, target_end, protocol]
    for port in ordered:
        if port.publish_mode != objects_pb2.PortConfig.INGRESS:
            continue
        protocol = enum_word(objects_pb2.PortConfig.Protocol, port.protocol)
        if ranges:
            current = ranges[-1]
            published_gap = port.published_port - current[1]
            target_gap = port.target_port - current[3]
            is_range = current[3] != current[2]
            overlaps = port.target_port <= current[3]
            if (protocol == current[4] and 0 <= published_gap <= 1 and 0 <= target_gap <= 1
                    and not (is_range and overlaps)):
                current[1], current[3] = port.published_port, port.target_port
                continue
        ranges.append([port.published_port, port.published_port, port.target_port, port.target_port, protocol])

    def span(start: int, end: int) -> str:
        return f"{start}-{end}" if end > start else f"{start}"

    return ", ".join(f"*:{span(r[0], r[1])}->{span(r[2], r[3])}/{r[4]}" for r in ranges if r[0] > 0)


def service_ports(service: objects_pb2.Service):
    return service.endpoint.ports or service.spec.endpoint.ports


def service_row(service: objects_pb2.Service, status: control_pb2.ServiceStatus | None) -> dict[str, str]:
    return {
        "ID": truncate_id(service.id),
        "Name": service.spec.annotations.name,
        "Mode": service_mode(service.spec),
        "Replicas": replicas_text(service.spec, status),
        "Image": strip_digest(service.spec.task.container.image),
        "Ports": ingress_ports_text(service_ports(service)),
    }


def service_rows(response: control_pb2.ListServicesResponse) -> list[dict[str, str]]:
    statuses = {status.service_id: status for status in response.statuses}
    services = sorted(response.services, key=lambda s: natural_key(s.spec.annotations.name))
    return [service_row(service, statuses.get(service.id)) for service in services]


def manager_status_text(node: objects_pb2.Node) -> str:
    if not node.HasField("manager_status"):
        return ""
    if node.manager_status.leader:
        return "Leader"
    return pretty_word(enum_word(objects_pb2.ManagerStatus.Reachability, node.manager_status.reachability))


def tls_status(node: objects_pb2.Node, cluster_tls: objects_pb2.NodeTLSInfo | None) -> str:
    """docker's TLSStatus: Ready when the node trusts the swarm's root and holds a certificate of the
    issuer it should (a CA rotation's progress), Needs Rotation otherwise, Unknown without the facts."""
    empty = objects_pb2.NodeTLSInfo()
    if cluster_tls is None or cluster_tls == empty or node.description.tls_info == empty:
        return "Unknown"
    return "Ready" if node.description.tls_info == cluster_tls else "Needs Rotation"


def node_row(node: objects_pb2.Node, self_node_id: str, cluster_tls: objects_pb2.NodeTLSInfo | None = None) -> dict[str, str]:
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
