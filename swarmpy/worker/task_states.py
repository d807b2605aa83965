"""The worker's task state machine: given what a task is, what it should be and what its container is,
say what to do next. No I/O here; the task runner does what this module says.

Rules (after swarmkit's agent/exec.Do):
- Observed state only moves forward: ACCEPTED → PREPARING → READY → STARTING → RUNNING, ending in
  COMPLETE, FAILED, SHUTDOWN or REJECTED. Earlier states (NEW, PENDING, ASSIGNED) are the manager's and
  only ever move to ACCEPTED here.
- The agent advances a task up to its desired state and then holds, except that three steps may carry it
  past the desired state, because they are the completion of work already begun: PREPARING→READY,
  STARTING→RUNNING and RUNNING→COMPLETE. (A task created with desired READY is prepared and then waits.)
- A desired state of SHUTDOWN or beyond stops the task wherever it is; REMOVE also removes the container,
  after which the task has nothing left on this node.
- An error before STARTING rejects the task (REJECTED: it never ran); at or after STARTING it failed.
- The container is the source of truth for what already happened: a daemon restarted while its tasks ran
  must adopt what it finds (never start a container twice, never prepare twice).

Most decisions are the table `_PAUSE_STEPS` / `_WORK_STEPS`; the container overrides and the stop rules
are code right below them, each with the reason it does not fit the table.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# The states are the proto enum's values, in swarmkit's order, so that `<` and `>=` compare progress.
from swarmpy.api.objects_pb2 import (
    ACCEPTED,
    ASSIGNED,
    COMPLETE,
    FAILED,
    NEW,
    PENDING,
    PREPARING,
    READY,
    REJECTED,
    REMOVE,
    RUNNING,
    SHUTDOWN,
    STARTING,
)


class Action(enum.Enum):
    """What the task runner must do next."""

    HOLD = "hold"  # nothing to do until the desired state changes
    ADVANCE = "advance"  # record `target` as the observed state; no container work
    PREPARE = "prepare"  # create the container, then READY
    START = "start"  # start the container, then RUNNING
    AWAIT_HEALTH = "await_health"  # the container runs: wait until its health check passes, then RUNNING
    WAIT = "wait"  # wait for the container to exit, then COMPLETE or FAILED by its exit code
    FINISH = "finish"  # the container already exited: COMPLETE or FAILED by its exit code, no waiting
    FAIL = "fail"  # the container is gone or inconsistent: fail the task with `error`
    SHUTDOWN = "shutdown"  # stop the container within the grace period, then SHUTDOWN
    REMOVE = "remove"  # remove the container (the task is being deleted)
    FORGET = "forget"  # desired REMOVE and no container left: the runner is done


class Container(enum.Enum):
    """What the engine says about the task's container."""

    ABSENT = "absent"
    CREATED = "created"  # created, never started
    RUNNING = "running"
    EXITED = "exited"  # started once and now stopped; never started again


class Health(enum.Enum):
    """The engine's verdict of the container's health check (NONE: it has none, from spec or image)."""

    NONE = "none"
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True)
class HostPort:
    """A container port bound on the host: the engine's choice where the spec's published port was 0."""

    target_port: int
    protocol: str  # "tcp", "udp", "sctp"
    published_port: int


@dataclass(frozen=True)
class ContainerFacts:
    condition: Container
    container_id: str = ""
    pid: int = 0
    exit_code: int = 0
    health: Health = Health.NONE
    host_ports: tuple[HostPort, ...] = ()
    dns_servers: tuple[str, ...] = ()  # a task on overlays: its --dns servers (container_config.DNS_SERVERS_LABEL)

    @property
    def exists(self) -> bool:
        return self.condition is not Container.ABSENT


NO_CONTAINER = ContainerFacts(Container.ABSENT)


@dataclass(frozen=True)
class Step:
    action: Action
    target: int | None = None  # the observed state to record when the action succeeds
    message: str = ""  # TaskStatus.message to record with it (docker's wording)
    error: str = ""  # for Action.FAIL


