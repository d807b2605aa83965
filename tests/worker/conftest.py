"""Fixtures for worker tests against the real engine: a unique node per test, cleaned up by label."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import pytest

from swarmpy.api import dispatcher_pb2, objects_pb2
from swarmpy.worker.executor.container_config import NODE_LABEL
from swarmpy.worker.executor.docker import DockerExecutor
from tests.conftest import docker_client


@pytest.fixture
def docker(busybox_image):
    client = docker_client()
    yield client
    client.close()


@pytest.fixture
def node_id(docker):
    """A node ID of this test alone; every container labelled with it is removed afterwards."""
    node = "testnode" + uuid.uuid4().hex[:12]
    yield node
    for container in docker.containers.list(all=True, filters={"label": f"{NODE_LABEL}={node}"}):
        container.remove(force=True, v=True)


@pytest.fixture
async def executor(docker, node_id):
    async with DockerExecutor(node_id, docker) as running:
        yield running


class Reports:
    """The report callback of a Worker: records every status and lets a test wait for one."""

    def __init__(self) -> None:
        self.statuses: dict[str, list[objects_pb2.TaskStatus]] = defaultdict(list)
        self._changed = asyncio.Condition()

    async def __call__(self, task_id: str, status: objects_pb2.TaskStatus) -> None:
        async with self._changed:
            self.statuses[task_id].append(status)
            self._changed.notify_all()

    def states(self, task_id: str) -> list[int]:
        return [status.state for status in self.statuses[task_id]]

    async def wait_for(self, task_id: str, state: int, timeout: float = 10) -> objects_pb2.TaskStatus:
        def reached():
            return next((s for s in self.statuses[task_id] if s.state == state), None)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(reached), timeout)
        return reached()


@pytest.fixture
def reports() -> Reports:
    return Reports()


def make_task(node_id: str, image: str, *args: str, desired=objects_pb2.RUNNING, grace_s: float | None = 1, **kw):
    """A task of service `svc` as the dispatcher would assign it (status ASSIGNED)."""
    task_id = uuid.uuid4().hex[:25]
    task = objects_pb2.Task(id=task_id, service_id="svc" + task_id[:6], slot=kw.pop("slot", 1), node_id=node_id)
    task.service_annotations.name = "svc"
    task.annotations.name = f"svc.{task.slot}"
    task.status.state = objects_pb2.ASSIGNED
    task.desired_state = desired
    container = task.spec.container
    container.image = image
    if args:
        container.command.extend(args)
    if grace_s is not None:
        container.stop_grace_period = int(grace_s * 1e9)
    return task


def assignments(*tasks, complete=False, remove=()):
    kind = dispatcher_pb2.AssignmentsMessage
    message = kind(type=kind.COMPLETE if complete else kind.INCREMENTAL)
    for task in tasks:
        message.changes.add(task=task, action=dispatcher_pb2.AssignmentChange.UPDATE)
    for task in remove:
        message.changes.add(task=task, action=dispatcher_pb2.AssignmentChange.REMOVE)
    return message
