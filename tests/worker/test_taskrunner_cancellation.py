"""A task runner being stopped stops, even when the stop arrives while it tidies up its own waits."""

from __future__ import annotations

import asyncio

import pytest

from swarmpy.api import objects_pb2
from swarmpy.worker.taskrunner import TaskRunner


class _SlowToCancelController:
    """Its container wait takes a moment to give up, as a docker call finishing in its thread does."""

    async def wait(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)
            raise


async def _ignore_report(task_id: str, status: objects_pb2.TaskStatus) -> None:
    pass


@pytest.mark.timeout(5)
async def test_a_cancellation_during_the_wait_cleanup_is_not_swallowed():
    task = objects_pb2.Task(id="t1", desired_state=objects_pb2.RUNNING, status=objects_pb2.TaskStatus(state=objects_pb2.RUNNING))
    runner = TaskRunner(task, _SlowToCancelController(), _ignore_report)
    waiting = asyncio.create_task(runner._unless_desired_changes(runner._controller.wait()))
    await asyncio.sleep(0.01)
    runner.update(objects_pb2.Task(id="t1", desired_state=objects_pb2.SHUTDOWN, status=task.status))
    await asyncio.sleep(0.01)  # the desired state won; the container wait is still giving up
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
