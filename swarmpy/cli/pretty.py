"""`inspect --pretty`: docker's human layout of a service and of a node (tab-aligned sections)."""

from __future__ import annotations

import time

from swarmpy import units
from swarmpy.api import objects_pb2
from swarmpy.engineapi.convert.to_json import enum_word, update_state_word, utc_time_text
from swarmpy.cli.table import pretty_word


def go_time_string(unix_nanos: int) -> str:
    """Go's time.Time.String() in UTC: 2017-05-10 21:20:40.062926318 +0000 UTC."""
    return utc_time_text(unix_nanos, "%Y-%m-%d %H:%M:%S", " +0000 UTC")


def _go_list(items) -> str:
    return "[" + " ".join(items) + "]"


def _cpus(nanos: int) -> str:
    return units.format_nano_cpus(nanos)


def _update_config_lines(config: objects_pb2.UpdateConfig, title: str, order_label: str) -> list[str]:
    lines = [f"{title}:", f" Parallelism:\t{config.parallelism}"]
    if config.delay:
        lines.append(f" Delay:\t\t{units.format_duration(config.delay)}")
    lines.append(f" On failure:\t{enum_word(objects_pb2.UpdateConfig.FailureAction, config.failure_action)}")
    if config.HasField("monitor"):
        lines.append(f" Monitoring Period: {units.format_duration(config.monitor)}")
    lines.append(f" Max failure ratio: {config.max_failure_ratio:g}")
    # docker aligns the order with "Max failure ratio: " (19 columns)
    lines.append(f" {(order_label + ':').ljust(19)}{enum_word(objects_pb2.UpdateConfig.Order, config.order)}")
    return lines


def _resource_lines(requirements: objects_pb2.ResourceRequirements) -> list[str]:
    lines = []
    for title, resources in (("Reservations", requirements.reservations), ("Limits", requirements.limits)):
        if not (resources.nano_cpus or resources.memory_bytes):
            continue
        lines.append(f" {title}:")
        if resources.nano_cpus:
            lines.append(f"  CPU:\t\t{_cpus(resources.nano_cpus)}")
        if resources.memory_bytes:
            lines.append(f"  Memory:\t{units.format_bytes(resources.memory_bytes)}")
    return ["Resources:"] + lines if lines else []


