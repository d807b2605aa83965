"""A task runner that crashes (a bug, not an engine error) fails its task and stays driven."""

from __future__ import annotations

import asyncio

import pytest

from swarmpy.api import objects_pb2
from swarmpy.worker import worker as worker_module
from swarmpy.worker.task_states import Container, ContainerFacts, NO_CONTAINER
from swarmpy.worker.worker import Worker
from tests.worker.conftest import Reports, assignments


class _CrashingController:
    """Creates its 'container', then crashes with a plain bug when asked to start it."""

    def __init__(self, task: objects_pb2.Task) -> None:
        self.task_id = task.id
        self.facts = NO_CONTAINER
        self.terminated = False
        self.removed = False

    async def inspect(self) -> ContainerFacts:
        return self.facts

    async def prepare(self) -> None:
        self.facts = ContainerFacts(Container.CREATED, container_id="c" * 64)

    async def start(self) -> None:
        raise KeyError("a bug in the runner's path")

    async def wait(self) -> ContainerFacts:
        raise AssertionError("never started")

    async def shutdown(self, grace: float | None = None) -> None:
        pass

    async def terminate(self) -> None:
        self.terminated = True
        self.facts = ContainerFacts(Container.EXITED, container_id=self.facts.container_id, exit_code=137)

    async def remove(self) -> None:
        self.removed = True
        self.facts = NO_CONTAINER


class _Executor:
    node_id = "node1"

    def __init__(self) -> None:
        self.controllers: dict[str, _CrashingController] = {}

    def controller(self, task: objects_pb2.Task) -> _CrashingController:
        return self.controllers.setdefault(task.id, _CrashingController(task))

    async def owned_containers(self) -> dict[str, ContainerFacts]:
        return {}

    async def remove_container(self, container_id: str, task_id: str = "") -> None:
        pass


@pytest.mark.timeout(10)
async def test_a_crashed_runner_fails_its_task_and_still_removes_it(tmp_path, monkeypatch):
    monkeypatch.setattr(worker_module, "CRASH_BACKOFF_MIN", 0.01)
    executor, reports = _Executor(), Reports()
    task = objects_pb2.Task(id="t1", node_id="node1", desired_state=objects_pb2.RUNNING)
    task.status.state = objects_pb2.ASSIGNED
    task.spec.container.image = "img"
    async with Worker("node1", executor, reports, tmp_path) as worker:
        await worker.apply(assignments(task, complete=True))
        failed = await reports.wait_for("t1", objects_pb2.FAILED, timeout=5)
        assert failed.err == "task runner crashed: KeyError: \"a bug in the runner's path\""
        assert failed.message == "task runner crashed"
        assert executor.controllers["t1"].terminated, "the container of a crashed runner keeps running"
        assert worker.status("t1").state == objects_pb2.FAILED  # persisted set agrees with the report

        # The manager replaces the task and later removes it: the runner is still there to do that.
        task.desired_state = objects_pb2.REMOVE
        await worker.apply(assignments(task))
        for _ in range(200):
            if not worker.tasks():
                break
            await asyncio.sleep(0.02)
        assert worker.tasks() == {}
        assert executor.controllers["t1"].removed
    assert reports.states("t1")[-1] == objects_pb2.FAILED
