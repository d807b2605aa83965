"""A minimal rolling updater: brings a service's tasks to its current task spec, a few slots at a time.

Theory of operation
-------------------
An orchestrator starts one `ServiceUpdate` per service whose current tasks were made from another task
spec (`is_task_dirty`), and cancels it when the service changes again or is deleted (`UpdateRunner`
owns those tasks). The update works in batches of `update.parallelism` slots (0: all at once), stop-first:
in one transaction per slot, the dirty task's desired state becomes SHUTDOWN and a new task is created in
the same slot (a global service's on the same node). It then waits until every new task of the batch is
RUNNING, or finished, or no longer wanted; waits `update.delay`; and takes the next batch, re-reading the
store each time so that scaling, restarts and node loss during the update are taken into account.

The service's update_status records the progress: UPDATING (or ROLLBACK_STARTED, left as the control
API set it for a rollback) while it runs, then COMPLETED (ROLLBACK_COMPLETED). A new task that fails
pauses the update (PAUSED / ROLLBACK_PAUSED) with a message naming it, unless the failure action is
CONTINUE; while paused, no new update of the same spec starts (the control API clears update_status when
it writes a new spec). A rollback is just another spec change: the control API puts previous_spec back.

After the last batch the update watches every task it started for the monitor period (default 5 s)
before it counts as COMPLETED; a failure meanwhile pauses it like any other.

Not yet here (the fuller updater comes later and fits behind the same `ServiceUpdate.run`): max
failure ratio, start-first order, and the automatic rollback failure action (treated as pause for now).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from swarmpy.api import objects_pb2
from swarmpy.manager.controlapi.defaults import effective_rollback_config, effective_update_config
from swarmpy.manager.store import MemoryStore, StoreError, Transaction
from swarmpy.manager.store.memory import clone

from .common import RUNNING, is_finished, is_runnable, is_task_dirty, new_task, retire, runnable_by_slot

log = logging.getLogger(__name__)

UpdateState = objects_pb2.UpdateStatus.UpdateState
FailureAction = objects_pb2.UpdateConfig.FailureAction
_PAUSED_STATES = (UpdateState.PAUSED, UpdateState.ROLLBACK_PAUSED)


def dirty_slots(service: objects_pb2.Service, tasks: list[objects_pb2.Task]) -> list[int | str]:
    """The slots whose current task was made from another task spec, in a stable order."""
    slots = [
        slot
        for slot, current in runnable_by_slot(tasks).items()
        if any(is_task_dirty(service, task) for task in current)
    ]
    return sorted(slots, key=lambda slot: (isinstance(slot, str), slot))


def next_batch(service: objects_pb2.Service, slots: list[int | str]) -> list[int | str]:
    parallelism = service.spec.update.parallelism
    return slots if parallelism == 0 else slots[:parallelism]


def update_may_start(service: objects_pb2.Service) -> bool:
    """A paused update stays paused until the control API writes a new spec (and clears the status)."""
    return service.update_status.state not in _PAUSED_STATES


class ServiceUpdate:
    """One rolling update of one service towards the task spec of `spec_version`."""

    def __init__(
        self, store: MemoryStore, service_id: str, spec_version: int, *, clock: Callable[[], int] = time.time_ns
    ) -> None:
        self._store = store
        self.service_id = service_id
        self.spec_version = spec_version
        self._clock = clock

    async def run(self) -> None:
        service = self._current_service()
        if service is None:
            return
        rollback = service.update_status.state == UpdateState.ROLLBACK_STARTED
        if not rollback:
            await self._set_status(UpdateState.UPDATING, "update in progress", started=True)
        updated: list[str] = []
        while True:
            service = self._current_service()
            if service is None:
                return  # deleted or superseded: the orchestrator starts another update if needed
            batch = next_batch(service, dirty_slots(service, self._store.view().tasks_by_service(self.service_id)))
            if not batch:
                break
            new_ids = await self._replace(batch)
            updated.extend(new_ids)
            failed = await self._wait_until_running(new_ids)
            if failed is not None and not await self._pause_unless_continuing(service, rollback, failed):
                return
            delay = service.spec.update.delay
            if delay > 0:
                await asyncio.sleep(delay / 1e9)
        # The monitor period: the last batch must stay up this long before the update counts as done
        # (swarmkit's Monitor; docker's CLI waits for COMPLETED, so it must not come early).
        config = effective_rollback_config if rollback else effective_update_config
        monitor = config(service.spec).monitor / 1e9 if service is not None else 0
        failed = await self._watch_for_failure(updated, monitor)
        if failed is not None and service is not None and not await self._pause_unless_continuing(service, rollback, failed):
            return
        if self._current_service() is None:
            return
        if rollback:
            await self._set_status(UpdateState.ROLLBACK_COMPLETED, "rollback completed", completed=True)
        else:
            await self._set_status(UpdateState.COMPLETED, "update completed", completed=True)
        log.info("service %s updated to spec version %d", self.service_id, self.spec_version)

    async def _pause_unless_continuing(self, service: objects_pb2.Service, rollback: bool, failed: str) -> bool:
        """True to carry on past a failed task (failure action CONTINUE); else pause and return False."""
        if service.spec.update.failure_action == FailureAction.CONTINUE:
            return True
        state = UpdateState.ROLLBACK_PAUSED if rollback else UpdateState.PAUSED
        what = "rollback" if rollback else "update"
        await self._set_status(state, f"{what} paused due to failure or early termination of task {failed}")
        log.info("%s of service %s paused: task %s failed", what, self.service_id, failed)
        return False

    async def _watch_for_failure(self, task_ids: list[str], seconds: float) -> str | None:
        """Watch the given tasks for `seconds`; the ID of one that failed meanwhile, if any."""
        if seconds <= 0 or not task_ids:
            return None
        with self._store.watch(["task"]) as watch:
            try:
                async with asyncio.timeout(seconds):
                    while True:
                        view = self._store.view()
                        for task_id in task_ids:
                            task = view.get_task(task_id)
                            if task is not None and is_runnable(task) and is_finished(task):
                                return task_id
                        await watch.get()
                        watch.drain()
            except TimeoutError:
                return None

    def _current_service(self) -> objects_pb2.Service | None:
        service = self._store.view().get_service(self.service_id)
        if service is None or service.spec_version.index != self.spec_version:
            return None
        return service

    async def _replace(self, slots: list[int | str]) -> list[str]:
        def replace(tx: Transaction) -> list[str]:
            service = tx.get_service(self.service_id)
            if service is None:
                return []
            current = runnable_by_slot(tx.tasks_by_service(self.service_id))
            created = []
            for slot in slots:
                dirty = [task for task in current.get(slot, ()) if is_task_dirty(service, task)]
                if not dirty:
                    continue
                for task in dirty:
                    tx.update("task", retire(task))
                if isinstance(slot, int):
                    replacement = new_task(tx.get_cluster(), service, slot)
                else:
                    replacement = new_task(tx.get_cluster(), service, 0, slot)
                tx.create("task", replacement)
                created.append(replacement.id)
            return created

        while True:
            try:
                return await self._store.update(replace)
            except StoreError as error:
                log.debug("update of service %s raced another write, retrying: %s", self.service_id, error)

    async def _wait_until_running(self, task_ids: list[str]) -> str | None:
        """Wait for every task to run (or to stop mattering); returns the ID of one that failed, if any."""
        waiting = set(task_ids)
        with self._store.watch(["task"]) as watch:
            while True:
                view = self._store.view()
                for task_id in list(waiting):
                    task = view.get_task(task_id)
                    if task is None or not is_runnable(task):
                        waiting.discard(task_id)
                    elif is_finished(task):
                        return task_id
                    elif task.status.state == RUNNING:
                        waiting.discard(task_id)
                if not waiting:
                    return None
                await watch.get()
                watch.drain()

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

        while True:
            try:
                await self._store.update(write)
                return
            except StoreError as error:
                log.debug("status of service %s update raced another write, retrying: %s", self.service_id, error)


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
