"""The restart supervisor: replaces tasks that stopped while managers still wanted them running.

Theory of operation
-------------------
A task whose desired state is still RUNNING but whose worker reported it finished (COMPLETE, FAILED,
REJECTED, SHUTDOWN or ORPHANED) is the supervisor's. It asks the service's restart policy (defaults:
condition any, delay 5 s, unlimited attempts, no window):
- condition none never restarts; on-failure restarts anything but COMPLETE; any restarts everything;
- max attempts counts the earlier failures of the same slot with the same task spec, limited to those
  that finished within `window` before this one (a new task spec starts a fresh count). The slot's
  history in the store is the source; because the task reaper trims that history, an in-memory count of
  the restarts this supervisor made is consulted too, and the larger of the two wins.
The decision is a pure function of the task, its slot's history and the policy (`decide_restart`).

A restart happens `delay` after the failure was reported (measured from the task's status timestamp, so
a new leader does not start the wait over): in one transaction, the old task's desired state becomes
SHUTDOWN and a new task is created in the same slot (a global service's on the same node, if that node
still takes new tasks). Until then the finished task keeps desired RUNNING, so the orchestrators still
count its slot as occupied and do not fill it themselves. A task that must not be restarted is left so:
its slot stays occupied by a finished task, as `docker service ps` shows it.

The waits are tasks owned by `run`'s TaskGroup: stopping the supervisor cancels them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from swarmpy.api import objects_pb2
from swarmpy.manager.store import Change, MemoryStore, StoreError, Transaction, retry_conflicts

from .common import (
    COMPLETE,
    SlotKey,
    is_finished,
    is_global,
    is_replicated,
    is_runnable,
    new_task,
    next_events,
    node_takes_new_tasks,
    retire,
    slot_key,
)

log = logging.getLogger(__name__)

Condition = objects_pb2.RestartPolicy.Condition
DEFAULT_RESTART_DELAY_NS = 5_000_000_000


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    condition: int
    delay_ns: int
    max_attempts: int  # 0: unlimited
    window_ns: int  # 0: every earlier failure counts


def effective_policy(spec: objects_pb2.TaskSpec) -> RestartPolicy:
    """The task spec's restart policy with swarmkit's defaults where it says nothing."""
    if not spec.HasField("restart"):
        return RestartPolicy(Condition.ANY, DEFAULT_RESTART_DELAY_NS, 0, 0)
    policy = spec.restart
    delay = policy.delay if policy.HasField("delay") else DEFAULT_RESTART_DELAY_NS
    return RestartPolicy(policy.condition, max(0, delay), policy.max_attempts, max(0, policy.window))


@dataclass(frozen=True, slots=True)
class RestartDecision:
    restart: bool
    at_ns: int  # wall-clock time to restart at (meaningful when restart)
    reason: str


def condition_allows(condition: int, task: objects_pb2.Task) -> bool:
    if condition == Condition.NONE:
        return False
    if condition == Condition.ON_FAILURE:
        return task.status.state != COMPLETE
    return True


def earlier_failures(task: objects_pb2.Task, slot_history: Iterable[objects_pb2.Task], window_ns: int) -> int:
    """How many other tasks of the slot, made from the same spec, finished within the window before this one."""
    failed_at = task.status.timestamp
    count = 0
    for other in slot_history:
        if other.id == task.id or not is_finished(other) or other.spec != task.spec:
            continue
        if other.status.timestamp > failed_at:
            continue
        if window_ns and other.status.timestamp < failed_at - window_ns:
            continue
        count += 1
    return count


def decide_restart(
    task: objects_pb2.Task, slot_history: Iterable[objects_pb2.Task], remembered_restarts: int = 0
) -> RestartDecision:
    """Should this finished task be replaced, and when? Pure: no clock, no store."""
    policy = effective_policy(task.spec)
    if not condition_allows(policy.condition, task):
        state = objects_pb2.TaskState.Name(task.status.state)
        return RestartDecision(False, 0, f"restart condition does not apply to a {state.lower()} task")
    if policy.max_attempts:
        attempts = max(earlier_failures(task, slot_history, policy.window_ns), remembered_restarts)
        if attempts >= policy.max_attempts:
            return RestartDecision(False, 0, f"restart attempts exhausted ({attempts} of {policy.max_attempts})")
    return RestartDecision(True, task.status.timestamp + policy.delay_ns, "restart")


def wants_restart_decision(task: objects_pb2.Task) -> bool:
    """The task stopped on its own while managers still want it running."""
    return is_runnable(task) and is_finished(task)


class RestartSupervisor:
    """Restarts finished tasks of replicated and global services according to their restart policy.

    Reads tasks, services, nodes and the cluster; writes the old task (desired SHUTDOWN) and creates its
    replacement.
    """

    def __init__(self, store: MemoryStore, *, clock: Callable[[], int] = time.time_ns) -> None:
        self._store = store
        self._clock = clock
        self._waits: dict[str, asyncio.Task[None]] = {}
        # slot -> wall-clock times of the failures this supervisor restarted, per task spec
        self._restarts: dict[SlotKey, deque[tuple[bytes, int]]] = defaultdict(lambda: deque(maxlen=64))
        self._group: asyncio.TaskGroup | None = None

    async def run(self) -> None:
        view, watch = self._store.view_and_watch(["task", "service"])
        with watch:
            async with asyncio.TaskGroup() as group:
                self._group = group
                try:
                    for task in view.tasks():
                        self._consider(task)
                    while True:
                        for event in await next_events(watch):
                            if not isinstance(event, Change):
                                continue
                            if event.kind == "task" and event.new is not None:
                                self._consider(event.new)
                            elif event.kind == "service" and event.action == "remove":
                                self._forget_service(event.old.id)
                finally:
                    self._group = None

    def _consider(self, task: objects_pb2.Task) -> None:
        if not wants_restart_decision(task) or task.id in self._waits:
            return
        view = self._store.view()
        service = view.get_service(task.service_id)
        if service is None:
            return
        if service.spec.WhichOneof("mode") in ("replicated_job", "global_job"):
            if task.status.state == objects_pb2.COMPLETE:
                return  # a job's task that completed is done, whatever the restart condition says
        elif not (is_replicated(service) or is_global(service)):
            return
        history = view.tasks_by_service(task.service_id)
        key = slot_key(task)
        decision = decide_restart(
            task, (t for t in history if slot_key(t) == key), self._remembered(task, effective_policy(task.spec))
        )
        if not decision.restart:
            log.debug("task %s (%s) is not restarted: %s", task.id, task.annotations.name, decision.reason)
            return
        delay_s = max(0, decision.at_ns - self._clock()) / 1e9
        assert self._group is not None
        self._waits[task.id] = self._group.create_task(self._restart_after(task.id, delay_s))

    def _remembered(self, task: objects_pb2.Task, policy: RestartPolicy) -> int:
        spec = task.spec.SerializeToString(deterministic=True)
        failed_at = task.status.timestamp
        return sum(
            1
            for remembered_spec, at in self._restarts.get(slot_key(task), ())
            if remembered_spec == spec and at <= failed_at and not (policy.window_ns and at < failed_at - policy.window_ns)
        )

    def _forget_service(self, service_id: str) -> None:
        for key in [key for key in self._restarts if key[0] == service_id]:
            del self._restarts[key]

    async def _restart_after(self, task_id: str, delay_s: float) -> None:
        try:
            await asyncio.sleep(delay_s)
            try:
                restarted = await retry_conflicts(
                    lambda: self._store.update(lambda tx: self._restart(tx, task_id)), what=f"restart of task {task_id}"
                )
            except StoreError as error:
                log.warning("could not restart task %s: %s", task_id, error)
                return
            if restarted is not None:
                self._restarts[slot_key(restarted)].append(
                    (restarted.spec.SerializeToString(deterministic=True), restarted.status.timestamp)
                )
        finally:
            self._waits.pop(task_id, None)

    def _restart(self, tx: Transaction, task_id: str) -> objects_pb2.Task | None:
        """Retire the finished task and create its successor; returns the retired task, or None if moot."""
        task = tx.get_task(task_id)
        if task is None or not wants_restart_decision(task):
            return None  # someone else (scale-down, update, node replacement) already dealt with it
        service = tx.get_service(task.service_id)
        if service is None:
            return None
        tx.update("task", retire(task))
        if task.slot:
            tx.create("task", new_task(tx.get_cluster(), service, task.slot))
        else:
            node = tx.get_node(task.node_id)
            if node is not None and node_takes_new_tasks(node):
                tx.create("task", new_task(tx.get_cluster(), service, 0, task.node_id))
        log.info("restarting task %s (%s)", task.id, task.annotations.name)
        return task
