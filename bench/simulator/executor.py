"""SimulatedExecutorWorker: a node's task set, walked through the real task state machine with no containers.

Theory of operation
-------------------
The Agent hands this object every AssignmentsMessage, as it would the real Worker
(swarmpy.worker.worker.Worker): COMPLETE replaces the set, INCREMENTAL applies UPDATE and REMOVE. Each
task gets one coroutine (a `_SimulatedTask`) that loops exactly like the real TaskRunner: ask
`swarmpy.worker.task_states.next_action(observed, desired, container)` what to do, do it against a
*simulated* container (a ContainerFacts value that this module changes after a configurable delay), and
report the resulting TaskStatus through the Agent's `TaskStatusReports.report`. So the states a manager
sees, their order, and the REJECTED/FAILED distinctions are the real ones; only the container is fake.

What a real worker does and this one deliberately does not: persist its assignments (the real Worker
fsyncs the set before every report; 1,000 simulated nodes on one disk would measure the disk, not the
manager) and talk to Docker. Failures are drawn from a seeded random generator at the configured rates.

Every task coroutine is owned by the TaskGroup of `run()`; `apply` only schedules into it, so a
simulator bug surfaces as the node's failure, never as a forgotten task.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from swarmpy.api import dispatcher_pb2, objects_pb2
from swarmpy.worker import task_states
from swarmpy.worker.task_states import Action, Container, ContainerFacts, Step

log = logging.getLogger(__name__)

ReportCallback = Callable[[str, objects_pb2.TaskStatus], Awaitable[None]]

_UPDATE = dispatcher_pb2.AssignmentChange.UPDATE
_REMOVE = dispatcher_pb2.AssignmentChange.REMOVE
_COMPLETE = dispatcher_pb2.AssignmentsMessage.COMPLETE

# Exit code a simulated crash reports; docker's SIGKILL code, so it reads as "killed".
CRASH_EXIT_CODE = 137
_container_numbers = itertools.count(1)


@dataclass(frozen=True)
class SimulationProfile:
    """How simulated containers behave. Delays in seconds; rates are probabilities per attempt."""

    prepare_delay: float = 0.0  # "create the container"
    start_delay: float = 0.0  # "start the container"
    stop_delay: float = 0.0  # "stop within the grace period"
    reject_rate: float = 0.0  # prepare fails: the task is REJECTED (it never ran)
    start_failure_rate: float = 0.0  # start fails: the task FAILED
    mean_lifetime: float | None = None  # None: runs until stopped; else exits (FAILED) after ~exp(mean)
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("reject_rate", "start_failure_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"simulation profile: {name} must be within [0, 1], got {rate}")
        for name in ("prepare_delay", "start_delay", "stop_delay"):
            if getattr(self, name) < 0:
                raise ValueError(f"simulation profile: {name} must not be negative, got {getattr(self, name)}")


async def _pause(seconds: float) -> None:
    # A zero delay does not yield: a burst of assignments then turns into one burst of reports.
    if seconds > 0:
        await asyncio.sleep(seconds)


class _SimulatedTask:
    """One task on a simulated node: the TaskRunner's loop over task_states, with a fake container."""

    def __init__(self, task: objects_pb2.Task, profile: SimulationProfile, rng: random.Random, report: ReportCallback) -> None:
        self.task = objects_pb2.Task()
        self.task.CopyFrom(task)
        self.container = task_states.NO_CONTAINER
        self._profile = profile
        self._rng = rng
        self._report = report
        self._desired_changed = asyncio.Event()

    def update(self, task: objects_pb2.Task) -> None:
        observed = objects_pb2.TaskStatus()
        observed.CopyFrom(self.task.status)
        changed = task.desired_state != self.task.desired_state
        self.task.CopyFrom(task)
        if observed.state >= task.status.state:
            self.task.status.CopyFrom(observed)  # the manager's copy may lag behind what we reported
        if changed:
            self._desired_changed.set()

    def request_removal(self) -> None:
        if self.task.desired_state != task_states.REMOVE:
            self.task.desired_state = task_states.REMOVE
            self._desired_changed.set()

    async def run(self) -> None:
        """Drive the task until it is removed (FORGET)."""
        while True:
            self._desired_changed.clear()
            step = task_states.next_action(self.task.status.state, self.task.desired_state, self.container)
            if step.action is Action.FORGET:
                return
            if step.action is Action.HOLD:
                await self._desired_changed.wait()
                continue
            await self._do(step)

    async def _do(self, step: Step) -> None:
        action = step.action
        observed = self.task.status.state
        if action is Action.ADVANCE:
            await self._record(step.target, step.message)
        elif action is Action.FAIL:
            await self._record(step.target, step.message, err=step.error)
        elif action is Action.FINISH:
            state, err = task_states.exit_outcome(self.container.exit_code)
            await self._record(state, step.message, err=err)
        elif action is Action.PREPARE:
            await _pause(self._profile.prepare_delay)
            if self._rng.random() < self._profile.reject_rate:
                await self._record(task_states.failure_state(observed), "preparing", err="simulated: preparing the container failed")
                return
            self.container = ContainerFacts(Container.CREATED, container_id=f"sim{next(_container_numbers):021x}")
            await self._record(step.target, step.message)
        elif action is Action.START:
            await _pause(self._profile.start_delay)
            if self._rng.random() < self._profile.start_failure_rate:
                self.container = ContainerFacts(Container.EXITED, self.container.container_id, exit_code=1)
                await self._record(task_states.failure_state(observed), "starting", err="simulated: starting the container failed")
                return
            self.container = ContainerFacts(Container.RUNNING, self.container.container_id, pid=1)
            await self._record(step.target, step.message)
        elif action is Action.WAIT:
            if await self._run_until_exit_or_desired_change():
                state, err = task_states.exit_outcome(self.container.exit_code)
                await self._record(state, "finished", err=err)
        elif action is Action.SHUTDOWN:
            if self.container.condition is Container.RUNNING:
                await _pause(self._profile.stop_delay)
                self.container = ContainerFacts(Container.EXITED, self.container.container_id, exit_code=0)
            await self._record(step.target, step.message)
        elif action is Action.REMOVE:
            self.container = task_states.NO_CONTAINER
        else:
            raise AssertionError(f"simulated task {self.task.id}: the state machine asked for {action}, unknown here")

    async def _run_until_exit_or_desired_change(self) -> bool:
        """True if the simulated container exited on its own; False if the desired state changed first."""
        if self._profile.mean_lifetime is None:
            await self._desired_changed.wait()
            return False
        lifetime = self._rng.expovariate(1.0 / self._profile.mean_lifetime)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._desired_changed.wait(), lifetime)
            return False
        self.container = ContainerFacts(Container.EXITED, self.container.container_id, exit_code=CRASH_EXIT_CODE)
        return True

    async def _record(self, state: int | None, message: str, err: str = "") -> None:
        assert state is not None, f"simulated task {self.task.id}: a step without a target state"
        if state < self.task.status.state:
            raise AssertionError(f"simulated task {self.task.id}: observed state would move back to {state}")
        status = objects_pb2.TaskStatus(timestamp=time.time_ns(), state=state, message=message, err=err)
        if self.container.exists:
            status.container_status.container_id = self.container.container_id
            status.container_status.pid = self.container.pid
            status.container_status.exit_code = self.container.exit_code
        self.task.status.CopyFrom(status)
        await self._report(self.task.id, status)


