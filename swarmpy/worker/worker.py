"""Worker: the set of tasks assigned to this node, each driven by its own TaskRunner.

Theory of operation. The session layer hands the Worker every AssignmentsMessage from the dispatcher:
COMPLETE replaces the whole set, INCREMENTAL applies UPDATE and REMOVE changes. A task new to the set
gets a TaskRunner; a known one gets the newer assignment (a new desired state); a task that leaves the set
is stopped and its container removed, after which its runner ends and the task is forgotten.

The set, with each task's latest observed status, is persisted atomically in the data dir before every
status is reported (persist first, then tell: a report the manager saw is never lost on our side). A
restarted daemon loads it, lets each runner find its task's container by label and carry on from the
recorded state (a RUNNING task's container is waited on, never started again), and removes any container
of this node whose task is no longer in the set.

The Worker owns its runners: start() and close() (or `async with`). close() cancels and awaits them; the
containers keep running for the next daemon to adopt. A runner that crashes is never left registered with
nothing driving it: its task is reported FAILED and the runner is driven again (see _drive).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from swarmpy.api import dispatcher_pb2, objects_pb2
from swarmpy.files import write_atomically
from swarmpy.worker.dependencies import TaskDependencies, is_dependency
from swarmpy.worker.executor.base import Executor, ExecutorError
from swarmpy.worker.network.node_networking import NodeNetworking
from swarmpy.worker.taskrunner import ReportCallback, TaskRunner

log = logging.getLogger(__name__)

ASSIGNMENTS_FILE = "assignments.pb"

# A crashed runner is run again after this backoff, doubling per crash: a bug that repeats must not spin.
CRASH_BACKOFF_MIN = 0.5
CRASH_BACKOFF_MAX = 30.0

_UPDATE = dispatcher_pb2.AssignmentChange.UPDATE
_REMOVE = dispatcher_pb2.AssignmentChange.REMOVE
_COMPLETE = dispatcher_pb2.AssignmentsMessage.COMPLETE


class Worker:
    def __init__(
        self,
        node_id: str,
        executor: Executor,
        report: ReportCallback,
        data_dir: str | os.PathLike[str],
        dependencies: TaskDependencies | None = None,
        networking: NodeNetworking | None = None,
    ) -> None:
        self.node_id = node_id
        # The node's data plane owner: told every network view, and asked for a pass when a task stops.
        self.networking = networking
        # The secrets and configs of the assignments: in memory only, never persisted with the tasks.
        self.dependencies = dependencies if dependencies is not None else TaskDependencies()
        self._executor = executor
        self._report = report
        self._path = Path(data_dir) / ASSIGNMENTS_FILE
        self._runners: dict[str, TaskRunner] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._persist_lock = asyncio.Lock()
        self._changes = 0  # count of _persist calls; each follows a change of the set
        self._persisted = 0  # the count the last completed write covered
        self._closed = False

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Load the persisted assignments, resume their runners, remove containers no task claims."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        for task in await asyncio.to_thread(self._load):
            self._assign(task)
        await self._remove_containers(claimed=self._runners, why="no task of the set claims it")

    async def close(self) -> None:
        """Stop driving tasks (their containers keep running) and wait for every runner to end."""
        self._closed = True
        running = list(self._running.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self._running.clear()

    async def close_and_remove_containers(self) -> None:
        """Leaving the swarm: stop driving tasks, then remove every container of this node by force (a
        kill, no stop grace), all at once, as docker's own leave does. The runners go first, so that none
        restarts, waits on or reports a container being removed."""
        await self.close()
        await self._remove_containers(claimed=(), why="leaving the swarm")

    # ---------------------------------------------------------------- assignments

    async def apply(self, message: dispatcher_pb2.AssignmentsMessage) -> None:
        """Apply one message of the dispatcher's Assignments stream."""
        if self._closed:
            raise RuntimeError(f"worker {self.node_id} is closed")
        if self.networking is not None and message.HasField("network_view"):
            # Before the tasks: a task of this message that starts now needs its endpoint in the view.
            self.networking.set_view(message.network_view)
        task_changes = [change for change in message.changes if not is_dependency(change)]
        dependency_changes = [change for change in message.changes if is_dependency(change)]
        if message.type == _COMPLETE:
            self.dependencies.replace(dependency_changes)
        else:  # the additions first: a task of this message may need them; removals are no longer needed
            for change in dependency_changes:
                self.dependencies.apply(change)
        if message.type == _COMPLETE:
            wanted = {change.task.id: change.task for change in task_changes if change.action == _UPDATE}
            for task_id in list(self._runners):
                if task_id not in wanted:
                    self._runners[task_id].request_removal()
            for task in wanted.values():
                self._assign(task)
        else:
            for change in task_changes:
                if change.action == _REMOVE:
                    runner = self._runners.get(change.task.id)
                    if runner is not None:
                        runner.request_removal()
                else:
                    self._assign(change.task)
        await self._persist()
        if message.type == _COMPLETE:
            await self._remove_containers(claimed=self._runners, why="no task of the set claims it")

    def tasks(self) -> dict[str, objects_pb2.Task]:
        """The tasks this node drives now, each with its latest observed status."""
        return {task_id: runner.task for task_id, runner in self._runners.items()}

    def status(self, task_id: str) -> objects_pb2.TaskStatus | None:
        runner = self._runners.get(task_id)
        return runner.status if runner is not None else None

    def _assign(self, task: objects_pb2.Task) -> None:
        if task.node_id and task.node_id != self.node_id:
            log.warning("worker %s: ignoring task %s assigned to node %s", self.node_id, task.id, task.node_id)
            return
        runner = self._runners.get(task.id)
        if runner is not None:
            runner.update(task)
            return
        runner = TaskRunner(task, self._executor.controller(task), self._on_status)
        self._runners[task.id] = runner
        self._running[task.id] = asyncio.create_task(self._drive(runner), name=f"task-runner-{task.id}")

    async def _drive(self, runner: TaskRunner) -> None:
        """The owned body of one runner: run it, then forget the task once its container is gone.

        A runner that crashes fails its task (so the manager replaces it) and is run again after a
        backoff: the failed task still needs its container removed when the manager says so."""
        crashes = 0
        while True:
            try:
                await runner.run()
                break
            except Exception as exc:
                crashes += 1
                log.exception("worker %s: the runner of task %s crashed", self.node_id, runner.task_id)
                try:
                    await runner.fail_after_crash(exc)
                except Exception:
                    log.exception("worker %s: cannot report task %s failed after its runner crashed",
                                  self.node_id, runner.task_id)
                await asyncio.sleep(min(CRASH_BACKOFF_MIN * 2 ** (crashes - 1), CRASH_BACKOFF_MAX))
        if self._runners.get(runner.task_id) is runner:
            del self._runners[runner.task_id]
            del self._running[runner.task_id]
        await self._persist()

    async def _on_status(self, task_id: str, status: objects_pb2.TaskStatus) -> None:
        if self.networking is not None and status.state > objects_pb2.RUNNING:
            self.networking.request()  # its container is gone or going: drop its listener and VIP table
        await self._persist()
        await self._report(task_id, status)

    # ---------------------------------------------------------------- containers without a task

    async def _remove_containers(self, claimed: Iterable[str], why: str) -> None:
        """Remove this node's containers whose task is not in `claimed`, all at once; a removal the engine
        refuses is logged and the others go on."""
        try:
            owned = await self._executor.owned_containers()
        except ExecutorError as exc:
            log.warning("worker %s: cannot list its containers: %s", self.node_id, exc)
            return
        claimed = set(claimed)
        doomed = {task_id: facts for task_id, facts in owned.items() if task_id not in claimed}
        for task_id, facts in doomed.items():
            log.info("worker %s: removing container %s of task %s (%s)", self.node_id, facts.container_id[:12], task_id, why)
        removals = await asyncio.gather(
            *(self._executor.remove_container(facts.container_id, task_id) for task_id, facts in doomed.items()),
            return_exceptions=True,
        )
        for outcome in removals:
            if isinstance(outcome, ExecutorError):
                log.warning("worker %s: %s", self.node_id, outcome)
            elif isinstance(outcome, BaseException):
                raise outcome

    # ---------------------------------------------------------------- persistence

    def _load(self) -> list[objects_pb2.Task]:
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            return []
        stored = dispatcher_pb2.AssignmentsMessage.FromString(data)
        return [change.task for change in stored.changes]

    async def _persist(self) -> None:
        """Return once the set as it is now is on disk.

        Serialised, and the snapshot taken under the lock, so an older set never overwrites a newer one.
        Group commit: a caller whose change a write begun after it already covers does not write again,
        so a burst of status changes (40 tasks starting at once) costs a few writes, not one each."""
        self._changes += 1
        mine = self._changes
        async with self._persist_lock:
            if self._persisted >= mine:
                return
            covered = self._changes  # every change made so far is in the snapshot below
            snapshot = dispatcher_pb2.AssignmentsMessage(type=_COMPLETE)
            for runner in self._runners.values():
                snapshot.changes.add(task=runner.task, action=_UPDATE)
            await asyncio.to_thread(write_atomically, self._path, snapshot.SerializeToString())
            self._persisted = covered
