"""Config and secret templates (`--template-driver golang`), expanded on the node for each task.

The template language is swarmpy.gotemplate and the context the one service templates use
(executor/task_templates.py: .Service, .Node, .Task), plus swarmkit's three functions for file
templates: `{{ env "NAME" }}` (the task's environment), `{{ secret "TARGET" }}` and `{{ config "TARGET"
}}` (another secret or config of the same task, by its target). Errors name the template and the
action, never the data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from swarmpy import gotemplate
from swarmpy.api import objects_pb2
from swarmpy.worker.executor.container_config import container_name
from swarmpy.worker.executor.task_templates import template_context


class TemplateError(Exception):
    """The template cannot be expanded; the message names the template and the action only."""


@dataclass(frozen=True)
class TemplateContext:
    task: objects_pb2.Task
    node_id: str
    node_hostname: str
    lookup_secret: Callable[[str], bytes | None]  # by target
    lookup_config: Callable[[str], bytes | None]


def _env(task: objects_pb2.Task, name: str) -> str:
    for entry in task.spec.container.env:
        key, _, value = entry.partition("=")
        if key == name:
            return value
    return ""


def _lookup(kind: str, lookup: Callable[[str], bytes | None]) -> Callable[[str], str]:
    def function(target: str) -> str:
        value = lookup(target)
        if value is None:
            raise gotemplate.TemplateExecError(f"{kind} target {target} not found in the task")
        return value.decode("utf-8", errors="replace")

    return function


def expand(template_name: str, data: bytes, context: TemplateContext) -> bytes:
    """The expanded data; raises TemplateError."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TemplateError(f"template {template_name}: the data is not UTF-8 text") from None
    task = context.task
    fields = template_context(task, objects_pb2.NodeDescription(hostname=context.node_hostname), context.node_id,
                              container_name(task))
    functions = {
        "env": lambda name: _env(task, name),
        "secret": _lookup("secret", context.lookup_secret),
        "config": _lookup("config", context.lookup_config),
    }
    try:
        return gotemplate.parse(text, functions).execute(fields).encode("utf-8")
    except (gotemplate.TemplateError, gotemplate.TemplateExecError) as error:
        raise TemplateError(f"{template_name}: {error}") from None
