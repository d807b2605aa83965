"""Which secrets and configs a node is sent: exactly those its live tasks use, for as long as they do.

Theory of operation
-------------------
A secret's value leaves the managers only towards a node that runs a task using it (swarmkit's rule).
Each Assignments stream keeps one `NodeDependencies`: the references of every task the node has been
told about and whose desired state is at most RUNNING, and the secrets and configs already sent. After
each batch of task changes it computes what to add (sent as UPDATE before the task changes, so a worker
has the file before it creates the container) and what no task needs any more (sent as REMOVE after
them, so the worker forgets the value). Secrets and configs are immutable, so a sent one never changes.
"""

from __future__ import annotations

from collections.abc import Iterable

from swarmpy.api import dispatcher_pb2, objects_pb2
from swarmpy.manager.store import ReadView

_UPDATE = dispatcher_pb2.AssignmentChange.UPDATE
_REMOVE = dispatcher_pb2.AssignmentChange.REMOVE

Key = tuple[str, str]  # ("secret" | "config", id)


def task_dependencies(task: objects_pb2.Task) -> frozenset[Key]:
    """The secrets and configs a task needs while it is to run (none once it is to stop)."""
    if task.desired_state > objects_pb2.RUNNING:
        return frozenset()
    container = task.spec.container
    return frozenset(
        [("secret", ref.secret_id) for ref in container.secrets] + [("config", ref.config_id) for ref in container.configs]
    )


class NodeDependencies:
    """What one node's Assignments stream has sent of secrets and configs. See the module docstring."""

    def __init__(self) -> None:
        self._by_task: dict[str, frozenset[Key]] = {}
        self._sent: set[Key] = set()

    def reset(self) -> None:
        """A COMPLETE set follows: the node forgets everything it was sent."""
        self._by_task.clear()
        self._sent.clear()

    def changes(
        self, view: ReadView, task_changes: Iterable[dispatcher_pb2.AssignmentChange]
    ) -> tuple[list[dispatcher_pb2.AssignmentChange], list[dispatcher_pb2.AssignmentChange]]:
        """(to send before the task changes, to send after them) for a batch of task changes."""
        for change in task_changes:
            if change.action == _REMOVE:
                self._by_task.pop(change.task.id, None)
            else:
                self._by_task[change.task.id] = task_dependencies(change.task)
        needed: set[Key] = set().union(*self._by_task.values()) if self._by_task else set()
        added = []
        for kind, object_id in sorted(needed - self._sent):
            obj = view.get(kind, object_id)
            if obj is None:
                continue  # removed meanwhile: the worker fails the task ("secret not found"), never hangs
            added.append(dispatcher_pb2.AssignmentChange(action=_UPDATE, **{kind: obj}))
            self._sent.add((kind, object_id))
        removed = []
        for kind, object_id in sorted(self._sent - needed):
            stub = objects_pb2.Secret(id=object_id) if kind == "secret" else objects_pb2.Config(id=object_id)
            removed.append(dispatcher_pb2.AssignmentChange(action=_REMOVE, **{kind: stub}))
            self._sent.discard((kind, object_id))
        return added, removed
