"""The secrets and configs this node was sent, held in memory only.

The dispatcher sends a secret or config to a node while a task there uses it, and tells it to forget
it afterwards (swarmpy.manager.dispatcher.dependencies). They live here, never on the worker's disk:
the Worker feeds every such assignment change in, the executor reads them when it writes a task's
files (into a tmpfs, see executor/task_files.py). A COMPLETE assignment set replaces them all.
"""

from __future__ import annotations

from collections.abc import Iterable

from swarmpy.api import dispatcher_pb2, objects_pb2

_REMOVE = dispatcher_pb2.AssignmentChange.REMOVE


def is_dependency(change: dispatcher_pb2.AssignmentChange) -> bool:
    return change.HasField("secret") or change.HasField("config")


class TaskDependencies:
    def __init__(self) -> None:
        self._secrets: dict[str, objects_pb2.Secret] = {}
        self._configs: dict[str, objects_pb2.Config] = {}

    def apply(self, change: dispatcher_pb2.AssignmentChange) -> None:
        kind = "secret" if change.HasField("secret") else "config"
        table = self._secrets if kind == "secret" else self._configs
        obj = getattr(change, kind)
        if change.action == _REMOVE:
            table.pop(obj.id, None)
        else:
            table[obj.id] = obj

    def replace(self, changes: Iterable[dispatcher_pb2.AssignmentChange]) -> None:
        self._secrets.clear()
        self._configs.clear()
        for change in changes:
            self.apply(change)

    def secret(self, secret_id: str) -> objects_pb2.Secret | None:
        return self._secrets.get(secret_id)

    def config(self, config_id: str) -> objects_pb2.Config | None:
        return self._configs.get(config_id)

    def held(self) -> tuple[set[str], set[str]]:
        """The IDs of the secrets and configs held now (for tests and diagnostics; never the values)."""
        return set(self._secrets), set(self._configs)