class SimulatedExecutorWorker:
    """A simulated node's Worker: what the Agent feeds (`apply`, `tasks`), with no containers behind it."""

    def __init__(self, node_id: str, report: ReportCallback, profile: SimulationProfile | None = None) -> None:
        self.node_id = node_id
        self._report = report
        self._profile = profile or SimulationProfile()
        seed = self._profile.seed
        self._rng = random.Random(None if seed is None else f"{seed}:{node_id}")
        self._tasks: dict[str, _SimulatedTask] = {}
        self._group: asyncio.TaskGroup | None = None
        self._ready = asyncio.Event()

    async def run(self) -> None:
        """Own every task coroutine until cancelled."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            self._ready.set()
            try:
                await asyncio.Event().wait()  # until cancelled; the group then cancels the tasks
            finally:
                self._group = None

    async def apply(self, message: dispatcher_pb2.AssignmentsMessage) -> None:
        await self._ready.wait()
        if message.type == _COMPLETE:
            wanted = {change.task.id: change.task for change in message.changes if change.action == _UPDATE}
            for task_id, simulated in self._tasks.items():
                if task_id not in wanted:
                    simulated.request_removal()
            for task in wanted.values():
                self._assign(task)
            return
        for change in message.changes:
            if change.action == _REMOVE:
                simulated = self._tasks.get(change.task.id)
                if simulated is not None:
                    simulated.request_removal()
            else:
                self._assign(change.task)

    def tasks(self) -> dict[str, objects_pb2.Task]:
        copies = {}
        for task_id, simulated in self._tasks.items():
            copy = objects_pb2.Task()
            copy.CopyFrom(simulated.task)
            copies[task_id] = copy
        return copies

    def states(self) -> dict[str, int]:
        """Observed state of each task held here (cheap: no copies)."""
        return {task_id: simulated.task.status.state for task_id, simulated in self._tasks.items()}

    def _assign(self, task: objects_pb2.Task) -> None:
        if task.node_id and task.node_id != self.node_id:
            log.warning("simulated node %s: ignoring task %s assigned to node %s", self.node_id, task.id, task.node_id)
            return
        simulated = self._tasks.get(task.id)
        if simulated is not None:
            simulated.update(task)
            return
        if self._group is None:
            raise RuntimeError(f"simulated node {self.node_id}: got task {task.id} while its worker is not running")
        simulated = _SimulatedTask(task, self._profile, self._rng, self._report)
        self._tasks[task.id] = simulated
        self._group.create_task(self._drive(simulated), name=f"simulated-task-{task.id}")

    async def _drive(self, simulated: _SimulatedTask) -> None:
        await simulated.run()
        if self._tasks.get(simulated.task.id) is simulated:
            del self._tasks[simulated.task.id]
