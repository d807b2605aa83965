"""The worker's side of `service logs`: which local tasks a LogSubscription selects, and their containers'
log lines as LogMessages stamped with the task's service, node and task IDs.

The Agent decides when to read (a subscription arrives) and where to send (PublishLogs); this module only
reads, through the executor's `owned_containers()` (task ID → container) and `logs()` (see
swarmpy.worker.executor.logs), so any executor offering those two serves logs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Protocol

from swarmpy.api import dispatcher_pb2, objects_pb2
from swarmpy.worker.executor.logs import STDERR

log = logging.getLogger(__name__)


class TaskLogSource(Protocol):
    """Reads one task's logs on this node. The Agent takes any object with this method."""

    def task_logs(self, task: objects_pb2.Task, options: dispatcher_pb2.LogOptions) -> AsyncIterator[dispatcher_pb2.LogMessage]: ...


def selected_tasks(tasks: Iterable[objects_pb2.Task], selector: dispatcher_pb2.LogSelector) -> list[objects_pb2.Task]:
    """The local tasks a subscription asks for: by task ID, or by service ID."""
    return [task for task in tasks if task.id in selector.task_ids or task.service_id in selector.service_ids]


class ExecutorLogSource:
    """Task logs from the executor's containers (the DockerExecutor in the daemon)."""

    def __init__(self, executor, node_id: str) -> None:
        self._executor = executor
        self._node_id = node_id

    async def task_logs(
        self, task: objects_pb2.Task, options: dispatcher_pb2.LogOptions
    ) -> AsyncIterator[dispatcher_pb2.LogMessage]:
        owned = await self._executor.owned_containers()
        facts = owned.get(task.id)
        if facts is None:
            log.debug("node %s: task %s has no container, so no logs", self._node_id, task.id)
            return
        context = dispatcher_pb2.LogContext(service_id=task.service_id, node_id=self._node_id, task_id=task.id)
        lines = self._executor.logs(facts.container_id, follow=options.follow, tail=options.tail, since_ns=options.since,
                                    details=options.details)
        async with contextlib.aclosing(lines):
            async for line in lines:
                yield dispatcher_pb2.LogMessage(
                    context=context,
                    timestamp=line.timestamp_ns,
                    stream=dispatcher_pb2.LogMessage.STDERR if line.stream == STDERR else dispatcher_pb2.LogMessage.STDOUT,
                    data=line.data,
                    attrs=[dispatcher_pb2.LogAttr(key=key, value=value) for key, value in line.attrs],
                )