HOLD = Step(Action.HOLD)

# States where the task waits for its desired state to be ahead of it before moving on.
_PAUSE_STEPS: dict[int, Step] = {
    NEW: Step(Action.ADVANCE, ACCEPTED, "accepted"),
    PENDING: Step(Action.ADVANCE, ACCEPTED, "accepted"),
    ASSIGNED: Step(Action.ADVANCE, ACCEPTED, "accepted"),
    ACCEPTED: Step(Action.ADVANCE, PREPARING, "preparing"),
    READY: Step(Action.ADVANCE, STARTING, "starting"),
}

# States that are work in progress: they complete even past the desired state.
_WORK_STEPS: dict[int, Step] = {
    PREPARING: Step(Action.PREPARE, READY, "prepared"),
    STARTING: Step(Action.START, RUNNING, "started"),
    RUNNING: Step(Action.WAIT, COMPLETE, "finished"),
}


def is_terminal(observed: int) -> bool:
    """COMPLETE and beyond: the task will never run (again) on this node."""
    return observed >= COMPLETE


def is_stop(desired: int) -> bool:
    """Desired states that mean "stop wherever you are" (only SHUTDOWN and REMOVE are sent in practice)."""
    return desired >= SHUTDOWN


def failure_state(observed: int) -> int:
    """The state an error moves a task to: it never ran before STARTING (REJECTED), it did after (FAILED)."""
    return REJECTED if observed < STARTING else FAILED


def exit_outcome(exit_code: int) -> tuple[int, str]:
    """The terminal state and error text for a container that exited with `exit_code`."""
    if exit_code == 0:
        return COMPLETE, ""
    return FAILED, f"task: non-zero exit ({exit_code})"


def next_action(observed: int, desired: int, container: ContainerFacts) -> Step:
    """The next step for a task in `observed` state whose manager wants `desired`, given its container."""
    if is_terminal(observed):
        # Terminal tasks never run again; only deletion is left to do.
        if desired == REMOVE:
            return Step(Action.REMOVE) if container.exists else Step(Action.FORGET)
        return HOLD

    if is_stop(desired):
        # Stop even a task that never started: SHUTDOWN is the honest answer for "the manager stopped it".
        return Step(Action.SHUTDOWN, SHUTDOWN, "shutdown")

    work = _WORK_STEPS.get(observed)
    if work is not None:
        return _with_container(observed, work, container)

    pause = _PAUSE_STEPS.get(observed)
    if pause is not None and desired > observed:
        return pause
    return HOLD


def _with_container(observed: int, work: Step, container: ContainerFacts) -> Step:
    """Overrides of a work step by what the container shows already happened (adoption after restart,
    or a container that changed outside swarmpy). They depend on facts, not states, so no table row."""
    condition = container.condition
    if observed == PREPARING:
        if condition is Container.ABSENT:
            return work
        return Step(Action.ADVANCE, READY, "prepared")
    if observed == STARTING:
        if condition is Container.CREATED:
            return work
        if condition is Container.RUNNING:
            # Started before (a restart of the daemon, or a start that was waiting for health when the
            # runner was interrupted): only its health check, if it has one, is left to wait for.
            return Step(Action.AWAIT_HEALTH, RUNNING, "started")
        if condition is Container.EXITED:
            # It was started before and is then finished, never started again.
            return Step(Action.ADVANCE, RUNNING, "started")
        return Step(Action.FAIL, FAILED, "starting", "container vanished before it was started")
    # RUNNING
    if condition is Container.RUNNING:
        return work
    if condition is Container.EXITED:
        return Step(Action.FINISH, None, "finished")
    if condition is Container.CREATED:
        return Step(Action.FAIL, FAILED, "started", "container is no longer running and was never started")
    return Step(Action.FAIL, FAILED, "started", "container was removed outside swarmpy")
