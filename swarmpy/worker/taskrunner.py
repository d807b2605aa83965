"""TaskRunner: one task's life on this node, from its assignment until its container is removed.

Theory of operation. The runner loops: inspect the container, ask swarmpy.worker.task_states what to do
given the observed state, the desired state and the container, do it through the Controller, and report
the resulting TaskStatus through the async `report` callback (in the order the states happen; observed
state only moves forward). When there is nothing to do (HOLD) it sleeps until the manager changes the
desired state (update()). While the container starts (which, with a health check, lasts until it is healthy) and
while it runs, it waits for that *or* for a new desired state, whichever comes first, so a SHUTDOWN takes
effect at once. A container found unhealthy is stopped and fails the task with swarm's
"task: non-zero exit (N): dockerexec: unhealthy container".

Errors of the container engine are the task's: before STARTING they reject it, after they fail it, with
the error text in TaskStatus.err. A container that exits with 0 completes the task; any other code, or a
kill from outside, fails it with "task: non-zero exit (N)". Nothing here ever restarts a container:
restarting is the manager's job, and it does so with a new task.

A runner ends (run() returns) once its desired state is REMOVE and the container is gone. The owner (the
Worker) cancels it on close; the container then keeps running, for the next daemon to adopt. If run()
raises anything else (a bug, never an engine error: those are the task's), the owner calls
fail_after_crash(): the container is killed and the task reported FAILED with the error, so the manager
replaces it; the owner then runs the runner again, which holds the terminal task until it is removed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from swarmpy.aio import unless_set
from swarmpy.api import objects_pb2
from swarmpy.worker import task_states
from swarmpy.worker.executor import container_config
from swarmpy.worker.executor.base import ContainerExited, Controller, EngineError, ExecutorError
from swarmpy.worker.task_states import Action, ContainerFacts, Step

log = logging.getLogger(__name__)

ReportCallback = Callable[[str, objects_pb2.TaskStatus], Awaitable[None]]

INSPECT_RETRY_MIN = 0.1
INSPECT_RETRY_MAX = 5.0

# TaskStatus.message when a step fails, after the work the step was doing.
_FAILED_DOING = {Action.PREPARE: "preparing", Action.START: "starting", Action.AWAIT_HEALTH: "starting",
                 Action.WAIT: "started"}


class TaskRunner:
    def __init__(self, task: objects_pb2.Task, controller: Controller, report: ReportCallback) -> None:
        self._task = objects_pb2.Task()
        self._task.CopyFrom(task)
        self._controller = controller
        self._report = report
        self._desired_changed = asyncio.Event()

    @property
    def task_id(self) -> str:
        return self._task.id

    @property
    def task(self) -> objects_pb2.Task:
        """The latest assignment, with the latest observed status (a copy)."""
        copy = objects_pb2.Task()
        copy.CopyFrom(self._task)
        return copy

    @property
    def status(self) -> objects_pb2.TaskStatus:
        copy = objects_pb2.TaskStatus()
        copy.CopyFrom(self._task.status)
        return copy

    def update(self, task: objects_pb2.Task) -> None:
        """Take a newer assignment of the same task: a new desired state (specs of tasks never change)."""
        if task.id != self._task.id:
            raise ValueError(f"task runner for {self._task.id} was given task {task.id}")
        observed = self._task.status
        changed = task.desired_state != self._task.desired_state
        self._task.CopyFrom(task)
        if observed.state >= task.status.state:
            # Observed state only moves forward: the manager's copy may lag behind what we reported.
            self._task.status.CopyFrom(observed)
        if changed:
            self._desired_changed.set()

    def request_removal(self) -> None:
        """The task is no longer assigned here: stop and remove its container, then end."""
        if self._task.desired_state != task_states.REMOVE:
            self._task.desired_state = task_states.REMOVE
            self._desired_changed.set()

    async def run(self) -> None:
        retry = INSPECT_RETRY_MIN
        while True:
            self._desired_changed.clear()
            try:
                facts = await self._controller.inspect()
            except EngineError as exc:
                # The engine is unreachable or confused; that says nothing about the task yet.
                log.warning("task %s: cannot inspect its container (%s); retrying in %.1fs", self.task_id, exc, retry)
                await asyncio.sleep(retry)
                retry = min(retry * 2, INSPECT_RETRY_MAX)
                continue
            retry = INSPECT_RETRY_MIN
            step = task_states.next_action(self._task.status.state, self._task.desired_state, facts)
            if step.action is Action.FORGET:
                return
            if step.action is Action.HOLD:
                await self._desired_changed.wait()
                continue
            await self._do(step, facts)

    async def fail_after_crash(self, error: Exception) -> None:
        """run() raised `error`: kill the container and report the task failed, unless it already ended.

        Killing first means a replacement never runs beside a container nobody drives any more."""
        if task_states.is_terminal(self._task.status.state):
            return
        try:
            await self._controller.terminate()
        except Exception as exc:  # best effort: the report below matters more
            log.warning("task %s: cannot kill the container of its crashed runner: %s", self.task_id, exc)
        try:
            facts = await self._controller.inspect()
        except Exception:
            facts = task_states.NO_CONTAINER
        await self._record(
            task_states.failure_state(self._task.status.state),
            "task runner crashed",
            facts,
            err=f"task runner crashed: {type(error).__name__}: {error}",
        )

    async def _do(self, step: Step, facts: ContainerFacts) -> None:
        action = step.action
        if action is Action.ADVANCE:
            await self._record(step.target, step.message, facts)
        elif action is Action.FAIL:
            await self._record(step.target, step.message, facts, err=step.error)
        elif action is Action.FINISH:
            state, err = task_states.exit_outcome(facts.exit_code)
            await self._record(state, step.message, facts, err=err)
        elif action is Action.SHUTDOWN:
            await self._shutdown(step)
        elif action is Action.REMOVE:
            await self._remove()
        else:
            await self._work(step)

    async def _work(self, step: Step) -> None:
        """PREPARE, START, AWAIT_HEALTH or WAIT: container work whose failure rejects or fails the task."""
        try:
            if step.action is Action.PREPARE:
                await self._controller.prepare()
            elif not await self._unless_desired_changes(self._container_work(step.action)):
                return  # the desired state changed first (a start may wait long for health): decide again
        except ContainerExited as exc:
            await self._fail(step, exc, message="finished" if step.action is Action.WAIT else "")
            return
        except ExecutorError as exc:
            await self._fail(step, exc)
            return
        await self._record(step.target, step.message, await self._controller.inspect())

    def _container_work(self, action: Action) -> Awaitable[object]:
        if action is Action.START:
            return self._controller.start()
        if action is Action.AWAIT_HEALTH:
            return self._controller.until_healthy()
        return self._controller.wait()

    async def _unless_desired_changes(self, work: Awaitable[object]) -> bool:
        """Do `work` (start, or wait for the container to stop); False if the desired state changed first."""
        raced = await unless_set(work, self._desired_changed)  # raises ContainerExited / ContainerVanished / EngineError
        return raced.finished

    async def _shutdown(self, step: Step) -> None:
        try:
            await self._controller.shutdown()
        except ExecutorError as exc:
            await self._fail(step, exc, message="shutdown")
            return
        await self._record(step.target, step.message, await self._controller.inspect())

    async def _remove(self) -> None:
        try:
            await self._controller.remove()
        except ExecutorError as exc:
            # Leave it for the next pass (or the worker's cleanup of unassigned containers).
            log.warning("task %s: cannot remove its container: %s", self.task_id, exc)
            await asyncio.sleep(INSPECT_RETRY_MAX)

    async def _fail(self, step: Step, exc: ExecutorError, message: str = "") -> None:
        observed = self._task.status.state
        log.debug("task %s: %s failed: %s", self.task_id, step.action.value, exc)
        try:
            facts = await self._controller.inspect()
        except ExecutorError:
            facts = task_states.NO_CONTAINER
        await self._record(
            task_states.failure_state(observed),
            message or _FAILED_DOING.get(step.action, step.message),
            facts,
            err=str(exc),
        )

    async def _record(self, state: int | None, message: str, facts: ContainerFacts, err: str = "") -> None:
        assert state is not None
        if state < self._task.status.state:
            raise AssertionError(f"task {self.task_id}: observed state would move back to {state}")
        status = objects_pb2.TaskStatus(timestamp=time.time_ns(), state=state, message=message, err=err)
        if facts.exists:
            status.container_status.container_id = facts.container_id
            status.container_status.pid = facts.pid
            status.container_status.exit_code = facts.exit_code
            status.port_status.ports.extend(container_config.port_status(self._task, facts.host_ports))
        self._task.status.CopyFrom(status)
        log.debug("task %s: %s (%s)%s", self.task_id, objects_pb2.TaskState.Name(state), message, f": {err}" if err else "")
        await self._report(self.task_id, self.status)
