"""Task status reports from workers, collected and written to the store in batches.

Theory of operation: every UpdateTaskStatus call adds its reports to one pending map (latest report per
task wins, unless it is behind an earlier one) and waits. A flush writes the whole map through one
`store.batch` (one proposal per 200 changes instead of one per report), `flush_interval` (100 ms, as
swarmkit's) after the end of the previous flush at the earliest, or at once when `max_pending` (10,000)
reports are waiting. So a report after a quiet spell is written without waiting, and under a steady
stream of reports the flushes come as often as before, each holding what arrived since the last. (The
interval used to start with the first report after a flush: every report waited up to 100 ms whatever
the load, and a task's RUNNING often twice, once behind its STARTING, whose call the agent must see
answered before it sends the next status of that task, and once for itself.) The waiting calls return
when the flush that holds their reports has been applied, so an agent that gets an answer may forget
the reports; a flush that fails (leadership lost) fails those calls, and the agent sends the reports
again.
"""

from __future__ import annotations

import asyncio
import logging
import math

from swarmpy.api import objects_pb2
from swarmpy.manager.store import Conflict
from swarmpy.manager.store.memory import Batch, MemoryStore, clone

from .errors import DispatcherStopped
from .rules import accepts_status

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.1
MAX_PENDING = 10_000
CONFLICT_RETRIES = 5


class TaskStatusBatcher:
    def __init__(self, store: MemoryStore, flush_interval: float = FLUSH_INTERVAL, max_pending: int = MAX_PENDING) -> None:
        self._store = store
        self._flush_interval = flush_interval
        self._max_pending = max_pending
        self._pending: dict[str, tuple[str, objects_pb2.TaskStatus]] = {}  # task ID -> (reporting node, status)
        self._waiters: list[asyncio.Future[None]] = []
        self._has_pending = asyncio.Event()
        self._full = asyncio.Event()
        self._running = False

    async def submit(self, node_id: str, updates: list[tuple[str, objects_pb2.TaskStatus]]) -> None:
        """Queue `node_id`'s reports and return once they are written (or judged not worth writing)."""
        if not self._running:
            raise DispatcherStopped()
        for task_id, status in updates:
            earlier = self._pending.get(task_id)
            if earlier is not None and status.state < earlier[1].state:
                continue
            self._pending[task_id] = (node_id, status)
        done = asyncio.get_running_loop().create_future()
        self._waiters.append(done)
        self._has_pending.set()
        if len(self._pending) >= self._max_pending:
            self._full.set()
        await done

    async def run(self) -> None:
        self._running = True
        loop = asyncio.get_running_loop()
        last_flush = -math.inf
        try:
            while True:
                await self._has_pending.wait()
                delay = last_flush + self._flush_interval - loop.time()
                if delay > 0 and not self._full.is_set():
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation racing its timeout.
                    try:
                        async with asyncio.timeout(delay):
                            await self._full.wait()
                    except TimeoutError:
                        pass
                await self._flush()
                last_flush = loop.time()
        finally:
            self._running = False
            self._fail_waiters(self._waiters, DispatcherStopped())
            self._waiters = []
            self._pending = {}

    async def _flush(self) -> None:
        pending, waiters = self._pending, self._waiters
        self._pending, self._waiters = {}, []
        self._has_pending.clear()
        self._full.clear()
        try:
            await self._write(pending)
        except asyncio.CancelledError:
            self._fail_waiters(waiters, DispatcherStopped())
            raise
        except Exception as exc:  # Raft refused (not leader, leadership lost): the callers must retry elsewhere
            log.warning("writing %d task status reports failed: %s", len(pending), exc)
            self._fail_waiters(waiters, exc)
            return
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _write(self, pending: dict[str, tuple[str, objects_pb2.TaskStatus]]) -> None:
        def stage(batch: Batch) -> None:
            for task_id, (node_id, status) in pending.items():
                task = batch.get_task(task_id)
                if task is None:
                    log.debug("status report for task %s from node %s: the task is gone", task_id, node_id)
                    continue
                if task.node_id != node_id:
                    log.warning("node %s reported on task %s, which is assigned to node %r: ignored", node_id, task_id, task.node_id)
                    continue
                if not accepts_status(task.status, status):
                    continue
                updated = clone(task)
                updated.status.CopyFrom(status)
                batch.update("task", updated)

        for attempt in range(CONFLICT_RETRIES):
            try:
                await self._store.batch(stage)
                return
            except Conflict as exc:
                # Another writer (the orchestrator changing desired state) won a race; re-read and retry.
                # Reports already written are skipped on the retry as no longer new.
                log.debug("status batch conflict (attempt %d): %s", attempt + 1, exc)
        await self._store.batch(stage)

    @staticmethod
    def _fail_waiters(waiters: list[asyncio.Future[None]], exc: BaseException) -> None:
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(exc)
