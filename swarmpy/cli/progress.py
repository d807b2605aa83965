"""The convergence model behind `service create/update/scale` without -d, after docker's
cli/command/service/progress.

Each poll hands the tracker one snapshot (the service, its up-to-date tasks, the nodes, the time);
it answers with the progress lines to (re)draw, each keyed by a line id ("overall progress", "1/3",
a node id, "verify"), and whether the service has converged or failed. No I/O and no clock here:
the poll loop and the renderer live elsewhere, so every transition can be tested from snapshots.

Replicated services are tracked per slot and global ones per node. When a slot has several tasks the
one with the lowest desired state wins (a restart's replacement over the task being shut down), and
tasks on nodes that are down are ignored. Once every tracked task runs, the tracker waits the
update monitor period (5 s unless the spec says otherwise) before declaring convergence, and starts
over if a task stops running meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swarmpy.api import objects_pb2
from swarmpy.engineapi.convert.to_json import task_state_word
from swarmpy.cli.table import truncate_id
from swarmpy.units import SECOND

TaskState = objects_pb2.TaskState

# docker's stateToProgress / numberedStates; ALLOCATED (2) has no counterpart in swarmpy.
STATE_STEP = {
    TaskState.NEW: 1,
    TaskState.PENDING: 3,
    TaskState.ASSIGNED: 4,
    TaskState.ACCEPTED: 5,
    TaskState.PREPARING: 6,
    TaskState.READY: 7,
    TaskState.STARTING: 8,
    TaskState.RUNNING: 9,
    TaskState.COMPLETE: 10,
    TaskState.SHUTDOWN: 11,
    TaskState.FAILED: 12,
    TaskState.REJECTED: 13,
}
RUNNING_STEP = 9
MAX_PROGRESS_BARS = 20
DEFAULT_MONITOR = 5 * SECOND
_STATE_WIDTH = len("preparing")
_BAR_WIDTH = 50
_MAX_ERROR_LENGTH = 75


def progress_bar(step: int, total: int = RUNNING_STEP) -> str:
    filled = min(_BAR_WIDTH, int(step / total * 100) // 2)
    return "[" + "=" * filled + ">" + " " * (_BAR_WIDTH - filled) + "]"


def task_progress_text(task: objects_pb2.Task) -> str | None:
    """The text of a task's line, or None when it has nothing to show (a terminal state, no error)."""
    if task.status.err:
        message = task.status.err.replace("\n", " ")
        return message[: _MAX_ERROR_LENGTH - 1] + "\u2026" if len(message) > _MAX_ERROR_LENGTH else message
    if _is_terminal(task.desired_state) or _is_terminal(task.status.state):
        return None
    state = task_state_word(task.status.state)
    return f"{state:<{_STATE_WIDTH}} {progress_bar(STATE_STEP[task.status.state])}"


def _is_terminal(state: int) -> bool:
    return STATE_STEP.get(state, 0) > RUNNING_STEP


def _is_running(task: objects_pb2.Task) -> bool:
    return not _is_terminal(task.desired_state) and task.status.state == TaskState.RUNNING


def _shown_task_per_key(tasks, key) -> dict:
    """For each key, the task docker's progress shows: the lowest desired state (the replacement over the
    task being shut down), then, between equals (start-first updates), the less advanced observed state."""
    chosen: dict = {}
    for task in tasks:
        desired, observed = STATE_STEP.get(task.desired_state, 0), STATE_STEP.get(task.status.state, 0)
        if not desired or not observed:
            continue
        existing = chosen.get(key(task))
        if existing is not None:
            existing_desired = STATE_STEP[existing.desired_state]
            if existing_desired < desired:
                continue
            if existing_desired == desired and STATE_STEP[existing.status.state] <= observed:
                continue
        chosen[key(task)] = task
    return chosen


def tasks_by_slot(tasks, active_nodes: set[str]) -> dict[int, objects_pb2.Task]:
    on_active_nodes = (task for task in tasks if not task.node_id or task.node_id in active_nodes)
    return _shown_task_per_key(on_active_nodes, lambda task: task.slot)


def tasks_by_node(tasks) -> dict[str, objects_pb2.Task]:
    return _shown_task_per_key(tasks, lambda task: task.node_id)


class ProgressFailed(Exception):
    """The update paused or rolled back: docker's message for it."""


@dataclass
class Snapshot:
    service: objects_pb2.Service
    tasks: list
    nodes: list
    now: int  # nanoseconds, any monotonic origin


@dataclass
class Observation:
    lines: list[tuple[str, str]] = field(default_factory=list)
    converged: bool = False  # verified: the caller stops polling


