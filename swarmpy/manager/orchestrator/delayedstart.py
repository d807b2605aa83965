"""The delayed starter: starts a task created to wait (desired READY) once its slot's old tasks stopped.

Theory of operation
-------------------
A stop-first update retires a slot's old task and, in the same transaction, creates its successor with
desired state READY (swarmkit's updater does the same). The worker prepares the successor (creates its
container) but does not start it, so the old and the new task never run side by side: a published host
port, a volume or a licence held by the old container is free before the new one starts.

This loop gives each waiting task desired RUNNING once no retired task of its slot may still be running.
A retired task may still run while it reached a node (ASSIGNED or later), has not reported a state past
RUNNING, and its node is neither gone nor DOWN (a dead node never reports; its tasks are taken as
stopped, as the orchestrators take them). A task that never reached a node has no container to wait for.
An old task that does not stop within OLD_TASK_TIMEOUT (swarmkit's one minute) holds its successor back
no longer.

The waits live in memory and are rebuilt from the store when the loop starts, so a new leader starts the
successors a failed leader left waiting (their timeout starts over). A task event re-checks only the
waiting tasks of that task's slot; a node going DOWN or away re-checks them all; a timer wakes the loop
for the earliest timeout. Starts are written in transactions of at most START_BATCH tasks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable

from swarmpy.api import objects_pb2
from swarmpy.manager.store import Change, MemoryStore, StoreError, Transaction, retry_conflicts
from swarmpy.manager.store.memory import clone

from .common import READY, RUNNING, NodeState, SlotKey, next_events, slot_key

log = logging.getLogger(__name__)

OLD_TASK_TIMEOUT = 60.0  # seconds an old task may take to stop before its successor starts anyway
START_BATCH = 200


def is_waiting(task: objects_pb2.Task) -> bool:
    """Created to wait: prepared by its worker, started only when this loop says so."""
    return task.desired_state == READY


def may_still_run(task: objects_pb2.Task, node: objects_pb2.Node | None) -> bool:
    """A retired task whose container may still be running (see the module's theory of operation)."""
    return (
        task.desired_state > RUNNING
        and objects_pb2.ASSIGNED <= task.status.state <= RUNNING
        and node is not None
        and node.status.state != NodeState.DOWN
    )


class DelayedStarter:
    """Gives waiting tasks desired RUNNING once their slot's old tasks have stopped (or timed out)."""

    def __init__(
        self, store: MemoryStore, *, old_task_timeout: float = OLD_TASK_TIMEOUT, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._timeout = old_task_timeout
        self._clock = clock
        self._waiting: dict[SlotKey, dict[str, float]] = defaultdict(dict)  # slot -> {task ID: give-up time}

    async def run(self) -> None:
        view, watch = self._store.view_and_watch(["task", "node"])
        with watch:
            for task in view.tasks():
                self._note(task)
            await self._start(self._startable(list(self._waiting)))
            while True:
                try:
                    async with asyncio.timeout(self._next_timeout()):
                        events = await next_events(watch)
                except TimeoutError:
                    events = []
                await self._start(self._startable(self._slots_to_check(events)))

    def _note(self, task: objects_pb2.Task) -> None:
        key = slot_key(task)
        if is_waiting(task):
            self._waiting[key].setdefault(task.id, self._clock() + self._timeout)
        else:
            self._forget(key, task.id)

    def _forget(self, key: SlotKey, task_id: str) -> None:
        waits = self._waiting.get(key)
        if waits is not None and waits.pop(task_id, None) is not None and not waits:
            del self._waiting[key]

    def _slots_to_check(self, events: list) -> list[SlotKey]:
        """The slots these events may have unblocked; all of them after a node went DOWN or away, or
        when the timer fired (some wait ran out)."""
        if not events:
            return list(self._waiting)
        slots: set[SlotKey] = set()
        everything = False
        for event in events:
            if not isinstance(event, Change):
                continue
            if event.kind == "task":
                if event.new is not None:
                    self._note(event.new)
                else:
                    self._forget(slot_key(event.old), event.old.id)
                slots.add(slot_key(event.obj))
            elif event.kind == "node" and (event.new is None or event.new.status.state == NodeState.DOWN):
                everything = True
        return list(self._waiting) if everything else [key for key in slots if key in self._waiting]

    def _next_timeout(self) -> float | None:
        if not self._waiting:
            return None
        earliest = min(min(waits.values()) for waits in self._waiting.values())
        return max(0.0, earliest - self._clock())

    def _startable(self, slots: Iterable[SlotKey]) -> list[tuple[SlotKey, str]]:
        view = self._store.view()
        now = self._clock()
        startable: list[tuple[SlotKey, str]] = []
        for key in slots:
            waits = self._waiting.get(key, {})
            blocked = any(
                may_still_run(task, view.get_node(task.node_id)) for task in view.tasks_in_slot(*key) if task.id not in waits
            )
            for task_id, give_up in waits.items():
                if blocked and now < give_up:
                    continue
                if blocked:
                    log.info("task %s: an old task of its slot did not stop within %.0f s; starting it anyway",
                             task_id, self._timeout)
                startable.append((key, task_id))
        return startable

    async def _start(self, startable: list[tuple[SlotKey, str]]) -> None:
        for begin in range(0, len(startable), START_BATCH):
            chunk = startable[begin:begin + START_BATCH]
            task_ids = [task_id for _, task_id in chunk]
            try:
                await retry_conflicts(
                    lambda: self._store.update(lambda tx: self._write_starts(tx, task_ids)),
                    what=f"start of {len(task_ids)} waiting task(s)",
                )
            except StoreError as error:
                # Left waiting, to be tried again on their slot's next event or a second from now (not at
                # once: a timed-out wait would make the timer fire immediately, again and again).
                log.warning("could not start %d waiting task(s): %s", len(task_ids), error)
                retry_at = self._clock() + 1.0
                for key, task_id in chunk:
                    waits = self._waiting.get(key)
                    if waits is not None and task_id in waits:
                        waits[task_id] = max(waits[task_id], retry_at)
                continue
            for key, task_id in chunk:
                self._forget(key, task_id)

    @staticmethod
    def _write_starts(tx: Transaction, task_ids: list[str]) -> None:
        for task_id in task_ids:
            task = tx.get_task(task_id)
            if task is not None and is_waiting(task):
                started = clone(task)
                started.desired_state = RUNNING
                tx.update("task", started)
