"""A task's secret and config files: written into memory (a tmpfs), bind-mounted read-only into its container.

Theory of operation
-------------------
Docker keeps a container's secrets in a tmpfs and bind-mounts each file at its target; so does this
module, for the one engine several worker daemons share: each node has a directory under a tmpfs root
(default /dev/shm/swarmpy-task-files, which every process of the host and the engine see), each task a
directory in it, each reference one file (mode, uid and gid as the reference says, templates expanded
first). The root is checked to be a tmpfs before anything is written, so a value never reaches a disk;
the worker's data dir holds only the references. The files go when the task's container is removed
(`remove`), and a restarted worker removes those of tasks it no longer has (`remove_except`).

Everything here blocks (file system calls): the executor calls it through a thread.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import docker.types

from swarmpy.api import objects_pb2
from swarmpy.filetargets import container_path
from swarmpy.worker.dependencies import TaskDependencies
from swarmpy.worker.executor.base import ExecutorError
from swarmpy.worker.templates import TemplateContext, TemplateError, expand

log = logging.getLogger(__name__)

DEFAULT_ROOT = "/dev/shm/swarmpy-task-files"
MEMORY_FILE_SYSTEMS = ("tmpfs", "ramfs")


class DependencyMissing(ExecutorError):
    """A task needs a secret or config this node was not sent (or that was removed)."""


def file_system_type(path: str) -> str:
    """The type of the file system holding `path` (the longest mount point above it, per /proc/self/mounts)."""
    path = os.path.realpath(path)
    best, best_type = "", ""
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) < 3:
                continue
            point = fields[1].replace("\\040", " ")
            inside = path == point or path.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, best_type = point, fields[2]
    return best_type


class TaskFiles:
    def __init__(self, node_id: str, dependencies: TaskDependencies, *, hostname: str = "", root: str = DEFAULT_ROOT) -> None:
        self.node_id = node_id
        self.hostname = hostname
        self.dependencies = dependencies
        self.root = Path(root) / node_id

    def _task_dir(self, task_id: str) -> Path:
        return self.root / task_id

    def _check_memory_backed(self, task_id: str) -> None:
        parent = self.root.parent
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        kind = file_system_type(str(parent))
        if kind not in MEMORY_FILE_SYSTEMS:
            raise ExecutorError(
                task_id, f"node {self.node_id}: {parent} is on {kind or 'an unknown file system'}, not a tmpfs:"
                " secrets and configs are never written to disk"
            )

    def prepare(self, task: objects_pb2.Task) -> list[docker.types.Mount]:
        """Write the task's files (again, if they exist) and return the bind mounts for its container."""
        container = task.spec.container
        if not container.secrets and not container.configs:
            return []
        self._check_memory_backed(task.id)
        resolved = self._resolve(task)
        directory = self._task_dir(task.id)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        mounts = []
        for index, (kind, obj, file) in enumerate(resolved):
            data = self._content(task, kind, obj, file, resolved)
            path = directory / f"{kind}-{index}"
            _write_file(path, data, file)
            mounts.append(
                docker.types.Mount(target=container_path(kind, file.name), source=str(path), type="bind", read_only=True)
            )
        return mounts

    def _resolve(self, task: objects_pb2.Task) -> list[tuple[str, object, objects_pb2.FileTarget]]:
        resolved: list[tuple[str, object, objects_pb2.FileTarget]] = []
        for ref in task.spec.container.secrets:
            secret = self.dependencies.secret(ref.secret_id)
            if secret is None:
                raise DependencyMissing(task.id, f"secret {ref.secret_name or ref.secret_id} not found on node {self.node_id}")
            resolved.append(("secret", secret, ref.file))
        for ref in task.spec.container.configs:
            config = self.dependencies.config(ref.config_id)
            if config is None:
                raise DependencyMissing(task.id, f"config {ref.config_name or ref.config_id} not found on node {self.node_id}")
            resolved.append(("config", config, ref.file))
        return resolved

    def _content(self, task, kind, obj, file, resolved) -> bytes:
        if obj.spec.template_driver != "golang":
            return obj.spec.data

        def by_target(wanted_kind: str):
            def lookup(target: str) -> bytes | None:
                for other_kind, other, other_file in resolved:
                    if other_kind == wanted_kind and other_file.name == target and other is not obj:
                        return other.spec.data
                return None

            return lookup

        context = TemplateContext(task, self.node_id, self.hostname, by_target("secret"), by_target("config"))
        try:
            return expand(f"{kind} {obj.spec.annotations.name}", obj.spec.data, context)
        except TemplateError as error:
            raise ExecutorError(task.id, str(error)) from None

    def remove(self, task_id: str) -> None:
        if task_id:
            shutil.rmtree(self._task_dir(task_id), ignore_errors=True)

    def remove_except(self, task_ids: Iterable[str]) -> None:
        keep = set(task_ids)
        try:
            entries = list(self.root.iterdir())
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)


def _write_file(path: Path, data: bytes, file: objects_pb2.FileTarget) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchown(fd, int(file.uid or 0), int(file.gid or 0))
        os.fchmod(fd, file.mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)