class ConvergenceTracker:
    def __init__(self, service_id: str, label: str | None = None) -> None:
        self.service_id = service_id
        # docker names the service as the user typed it (update, scale, rollback), or by ID (create).
        self.label = label or service_id
        self._initialized = False
        self._done = False  # every tracked task runs (not yet verified)
        self._slot_lines: dict[int, int] = {}
        self._converged_at: int | None = None
        self._rolling_back = False

    def observe(self, snap: Snapshot) -> Observation:
        out = Observation()
        service = snap.service
        if self._update_finished(service, out):
            out.converged = True
            return out
        active_nodes = {n.id for n in snap.nodes if n.status.state != objects_pb2.NodeStatus.DOWN}
        if service.spec.WhichOneof("mode") == "global":
            running_all = self._observe_global(snap.tasks, active_nodes, out)
        else:
            running_all = self._observe_replicated(service, snap.tasks, active_nodes, out)

        monitor = service.spec.update.monitor if service.spec.update.HasField("monitor") else DEFAULT_MONITOR
        if running_all:
            if self._converged_at is None:
                self._converged_at = snap.now
            waited = snap.now - self._converged_at
            if waited >= monitor:
                out.lines.append(("verify", f"Service {self.label} converged"))
                out.converged = True
            else:
                seconds_left = -(-(monitor - waited) // SECOND)  # rounded up: "5 seconds" when just converged
                out.lines.append(("verify", f"Waiting {seconds_left} seconds to verify that tasks are stable..."))
        else:
            if self._converged_at is not None:
                out.lines.append(("verify", "Detected task failure"))
            self._converged_at = None
        return out

    def _update_finished(self, service: objects_pb2.Service, out: Observation) -> bool:
        """docker's reading of UpdateStatus: True when there is nothing left to wait for; raises
        ProgressFailed when the update paused or was rolled back before the tasks converged."""
        if not service.HasField("update_status"):
            return False
        status = service.update_status
        states = objects_pb2.UpdateStatus
        converged_before = self._converged_at is not None
        if status.state == states.UPDATING:
            self._rolling_back = False
        elif status.state == states.COMPLETED:
            return not converged_before
        elif status.state == states.PAUSED:
            raise ProgressFailed(f"service update paused: {status.message}")
        elif status.state == states.ROLLBACK_STARTED:
            if not self._rolling_back and status.message:
                out.lines.append(("rollback", status.message))
            self._rolling_back = True
        elif status.state == states.ROLLBACK_PAUSED:
            raise ProgressFailed(f"service rollback paused: {status.message}")
        elif status.state == states.ROLLBACK_COMPLETED and not converged_before:
            raise ProgressFailed(f"service rolled back: {status.message}")
        return False

    def _overall(self, running: int, total: int) -> tuple[str, str]:
        if self._rolling_back:
            return ("overall progress", f"rolling back update: {running} out of {total} tasks")
        return ("overall progress", f"{running} out of {total} tasks")

    def _observe_replicated(self, service, tasks, active_nodes, out: Observation) -> bool:
        replicas = service.spec.replicated.replicas
        if not self._initialized:
            out.lines.append(self._overall(0, replicas))
            if replicas <= MAX_PROGRESS_BARS:
                out.lines.extend((f"{i}/{replicas}", " ") for i in range(1, replicas + 1))
            self._initialized = True
        by_slot = tasks_by_slot(tasks, active_nodes)
        if self._done and any(t.status.state != TaskState.RUNNING for t in by_slot.values()):
            self._done = False
        running = 0
        for slot in sorted(by_slot):
            task = by_slot[slot]
            line = self._slot_lines.setdefault(slot, len(self._slot_lines) + 1)
            if _is_running(task):
                running += 1
            text = task_progress_text(task)
            if text is not None and replicas <= MAX_PROGRESS_BARS and line <= replicas:
                out.lines.append((f"{line}/{replicas}", text))
        if not self._done:
            out.lines.append(self._overall(running, replicas))
            self._done = running == replicas
        return running == replicas

    def _observe_global(self, tasks, active_nodes, out: Observation) -> bool:
        by_node = tasks_by_node(tasks)
        node_count = len(by_node)
        if not self._initialized:
            if node_count == 0:
                out.lines.append(("overall progress", "waiting for new tasks"))
                return False
            out.lines.append(self._overall(0, node_count))
            self._initialized = True
        if self._done and any(t.status.state != TaskState.RUNNING for t in by_node.values()):
            self._done = False
        running = 0
        for node_id in sorted(by_node):
            task = by_node[node_id]
            if node_id not in active_nodes:
                continue
            if _is_running(task):
                running += 1
            text = task_progress_text(task)
            if text is not None and node_count <= MAX_PROGRESS_BARS:
                out.lines.append((truncate_id(node_id), text))
        if not self._done:
            out.lines.append(self._overall(running, node_count))
            self._done = running == node_count
        return running == node_count
