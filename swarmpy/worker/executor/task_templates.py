"""Service templates, as swarm expands them on the node: `--hostname`, `--env` values and `--mount`
sources and targets may name `{{.Service.Name}}`, `{{.Task.Slot}}`, `{{.Node.Hostname}}` and the like.

The context is swarmkit's: Service{ID, Name, Labels}, Node{ID, Hostname, Platform{Architecture, OS}},
Task{ID, Name, Slot}. Task.Name is the container's name; Task.Slot is the slot, or the node ID for a
global service's task. A template that does not apply (bad syntax, an unknown field) makes the spec
invalid, so the task is rejected with the reason.
"""

from __future__ import annotations

from typing import Any

from swarmpy import gotemplate
from swarmpy.api import objects_pb2


class _Fields:
    """A struct for the template: unknown fields are errors, as on Go structs."""

    def __init__(self, type_name: str, fields: dict[str, Any]) -> None:
        self.template_type = type_name
        self._fields = fields

    def template_field(self, name: str) -> Any:
        return self._fields[name]


def template_context(task: objects_pb2.Task, node: objects_pb2.NodeDescription | None, node_id: str,
                     container_name: str) -> _Fields:
    description = node or objects_pb2.NodeDescription()
    return _Fields("template.Context", {
        "Service": _Fields("template.Service", {
            "ID": task.service_id,
            "Name": task.service_annotations.name,
            "Labels": dict(task.service_annotations.labels),
        }),
        "Node": _Fields("template.Node", {
            "ID": node_id,
            "Hostname": description.hostname,
            "Platform": _Fields("template.Platform", {
                "Architecture": description.platform.architecture,
                "OS": description.platform.os,
            }),
        }),
        "Task": _Fields("template.Task", {
            "ID": task.id,
            "Name": container_name,
            "Slot": str(task.slot) if task.slot else task.node_id,
        }),
    })


def expand(text: str, context: _Fields, what: str) -> str:
    """One templated string; ValueError names `what` and the reason."""
    if "{{" not in text:
        return text
    try:
        return gotemplate.parse(text).execute(context)
    except (gotemplate.TemplateError, gotemplate.TemplateExecError) as error:
        raise ValueError(f"expanding {what} {text!r}: {error}") from None


def expand_container_spec(container: objects_pb2.ContainerSpec, context: _Fields) -> objects_pb2.ContainerSpec:
    """A copy of the container spec with its templated fields expanded."""
    expanded = objects_pb2.ContainerSpec()
    expanded.CopyFrom(container)
    expanded.hostname = expand(container.hostname, context, "hostname")
    expanded.ClearField("env")
    for variable in container.env:
        key, eq, value = variable.partition("=")
        expanded.env.append(key + eq + expand(value, context, f"env {key}"))
    for mount in expanded.mounts:
        mount.source = expand(mount.source, context, "mount source")
        mount.target = expand(mount.target, context, "mount target")
    return expanded
