"""Config and secret templates (`--template-driver golang`): the part of Go's text/template swarm uses.

swarmkit expands a templated config on the worker, for each task, with the task's context. Supported
here: `{{ .Service.Name }}`, `.Service.ID`, `.Service.Labels.KEY`, `.Task.Name`, `.Task.ID`,
`.Task.Slot`, `.Node.ID`, `.Node.Hostname`, `{{ env "NAME" }}` (the task's environment), `{{ secret
"TARGET" }}` and `{{ config "TARGET" }}` (another secret or config of the same task, by its target), and
Go's `{{-`/`-}}` whitespace trimming. Anything else is an error naming the action, never the data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from swarmpy.api import objects_pb2

_ACTION = re.compile(r"\{\{(-\s)?\s*(.*?)\s*(\s-)?\}\}", re.DOTALL)
_FIELD = re.compile(r"^\.(Service|Task|Node)\.(\w+)(?:\.(\w+))?$")
_CALL = re.compile(r'^(env|secret|config)\s+"((?:[^"\\]|\\.)*)"$')


class TemplateError(Exception):
    """The template cannot be expanded; the message names the template and the action only."""


@dataclass(frozen=True)
class TemplateContext:
    task: objects_pb2.Task
    node_id: str
    node_hostname: str
    lookup_secret: Callable[[str], bytes | None]  # by target
    lookup_config: Callable[[str], bytes | None]


def _task_name(task: objects_pb2.Task) -> str:
    from swarmpy.worker.executor.container_config import task_name

    return task_name(task)


def _field(context: TemplateContext, section: str, name: str, key: str | None) -> str:
    task = context.task
    values = {
        ("Service", "Name"): lambda: task.service_annotations.name,
        ("Service", "ID"): lambda: task.service_id,
        ("Task", "Name"): lambda: _task_name(task),
        ("Task", "ID"): lambda: task.id,
        ("Task", "Slot"): lambda: str(task.slot),
        ("Node", "ID"): lambda: context.node_id,
        ("Node", "Hostname"): lambda: context.node_hostname,
    }
    if section == "Service" and name == "Labels" and key is not None:
        return task.service_annotations.labels.get(key, "")
    value = values.get((section, name))
    if value is None or key is not None:
        raise KeyError(name)
    return value()


def _env(task: objects_pb2.Task, name: str) -> str:
    for entry in task.spec.container.env:
        key, _, value = entry.partition("=")
        if key == name:
            return value
    return ""


def expand(template_name: str, data: bytes, context: TemplateContext) -> bytes:
    """The expanded data; raises TemplateError."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TemplateError(f"template {template_name}: the data is not UTF-8 text") from None
    out: list[str] = []
    position = 0
    for match in _ACTION.finditer(text):
        literal = text[position : match.start()]
        if match.group(1):
            literal = literal.rstrip()
        out.append(literal)
        out.append(_action(template_name, match.group(2), context))
        position = match.end()
        if match.group(3):
            while position < len(text) and text[position].isspace():
                position += 1
    out.append(text[position:])
    return "".join(out).encode("utf-8")


def _action(template_name: str, action: str, context: TemplateContext) -> str:
    field = _FIELD.match(action)
    if field:
        try:
            return _field(context, *field.groups())
        except KeyError:
            raise TemplateError(f"template {template_name}: unknown field {action}") from None
    call = _CALL.match(action)
    if call:
        function, argument = call.group(1), call.group(2).replace('\\"', '"')
        if function == "env":
            return _env(context.task, argument)
        lookup = context.lookup_secret if function == "secret" else context.lookup_config
        value = lookup(argument)
        if value is None:
            raise TemplateError(f"template {template_name}: {function} target {argument} not found in the task")
        return value.decode("utf-8", errors="replace")
    raise TemplateError(f"template {template_name}: unsupported action {{{{ {action} }}}}")
