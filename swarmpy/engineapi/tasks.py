"""/tasks: list with every filter the docker CLI sends, inspect, and logs.

`service` and `node` values are references (ID, name or ID prefix, as the engine resolves them) and
become the control API's ID filters; `desired-state`, `id` and `_up-to-date` map to its own filters;
`name` (the task's name, SERVICE.SLOT or SERVICE.NODE) and `label` (the service's labels, as swarmkit
matches them) are applied here to what it returns."""

from __future__ import annotations

from aiohttp import web

from swarmpy.api import control_pb2, objects_pb2

from .control_call import call_control
from .convert import to_json
from .errors import BadRequest, EngineError
from .filters import matches_labels, matches_prefix, parse_filters, query_flag
from .keys import DAEMON
from .replies import json_reply
from .services import stream_logs

TASK_FILTERS = ("desired-state", "id", "label", "name", "node", "service", "_up-to-date")
_DESIRED_STATES = {"running": objects_pb2.RUNNING, "shutdown": objects_pb2.SHUTDOWN, "accepted": objects_pb2.ACCEPTED}


def task_name(task: objects_pb2.Task, service_name: str) -> str:
    return f"{service_name}.{task.slot}" if task.slot else f"{service_name}.{task.node_id}"


async def list_tasks(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    filters = parse_filters(request.query, TASK_FILTERS)
    wanted = control_pb2.ListTasksRequest.Filters(ids=filters.get("id"))
    for state in filters.get("desired-state"):
        if state not in _DESIRED_STATES:
            raise BadRequest(f"Invalid desired-state filter value '{state}': must be running, shutdown or accepted")
        wanted.desired_states.append(_DESIRED_STATES[state])
    for ref in filters.get("service"):
        answer = await call_control(daemon, "GetService", control_pb2.GetServiceRequest(ref=ref))
        wanted.service_ids.append(answer.service.id)
    for ref in filters.get("node"):
        if ref == "self":
            ref = daemon.info().node_id
        answer = await call_control(daemon, "GetNode", control_pb2.GetNodeRequest(ref=ref))
        wanted.node_ids.append(answer.node.id)
    if "_up-to-date" in filters:
        wanted.up_to_date = any(value.lower() not in ("", "0", "false", "no") for value in filters.get("_up-to-date"))
    tasks = (await call_control(daemon, "ListTasks", control_pb2.ListTasksRequest(filters=wanted))).tasks
    labels, names = filters.labels("label"), filters.get("name")
    if labels or names:
        tasks = [task for task in tasks
                 if matches_labels(task.service_annotations.labels, labels)
                 and matches_prefix(task_name(task, task.service_annotations.name), names)]
    return json_reply([to_json.task(task) for task in tasks])


async def inspect_task(request: web.Request) -> web.Response:
    answer = await call_control(request.app[DAEMON], "GetTask", control_pb2.GetTaskRequest(ref=request.match_info["ref"]))
    return json_reply(to_json.task(answer.task))


async def task_logs(request: web.Request) -> web.StreamResponse:
    answer = await call_control(request.app[DAEMON], "GetTask", control_pb2.GetTaskRequest(ref=request.match_info["ref"]))
    if not query_flag(request.query, "stdout") and not query_flag(request.query, "stderr"):
        raise EngineError(400, "Bad parameters: you must choose at least one stream")
    return await stream_logs(request, answer.task.id, answer.task.spec.container.tty)


ROUTES = [
    ("GET", "/tasks", list_tasks),
    ("GET", "/tasks/{ref}", inspect_task),
    ("GET", "/tasks/{ref}/logs", task_logs),
]
