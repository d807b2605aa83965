"""The task reaper: deletes the tasks nobody needs any more.

Theory of operation
-------------------
Two kinds of task are deleted:
- tasks with desired state REMOVE (their service was deleted, or the task was otherwise given up) once
  nothing runs them: the worker reported them stopped (any state beyond RUNNING), they never reached a
  worker (still NEW or PENDING), or their node is gone from the store;
- history: each slot keeps at most the cluster's task_history_retention_limit retired tasks (desired
  state beyond RUNNING; default 5, negative: keep all); the oldest stopped ones beyond that are deleted.
  The slot's current task is never history, and a retired task still running is counted but kept until
  its worker stops it.
`reap_removed` and `history_to_delete` are the pure decisions.

The loop notes the slots of retired tasks that changed and the tasks marked REMOVE, and every 250 ms (or as soon
as 1,000 are noted) decides for all of them at once and deletes in one store batch, so that a large
service deletion becomes a few proposals rather than thousands.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from swarmpy.api import objects_pb2
from swarmpy.manager.store import Change, MemoryStore, ReadView, StoreError
from swarmpy.manager.store.memory import Batch

from .common import ASSIGNED, REMOVE, SlotKey, is_finished, is_runnable, slot_key

log = logging.getLogger(__name__)

DEFAULT_TASK_HISTORY_RETENTION_LIMIT = 5
TICK_SECONDS = 0.25
DIRTY_LIMIT = 1000


def retention_limit(cluster: objects_pb2.Cluster | None) -> int:
    if cluster is None or not cluster.spec.HasField("orchestration"):
        return DEFAULT_TASK_HISTORY_RETENTION_LIMIT
    return cluster.spec.orchestration.task_history_retention_limit


def is_stopped_or_never_started(task: objects_pb2.Task) -> bool:
    return is_finished(task) or task.status.state < ASSIGNED


def reap_removed(task: objects_pb2.Task, node_exists: bool) -> bool:
    """A task marked REMOVE may be deleted once no worker runs it."""
    return task.desired_state >= REMOVE and (is_stopped_or_never_started(task) or not node_exists)


def history_to_delete(slot_tasks: Iterable[objects_pb2.Task], limit: int) -> list[objects_pb2.Task]:
    """The oldest retired tasks of one slot beyond the retention limit that may go now."""
    if limit < 0:
        return []
    retired = [task for task in slot_tasks if not is_runnable(task) and task.desired_state < REMOVE]
    excess = len(retired) - limit
    if excess <= 0:
        return []
    retired.sort(key=lambda task: (task.meta.created_at, task.id))
    return [task for task in retired if is_stopped_or_never_started(task)][:excess]


class TaskReaper:
    """Deletes REMOVE tasks once stopped and trims slot history; reads tasks, nodes, the cluster; deletes tasks."""

    def __init__(self, store: MemoryStore, *, tick_seconds: float = TICK_SECONDS, dirty_limit: int = DIRTY_LIMIT) -> None:
        self._store = store
        self._tick = tick_seconds
        self._dirty_limit = dirty_limit

    async def run(self) -> None:
        view, watch = self._store.view_and_watch(["task", "node", "cluster"])
        with watch:
            slots: set[SlotKey] = {slot_key(task) for task in view.tasks()}
            removed: set[str] = {task.id for task in view.tasks() if task.desired_state >= REMOVE}
            while True:
                if slots or removed:
                    await self._reap(slots, removed)
                    slots, removed = set(), set()
                await self._collect(watch, slots, removed)

    async def _collect(self, watch, slots: set[SlotKey], removed: set[str]) -> None:
        """Gather events until a tick has passed since the first one, or enough work is noted."""
        deadline: float | None = None
        loop = asyncio.get_running_loop()
        while len(slots) + len(removed) < self._dirty_limit:
            timeout = None if deadline is None else deadline - loop.time()
            if timeout is not None and timeout <= 0:
                return
            try:
                # asyncio.timeout rather than wait_for: on 3.11, wait_for can swallow a cancellation that
                # races the result, which would leave this loop running after its owner stopped it.
                async with asyncio.timeout(timeout):
                    first = await watch.get()
            except TimeoutError:
                return
            # Everything already queued is taken without a timer each: a large service makes thousands.
            noted = [self._note(event, slots, removed) for event in [first, *watch.drain()]]
            if deadline is None and any(noted):
                deadline = loop.time() + self._tick

    def _note(self, event: object, slots: set[SlotKey], removed: set[str]) -> bool:
        """Note what the event may make deletable; whether it noted anything."""
        if not isinstance(event, Change):
            return False
        if event.kind == "task" and event.new is not None:
            if event.new.desired_state >= REMOVE:
                removed.add(event.new.id)
            elif not is_runnable(event.new):
                # Only a retired task (just retired, or reporting it stopped) can push a slot's history
                # over the limit or make its excess deletable; a runnable task's reports cannot, and
                # noting their slots would re-read a large service for every status report.
                slots.add(slot_key(event.new))
            else:
                return False
        elif event.kind == "node" and event.action == "remove":
            removed.update(
                task.id for task in self._store.view().tasks_by_node(event.old.id) if task.desired_state >= REMOVE
            )
        elif event.kind == "cluster":
            slots.update(slot_key(task) for task in self._store.view().tasks())
        else:
            return False
        return True

    async def _reap(self, slots: set[SlotKey], removed: set[str]) -> None:
        view = self._store.view()
        doomed = self._decide(view, slots, removed)
        if not doomed:
            return

        def write(batch: Batch) -> None:
            for task_id in doomed:
                if batch.get_task(task_id) is not None:
                    batch.delete("task", task_id)

        started = time.monotonic()
        try:
            await self._store.batch(write)
        except StoreError as error:
            # Deletes do not check versions; a refusal means a task vanished meanwhile: nothing to redo.
            log.debug("task reaper batch partly refused: %s", error)
        log.debug("reaped %d tasks in %.3f s", len(doomed), time.monotonic() - started)

    def _decide(self, view: ReadView, slots: set[SlotKey], removed: set[str]) -> list[str]:
        doomed: dict[str, None] = {}
        for task_id in removed:
            task = view.get_task(task_id)
            if task is not None and reap_removed(task, not task.node_id or view.get_node(task.node_id) is not None):
                doomed[task_id] = None
        limit = retention_limit(view.get_cluster())
        by_service: dict[str, set[SlotKey]] = {}
        for key in slots:
            by_service.setdefault(key[0], set()).add(key)
        for service_id, keys in by_service.items():
            grouped: dict[SlotKey, list[objects_pb2.Task]] = {}
            for task in view.tasks_by_service(service_id):
                key = slot_key(task)
                if key in keys:
                    grouped.setdefault(key, []).append(task)
            for slot_tasks in grouped.values():
                for task in history_to_delete(slot_tasks, limit):
                    doomed[task.id] = None
        return list(doomed)
