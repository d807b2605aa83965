"""The rolling updater: brings a service's tasks to its current task spec, slot by slot (swarmkit's updater).

Theory of operation
-------------------
An orchestrator starts one `ServiceUpdate` per service whose current tasks were made from another task
spec (`is_task_dirty`), and cancels it when the service changes again or is deleted (`UpdateRunner`
owns those tasks). The update reads its settings from the service's update config, or from its
rollback config when the service is rolling back (update_status ROLLBACK_STARTED, set by the control API
for `service rollback` or by this updater for an automatic rollback), with docker's defaults filled in
(`effective_update_config`): parallelism 1, no delay, failure action pause, monitor 5 s, failure ratio 0,
stop-first.

The dirty slots go into a queue worked by `parallelism` workers (0: one per slot, all at once). A worker
takes a slot and replaces it in ONE transaction of its own, so the size of the service never makes a
transaction too large, and a write that lost a race is retried a bounded number of times, yielding
between tries (`retry_conflicts`):
- stop-first: the dirty task's desired state becomes SHUTDOWN and its successor is created together,
  with desired state READY while the old task may still run: its worker prepares it, and the
  `DelayedStarter` starts it once the old task has stopped, so the two never run side by side;
- start-first: the successor is created first; the old task is retired once the successor runs (or has
  failed), so the service never runs fewer tasks than it should while the update goes well;
- a slot that already has a clean task (e.g. during a rollback, the previous task still running) only
  has its dirty tasks retired.
The worker then waits for the successor to run (RUNNING: healthy, where the task has a health check,
because the worker reports RUNNING only then), fail, or stop mattering, sleeps `delay`, and takes the
next slot.

One store watch (`_TaskFollower`) follows every task the update created. A created task that stops on
its own (failed, or completed) before it runs or within `monitor` of starting to run counts as a
failure. When failures / dirty slots exceeds `max_failure_ratio`, the failure action applies: PAUSE
stops taking slots and records PAUSED ("update paused due to failure or early termination of task X");
ROLLBACK puts the previous spec back with ROLLBACK_STARTED ("update rolled back due to failure or early
termination of task X"), which the orchestrator then rolls out with the rollback config, and a failing
rollback pauses (a rollback is never rolled back); CONTINUE carries on. After the last slot the update
keeps watching for `monitor` after the last successor started running, then records COMPLETED ("update
completed") or ROLLBACK_COMPLETED ("rollback completed"). While paused, no new update of the same spec
starts (the control API clears update_status when it writes a new spec).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from swarmpy.api import objects_pb2
from swarmpy.manager.controlapi.defaults import effective_rollback_config, effective_update_config
from swarmpy.manager.store import Change, MemoryStore, StoreError, Transaction, retry_conflicts
from swarmpy.manager.store.memory import clone

from .common import READY, RUNNING, is_finished, is_runnable, is_task_dirty, new_task, retire, runnable_by_slot
from .delayedstart import may_still_run

log = logging.getLogger(__name__)

UpdateState = objects_pb2.UpdateStatus.UpdateState
FailureAction = objects_pb2.UpdateConfig.FailureAction
Order = objects_pb2.UpdateConfig.Order
_PAUSED_STATES = (UpdateState.PAUSED, UpdateState.ROLLBACK_PAUSED)

Slot = int | str  # slot number (replicated) or node ID (global)
T = TypeVar("T")

CONCURRENT_SLOT_WRITES = 32


def dirty_slots(service: objects_pb2.Service, tasks: list[objects_pb2.Task]) -> list[Slot]:
    """The slots whose current task was made from another task spec, in a stable order."""
    slots = [
        slot
        for slot, current in runnable_by_slot(tasks).items()
        if any(is_task_dirty(service, task) for task in current)
    ]
    return sorted(slots, key=lambda slot: (isinstance(slot, str), slot))


def update_may_start(service: objects_pb2.Service) -> bool:
    """A paused update stays paused until the control API writes a new spec (and clears the status)."""
    return service.update_status.state not in _PAUSED_STATES


def is_rolling_back(service: objects_pb2.Service) -> bool:
    return service.update_status.state == UpdateState.ROLLBACK_STARTED


def rollout_config(service: objects_pb2.Service) -> objects_pb2.UpdateConfig:
    """The settings this rollout follows: the rollback config while rolling back, else the update config."""
    return effective_rollback_config(service.spec) if is_rolling_back(service) else effective_update_config(service.spec)


class _Failed(Exception):
    """The failure action stops the update; `task_id` names the task that tipped it."""

    def __init__(self, task_id: str) -> None:
        super().__init__(task_id)
        self.task_id = task_id


class _TaskFollower:
    """Follows the tasks an update created, from one store watch: which runs, which stopped on its own.

    A worker awaits `settled(task_id)` (True: it runs; False: it failed or no longer matters). Failures
    within the monitor period go to `on_failure`.
    """

    def __init__(self, store: MemoryStore, monitor_s: float, on_failure: Callable[[str], None]) -> None:
        self._store = store
        self._monitor_s = monitor_s
        self._on_failure = on_failure
        self._settled: dict[str, asyncio.Future[bool]] = {}
        self._running_since: dict[str, float] = {}  # task ID -> monotonic time it was first seen RUNNING
        self._done: set[str] = set()  # stopped, failed or counted: nothing more to see

    def follow(self, task_id: str) -> None:
        self._settled.setdefault(task_id, asyncio.get_running_loop().create_future())
        task = self._store.view().get_task(task_id)
        self._observe(task_id, task)

    async def settled(self, task_id: str) -> bool:
        return await self._settled[task_id]

    def last_start(self) -> float | None:
        return max(self._running_since.values(), default=None)

    async def run(self) -> None:
        with self._store.watch(["task"]) as watch:
            # Catch up with anything that changed between follow() and the watch opening.
            for task_id in list(self._settled):
                self._observe(task_id, self._store.view().get_task(task_id))
            while True:
                events = [await watch.get(), *watch.drain()]
                for event in events:
                    if isinstance(event, Change) and event.obj.id in self._settled:
                        self._observe(event.obj.id, event.new)

    def _observe(self, task_id: str, task: objects_pb2.Task | None) -> None:
        if task_id in self._done:
            return
        settled = self._settled[task_id]
        if task is None or not is_runnable(task):
            self._done.add(task_id)  # removed or retired by someone else (a scale-down, a node drain)
            _resolve(settled, False)
            return
        if is_finished(task):
            self._done.add(task_id)
            started = self._running_since.get(task_id)
            if started is None or time.monotonic() - started < self._monitor_s:
                self._on_failure(task_id)
            _resolve(settled, False)
            return
        if task.status.state == RUNNING and task_id not in self._running_since:
            self._running_since[task_id] = time.monotonic()
            _resolve(settled, True)


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


class ServiceUpdate:
    """One rolling update of one service towards the task spec of `spec_version`."""

    def __init__(
        self, store: MemoryStore, service_id: str, spec_version: int, *, clock: Callable[[], int] = time.time_ns
    ) -> None:
        self._store = store
        self.service_id = service_id
        self.spec_version = spec_version
        self._clock = clock
        self._failures = 0
        self._stop: _Failed | None = None  # set once the failure action says stop
        # Slot transactions in flight at once. With parallelism 0 a thousand workers would otherwise all
        # be runnable together, and every other coroutine of the leader (a `service ls`) would queue
        # behind them; parked on this, they wait without costing a turn of the loop. Raft still batches
        # the writes in flight, so "all at once" keeps its speed.
        self._writes = asyncio.Semaphore(CONCURRENT_SLOT_WRITES)

    async def run(self) -> None:
        try:
            await self._run()
        except* StoreError as errors:
            # A write that kept losing races (bounded) or was refused: the orchestrator starts the
            # update again on the service's next change.
            log.warning("update of service %s stopped: %s", self.service_id, errors.exceptions[0])

    async def _run(self) -> None:
        service = self._current_service()
        if service is None:
            return
        rollback = is_rolling_back(service)
        config = rollout_config(service)
        if not rollback:
            await self._set_status(UpdateState.UPDATING, "update in progress", started=True)
        slots = dirty_slots(service, self._store.view().tasks_by_service(self.service_id))
        follower = _TaskFollower(self._store, config.monitor / 1e9, lambda task_id: self._failed(config, len(slots), task_id))
        queue = deque(slots)
        workers = min(config.parallelism or len(slots), len(slots))
        async with asyncio.TaskGroup() as group:
            following = group.create_task(follower.run())
            async with asyncio.TaskGroup() as crew:
                for _ in range(workers):
                    crew.create_task(self._work(queue, config, follower))
            if self._stop is None:
                await self._monitor(follower, config.monitor / 1e9)
            following.cancel()
        if self._current_service() is None:
            return  # deleted or superseded meanwhile: the orchestrator starts another update if needed
        if self._stop is not None:
            await self._apply_failure_action(config, rollback, self._stop.task_id)
            return
        if rollback:
            await self._set_status(UpdateState.ROLLBACK_COMPLETED, "rollback completed", completed=True)
        else:
            await self._set_status(UpdateState.COMPLETED, "update completed", completed=True)
        log.info("service %s updated to spec version %d", self.service_id, self.spec_version)

    def _failed(self, config: objects_pb2.UpdateConfig, dirty: int, task_id: str) -> None:
        self._failures += 1
        log.info("update of service %s: task %s failed (%d of %d slots)", self.service_id, task_id, self._failures, dirty)
        if self._stop is not None or config.failure_action == FailureAction.CONTINUE:
            return
        if self._failures / max(dirty, 1) > config.max_failure_ratio:
            self._stop = _Failed(task_id)

    async def _work(self, queue: deque[Slot], config: objects_pb2.UpdateConfig, follower: _TaskFollower) -> None:
        start_first = config.order == Order.START_FIRST
        while queue and self._stop is None:
            if self._current_service() is None:
                return
            slot = queue.popleft()
            successor = await self._write_slot(slot, lambda tx: self._replace(tx, slot, start_first))
            if successor is None:
                continue
            follower.follow(successor)
            await follower.settled(successor)
            if start_first and self._stop is None:
                await self._write_slot(slot, lambda tx: self._retire_dirty(tx, slot, keep=successor))
            if config.delay > 0 and queue and self._stop is None:
                await asyncio.sleep(config.delay / 1e9)

    async def _write_slot(self, slot: Slot, write: Callable[[Transaction], T]) -> T:
        """One slot's transaction: bounded in flight (self._writes), retried on lost races."""
        async with self._writes:
            return await retry_conflicts(
                lambda: self._store.update(write), what=f"update of service {self.service_id} slot {slot}"
            )

    async def _monitor(self, follower: _TaskFollower, monitor_s: float) -> None:
        """Keep watching the new tasks until `monitor` has passed since the last one started running."""
        while self._stop is None:
            last = follower.last_start()
            left = 0.0 if last is None else last + monitor_s - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.1))

    def _slot_tasks(self, tx: Transaction, slot: Slot) -> list[objects_pb2.Task]:
        return [task for task in tx.tasks_in_slot(self.service_id, slot) if is_runnable(task)]

    def _replace(self, tx: Transaction, slot: Slot, start_first: bool) -> str | None:
        """One slot's transaction; the ID of the task to wait for, or None when the slot needs nothing."""
        service = tx.get_service(self.service_id)
        if service is None or service.spec_version.index != self.spec_version:
            return None
        current = self._slot_tasks(tx, slot)
        dirty = [task for task in current if is_task_dirty(service, task)]
        if not dirty:
            return None
        clean = [task for task in current if not is_task_dirty(service, task)]
        if clean:
            # The slot already has a task of the current spec (a rollback finding the previous task still
            # up, or a start-first successor from an interrupted update): only the dirty ones go.
            for task in dirty:
                tx.update("task", retire(task))
            return clean[0].id
        desired = RUNNING
        if not start_first:
            retired = [retire(task) for task in dirty]
            for task in retired:
                tx.update("task", task)
            if any(may_still_run(task, tx.get_node(task.node_id)) for task in retired):
                desired = READY  # prepared now, started by the DelayedStarter once the old task stopped
        if isinstance(slot, int):
            successor = new_task(tx.get_cluster(), service, slot, desired_state=desired)
        else:
            successor = new_task(tx.get_cluster(), service, 0, slot, desired_state=desired)
        tx.create("task", successor)
        return successor.id

    def _retire_dirty(self, tx: Transaction, slot: Slot, keep: str) -> None:
        service = tx.get_service(self.service_id)
        if service is None or service.spec_version.index != self.spec_version:
            return
        for task in self._slot_tasks(tx, slot):
            if task.id != keep and is_task_dirty(service, task):
                tx.update("task", retire(task))

    async def _apply_failure_action(self, config: objects_pb2.UpdateConfig, rollback: bool, task_id: str) -> None:
        if config.failure_action == FailureAction.ROLLBACK and not rollback:
            message = f"update rolled back due to failure or early termination of task {task_id}"
            rolled_back = await retry_conflicts(
                lambda: self._store.update(lambda tx: self._roll_back(tx, message)),
                what=f"rollback of service {self.service_id}",
            )
            if rolled_back:
                log.info("update of service %s rolled back: task %s failed", self.service_id, task_id)
                return
        what = "rollback" if rollback else "update"
        state = UpdateState.ROLLBACK_PAUSED if rollback else UpdateState.PAUSED
        await self._set_status(state, f"{what} paused due to failure or early termination of task {task_id}")
        log.info("%s of service %s paused: task %s failed", what, self.service_id, task_id)

    def _roll_back(self, tx: Transaction, message: str) -> bool:
        """swarmkit's automatic rollback: the previous spec becomes the spec (and is then forgotten)."""
        service = tx.get_service(self.service_id)
        if service is None or service.spec_version.index != self.spec_version or not service.HasField("previous_spec"):
            return False
        service = clone(service)
        service.spec.CopyFrom(service.previous_spec)
        service.spec_version.CopyFrom(service.previous_spec_version)
        service.ClearField("previous_spec")
        service.ClearField("previous_spec_version")
        service.update_status.state = UpdateState.ROLLBACK_STARTED
        service.update_status.message = message
        service.update_status.started_at = self._clock()
        service.update_status.completed_at = 0
        tx.update("service", service)
        return True

    def _current_service(self) -> objects_pb2.Service | None:
        service = self._store.view().get_service(self.service_id)
        if service is None or service.spec_version.index != self.spec_version:
            return None
        return service

    async def _set_status(self, state: int, message: str, *, started: bool = False, completed: bool = False) -> None:
        def write(tx: Transaction) -> None:
            service = tx.get_service(self.service_id)
            if service is None or service.spec_version.index != self.spec_version:
                return
            service = clone(service)
            service.update_status.state = state
            service.update_status.message = message
            if started:
                service.update_status.started_at = self._clock()
                service.update_status.completed_at = 0
            if completed:
                service.update_status.completed_at = self._clock()
            tx.update("service", service)

        await retry_conflicts(lambda: self._store.update(write), what=f"status of service {self.service_id}'s update")


class UpdateRunner:
    """Owns the running updates of one orchestrator: at most one per service, for its current spec."""

    def __init__(self, store: MemoryStore, group: asyncio.TaskGroup) -> None:
        self._store = store
        self._group = group
        self._running: dict[str, tuple[int, asyncio.Task[None]]] = {}

    def ensure(self, service: objects_pb2.Service) -> None:
        """Start an update towards the service's current spec unless one is running or paused."""
        running = self._running.get(service.id)
        if running is not None:
            version, task = running
            if version == service.spec_version.index:
                return
            task.cancel()
        if not update_may_start(service):
            return
        update = ServiceUpdate(self._store, service.id, service.spec_version.index)
        task = self._group.create_task(update.run())
        self._running[service.id] = (service.spec_version.index, task)
        task.add_done_callback(lambda done, service_id=service.id: self._finished(service_id, done))

    def is_updating(self, service_id: str) -> bool:
        return service_id in self._running

    def cancel(self, service_id: str) -> None:
        running = self._running.pop(service_id, None)
        if running is not None:
            running[1].cancel()

    def _finished(self, service_id: str, task: asyncio.Task[None]) -> None:
        running = self._running.get(service_id)
        if running is not None and running[1] is task:
            del self._running[service_id]