def pretty_service(service: objects_pb2.Service) -> str:
    spec = service.spec
    container = spec.task.container
    lines = [f"ID:\t\t{service.id}", f"Name:\t\t{spec.annotations.name}"]
    if spec.annotations.labels:
        lines.append("Labels:")
        lines += [f" {k}={v}" if v else f" {k}" for k, v in sorted(spec.annotations.labels.items())]
    if spec.WhichOneof("mode") == "global":
        lines.append("Service Mode:\tGlobal")
    else:
        lines += ["Service Mode:\tReplicated", f" Replicas:\t{spec.replicated.replicas}"]
    if service.HasField("update_status") and service.update_status.state:
        status = service.update_status
        lines += ["UpdateStatus:", f" State:\t\t{update_state_word(status.state)}"]
        if status.started_at:
            lines.append(f" Started:\t{units.human_duration(_now() - status.started_at)} ago")
        if status.state == objects_pb2.UpdateStatus.COMPLETED and status.completed_at:  # docker's UpdateIsCompleted
            lines.append(f" Completed:\t{units.human_duration(_now() - status.completed_at)} ago")
        lines.append(f" Message:\t{status.message}")
    placement = spec.task.placement
    lines.append("Placement:")
    if placement.constraints:
        lines.append(f" Constraints:\t{_go_list(placement.constraints)}")
    if placement.preferences:
        lines.append(f" Preferences:   {_go_list('{spread=' + p.spread + '}' for p in placement.preferences)}")
    if placement.max_replicas:
        lines.append(f" Max Replicas Per Node:   {placement.max_replicas}")
    if spec.HasField("update"):
        lines += _update_config_lines(spec.update, "UpdateConfig", "Update order")
    if spec.HasField("rollback"):
        lines += _update_config_lines(spec.rollback, "RollbackConfig", "Rollback order")
    lines += ["ContainerSpec:", f" Image:\t\t{container.image}"]
    if container.command:
        lines.append(f" Command:\t{' '.join(container.command)}")
    if container.args:
        lines.append(" Args:\t\t" + "".join(a + " " for a in container.args))
    if container.env:
        lines.append(" Env:\t\t" + "".join(e + " " for e in container.env))
    if container.dir:
        lines.append(f" Dir:\t\t{container.dir}")
    if container.user:
        lines.append(f" User: {container.user}")
    if container.HasField("stop_grace_period"):
        lines.append(f" StopGracePeriod: {units.format_duration(container.stop_grace_period)}")
    # docker's template: configs, then secrets, each a section of its own after the container's
    for title, refs, source in (("Configs", container.configs, "config_name"), ("Secrets", container.secrets, "secret_name")):
        if refs:
            lines.append(f"{title}:")
            for ref in refs:
                lines += [f" Target:\t{ref.file.name}", f"  Source:\t{getattr(ref, source)}"]
    lines += _resource_lines(spec.task.resources)
    lines.append(f"Endpoint Mode:\t{enum_word(objects_pb2.EndpointSpec.ResolutionMode, spec.endpoint.mode)}")
    ports = service.endpoint.ports or spec.endpoint.ports
    if ports:
        lines.append("Ports:")
        for port in ports:
            lines += [
                f" PublishedPort = {port.published_port}",
                f"  Protocol = {enum_word(objects_pb2.PortConfig.Protocol, port.protocol)}",
                f"  TargetPort = {port.target_port}",
                f"  PublishMode = {enum_word(objects_pb2.PortConfig.PublishMode, port.publish_mode)}",
            ]
    return "\n".join(lines)


def _now() -> int:
    return time.time_ns()


def pretty_node(node: objects_pb2.Node) -> str:
    description = node.description
    lines = [f"ID:\t\t\t{node.id}"]
    if node.spec.annotations.name:
        lines.append(f"Name:\t\t\t{node.spec.annotations.name}")
    if node.spec.annotations.labels:
        lines.append("Labels:")
        lines += [f" - {k}={v}" if v else f" - {k}" for k, v in sorted(node.spec.annotations.labels.items())]
    lines += [
        f"Hostname:              \t{description.hostname}",
        f"Joined at:             \t{go_time_string(node.meta.created_at)}",
        "Status:",
        f" State:\t\t\t{pretty_word(enum_word(objects_pb2.NodeStatus.State, node.status.state))}",
    ]
    if node.status.message:
        lines.append(f" Message:              \t{node.status.message}")
    lines.append(f" Availability:         \t{pretty_word(enum_word(objects_pb2.NodeSpec.Availability, node.spec.availability))}")
    if node.status.addr:
        lines.append(f" Address:\t\t{node.status.addr}")
    if node.HasField("manager_status"):
        manager = node.manager_status
        lines += [
            "Manager Status:",
            f" Address:\t\t{manager.addr}",
            f" Raft Status:\t\t{pretty_word(enum_word(objects_pb2.ManagerStatus.Reachability, manager.reachability))}",
            f" Leader:\t\t{'Yes' if manager.leader else 'No'}",
        ]
    lines += [
        "Platform:",
        f" Operating System:\t{description.platform.os}",
        f" Architecture:\t\t{description.platform.architecture}",
        "Resources:",
        f" CPUs:\t\t\t{description.resources.nano_cpus // 1_000_000_000}",
        f" Memory:\t\t{units.format_bytes(description.resources.memory_bytes)}",
        f"Engine Version:\t\t{description.engine.engine_version}",
    ]
    if description.engine.labels:
        lines.append("Engine Labels:")
        lines += [f" - {k}={v}" if v else f" - {k}" for k, v in sorted(description.engine.labels.items())]
    return "\n".join(lines)

