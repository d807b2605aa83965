"""`service ps` / `node ps`: task names, the history tree, and docker's columns.

A task is named after its slot (`web.2`) or, for global services, its node (`web.<node id>`). Tasks
sort by that name, newest first within a name, and every older task of a name is indented with
` \\_ ` under the newest, which is how docker shows a slot's restart history.
"""

from __future__ import annotations

from typing import Mapping

from swarmpy import units
from swarmpy.api import objects_pb2
from swarmpy.engineapi.convert.to_json import enum_word, task_state_word
from swarmpy.cli.table import pretty_word, strip_digest, truncate_id

TASK_COLUMNS = ("ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS")
HISTORY_INDENT = " \\_ "
_MAX_ERROR_LENGTH = 30


def task_name(task: objects_pb2.Task, service_name: str) -> str:
    if task.slot:
        return f"{service_name}.{task.slot}"
    return f"{service_name}.{task.node_id}"


def order_tasks(tasks, service_names: Mapping[str, str]) -> list[tuple[str, objects_pb2.Task]]:
    """(display name, task) in docker's order: by name, newest first within a name, older ones indented."""
    named = [(task_name(task, service_names.get(task.service_id, task.service_id)), task) for task in tasks]
    named.sort(key=lambda pair: (pair[0], -pair[1].meta.created_at))
    ordered = []
    previous = None
    for name, task in named:
        ordered.append((HISTORY_INDENT + name if name == previous else name, task))
        previous = name
    return ordered


def current_state_text(task: objects_pb2.Task, now_nanos: int) -> str:
    age = max(0, now_nanos - task.status.timestamp)
    return f"{pretty_word(task_state_word(task.status.state))} {units.human_duration(age).lower()} ago"


def error_text(message: str, truncate: bool) -> str:
    if not message:
        return ""
    if truncate and len(message) > _MAX_ERROR_LENGTH:
        message = message[: _MAX_ERROR_LENGTH - 1] + "\u2026"
    return f'"{message}"'


def task_ports_text(task: objects_pb2.Task) -> str:
    return ",".join(
        f"*:{p.published_port}->{p.target_port}/{enum_word(objects_pb2.PortConfig.Protocol, p.protocol)}"
        for p in task.status.port_status.ports
    )


def task_rows(
    tasks,
    service_names: Mapping[str, str],
    node_names: Mapping[str, str],
    now_nanos: int,
    truncate: bool = True,
) -> list[dict[str, str]]:
    rows = []
    for name, task in order_tasks(tasks, service_names):
        image = task.spec.container.image
        rows.append({
            "ID": truncate_id(task.id) if truncate else task.id,
            "Name": name,
            "Image": strip_digest(image) if truncate else image,
            "Node": node_names.get(task.node_id, task.node_id),
            "DesiredState": pretty_word(task_state_word(task.desired_state)),
            "CurrentState": current_state_text(task, now_nanos),
            "Error": error_text(task.status.err, truncate),
            "Ports": task_ports_text(task),
        })
    return rows
