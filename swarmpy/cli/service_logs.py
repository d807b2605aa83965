"""`service logs`: stream LogMessages and prefix each line with where it came from, as docker does:
`web.1.abc123def456@node1    | hello` (task name, task id, node hostname, padded so the bars align)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import grpc

from swarmpy.api import control_pb2, dispatcher_pb2
from swarmpy.cli.connection import error_from_rpc, is_not_found
from swarmpy.engineapi.convert.to_json import fixed_rfc3339_nano
from swarmpy.cli.errors import CliError
from swarmpy.cli.table import truncate_id


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    tail: int = -1
    timestamps: bool = False
    task_ids: bool = True
    truncate: bool = True
    raw: bool = False
    since_ns: int = 0       # only lines from then on (0: all)
    resolve: bool = True    # False: service and node IDs where their names would be (--no-resolve)
    details: bool = False   # the log driver's attributes before each line (--details)


def parse_since(text: str, now_ns: int) -> int:
    """docker's --since: an RFC 3339 time or date, a Unix timestamp (seconds[.fraction]), or a duration
    before now (42m, 1h30m)."""
    from datetime import datetime, timezone

    from swarmpy import units

    try:
        return now_ns - units.parse_duration(text)
    except ValueError:
        pass
    seconds, dot, fraction = text.partition(".")
    if seconds.isdigit() and (not dot or fraction.isdigit()):
        return int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9] or 0)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f'failed to parse value as time or duration: "{text}"') from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def log_prefix(service_name: str, task, node_name: str, padding_width: int, options: LogOptions) -> str:
    name = f"{service_name}.{task.slot}" if task.slot else f"{service_name}.{task.node_id}"
    if options.task_ids:
        name += "." + (truncate_id(task.id) if options.truncate else task.id)
    padding = " " * max(0, padding_width - len(str(task.slot)))
    return f"{name}@{node_name}{padding}"


def format_log_line(message, prefix: str, options: LogOptions) -> str:
    text = message.data.decode("utf-8", "replace")
    if not text.endswith("\n"):
        text += "\n"
    stamp = fixed_rfc3339_nano(message.timestamp) + " " if options.timestamps else ""
    if options.details and message.attrs:
        text = ",".join(f"{a.key}={a.value}" for a in message.attrs) + " " + text
    if options.raw:
        return stamp + text
    return f"{stamp}{prefix}    | {text}"


class _ContextNames:
    """Service, task and node names for log contexts, each looked up once."""

    def __init__(self, daemon) -> None:
        self._daemon = daemon
        self._services: dict[str, str] = {}
        self._tasks: dict[str, object] = {}
        self._nodes: dict[str, str] = {}

    def service_name(self, service_id: str) -> str:
        if service_id not in self._services:
            try:
                service = self._daemon.control.GetService(control_pb2.GetServiceRequest(ref=service_id), timeout=self._daemon.timeout).service
                self._services[service_id] = service.spec.annotations.name
            except grpc.RpcError:
                self._services[service_id] = service_id
        return self._services[service_id]

    def task(self, task_id: str, context):
        if task_id not in self._tasks:
            from swarmpy.api import objects_pb2

            try:
                self._tasks[task_id] = self._daemon.control.GetTask(control_pb2.GetTaskRequest(ref=task_id), timeout=self._daemon.timeout).task
            except grpc.RpcError:
                self._tasks[task_id] = objects_pb2.Task(id=task_id, node_id=context.node_id, service_id=context.service_id)
        return self._tasks[task_id]

    def node_name(self, node_id: str) -> str:
        if node_id not in self._nodes:
            try:
                node = self._daemon.control.GetNode(control_pb2.GetNodeRequest(ref=node_id), timeout=self._daemon.timeout).node
                self._nodes[node_id] = node.description.hostname or node_id
            except grpc.RpcError:
                self._nodes[node_id] = node_id
        return self._nodes[node_id]


def _padding_width(daemon, ref: str) -> int:
    """Width of the widest slot number, so the `|` bars align across tasks."""
    try:
        service = daemon.control.GetService(control_pb2.GetServiceRequest(ref=ref), timeout=daemon.timeout).service
        if service.spec.WhichOneof("mode") == "replicated":
            return len(str(service.spec.replicated.replicas))
        return 1
    except grpc.RpcError as error:
        if not is_not_found(error):
            raise error_from_rpc(error, daemon.host) from None
    try:
        task = daemon.control.GetTask(control_pb2.GetTaskRequest(ref=ref), timeout=daemon.timeout).task
        return len(str(task.slot))
    except grpc.RpcError as error:
        if is_not_found(error):
            raise CliError(f"no such task or service: {ref}") from None
        raise error_from_rpc(error, daemon.host) from None


def print_logs(state, ref: str, options: LogOptions) -> None:
    daemon = state.daemon
    padding_width = _padding_width(daemon, ref)
    names = _ContextNames(daemon)
    prefixes: dict[tuple[str, str, str], str] = {}
    request = control_pb2.ServiceLogsRequest(ref=ref, options=dispatcher_pb2.LogOptions(
        follow=options.follow, tail=options.tail, timestamps=options.timestamps, since=options.since_ns,
        details=options.details))
    stream = daemon.control.ServiceLogs(request, timeout=None if options.follow else daemon.timeout)
    try:
        for batch in stream:
            for message in batch.messages:
                context = message.context
                key = (context.service_id, context.node_id, context.task_id)
                if key not in prefixes:
                    task = names.task(context.task_id, context)
                    service = names.service_name(context.service_id) if options.resolve else context.service_id
                    node = names.node_name(context.node_id) if options.resolve else context.node_id
                    prefixes[key] = log_prefix(service, task, node, padding_width, options)
                out = sys.stderr if message.stream == dispatcher_pb2.LogMessage.STDERR else sys.stdout
                out.write(format_log_line(message, prefixes[key], options))
                out.flush()
    except grpc.RpcError as error:
        raise error_from_rpc(error, daemon.host) from None
    finally:
        stream.cancel()
