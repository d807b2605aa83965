"""The simulator's executor walks tasks through the real state machine, as a real worker reports them."""

from __future__ import annotations

import asyncio

import pytest

from bench.simulator import SimulatedExecutorWorker, SimulationProfile
from swarmpy.api import dispatcher_pb2, objects_pb2

NODE = "simnode"


def assigned_task(task_id: str, desired: int = objects_pb2.RUNNING) -> objects_pb2.Task:
    task = objects_pb2.Task(id=task_id, node_id=NODE, desired_state=desired, service_id="svc", slot=1)
    task.status.state = objects_pb2.ASSIGNED
    return task


def assignments(*tasks: objects_pb2.Task, complete: bool = True) -> dispatcher_pb2.AssignmentsMessage:
    kind = dispatcher_pb2.AssignmentsMessage.COMPLETE if complete else dispatcher_pb2.AssignmentsMessage.INCREMENTAL
    message = dispatcher_pb2.AssignmentsMessage(type=kind)
    for task in tasks:
        message.changes.add(task=task, action=dispatcher_pb2.AssignmentChange.UPDATE)
    return message


class Recorder:
    def __init__(self) -> None:
        self.reports: list[tuple[str, objects_pb2.TaskStatus]] = []

    async def report(self, task_id: str, status: objects_pb2.TaskStatus) -> None:
        self.reports.append((task_id, status))

    def states(self, task_id: str) -> list[int]:
        return [status.state for reported, status in self.reports if reported == task_id]

    async def until(self, task_id: str, state: int, timeout: float = 2.0) -> None:
        async with asyncio.timeout(timeout):
            while state not in self.states(task_id):
                await asyncio.sleep(0.005)


@pytest.fixture
async def running_worker():
    workers = []

    async def start(profile: SimulationProfile) -> tuple[SimulatedExecutorWorker, Recorder]:
        recorder = Recorder()
        worker = SimulatedExecutorWorker(NODE, recorder.report, profile)
        workers.append(asyncio.create_task(worker.run()))
        return worker, recorder

    yield start
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)


async def test_a_task_walks_every_state_in_order_to_running(running_worker):
    worker, recorder = await running_worker(SimulationProfile(prepare_delay=0.001, start_delay=0.001))
    await worker.apply(assignments(assigned_task("t1")))
    await recorder.until("t1", objects_pb2.RUNNING)
    assert recorder.states("t1") == [
        objects_pb2.ACCEPTED, objects_pb2.PREPARING, objects_pb2.READY, objects_pb2.STARTING, objects_pb2.RUNNING,
    ]
    running = recorder.reports[-1][1]
    assert running.container_status.container_id.startswith("sim")
    assert worker.tasks()["t1"].status.state == objects_pb2.RUNNING


async def test_shutdown_then_removal_forgets_the_task(running_worker):
    worker, recorder = await running_worker(SimulationProfile())
    await worker.apply(assignments(assigned_task("t1")))
    await recorder.until("t1", objects_pb2.RUNNING)
    await worker.apply(assignments(assigned_task("t1", desired=objects_pb2.SHUTDOWN), complete=False))
    await recorder.until("t1", objects_pb2.SHUTDOWN)
    await worker.apply(assignments())  # an empty COMPLETE set: the task is no longer assigned here
    async with asyncio.timeout(2):
        while worker.tasks():
            await asyncio.sleep(0.005)


async def test_a_failed_prepare_rejects_and_a_failed_start_fails(running_worker):
    rejecting, rejections = await running_worker(SimulationProfile(reject_rate=1.0))
    await rejecting.apply(assignments(assigned_task("t1")))
    await rejections.until("t1", objects_pb2.REJECTED)
    assert objects_pb2.READY not in rejections.states("t1")

    failing, failures = await running_worker(SimulationProfile(start_failure_rate=1.0))
    await failing.apply(assignments(assigned_task("t2")))
    await failures.until("t2", objects_pb2.FAILED)
    assert objects_pb2.RUNNING not in failures.states("t2")
    assert failures.reports[-1][1].err


async def test_a_container_that_dies_fails_its_task_with_the_exit_code(running_worker):
    worker, recorder = await running_worker(SimulationProfile(mean_lifetime=0.01, seed=1))
    await worker.apply(assignments(assigned_task("t1")))
    await recorder.until("t1", objects_pb2.FAILED)
    final = recorder.reports[-1][1]
    assert final.container_status.exit_code == 137
    assert "non-zero exit (137)" in final.err


async def test_the_managers_lagging_copy_never_moves_a_task_back(running_worker):
    worker, recorder = await running_worker(SimulationProfile())
    await worker.apply(assignments(assigned_task("t1")))
    await recorder.until("t1", objects_pb2.RUNNING)
    await worker.apply(assignments(assigned_task("t1")))  # still says ASSIGNED: the manager has not caught up
    assert worker.tasks()["t1"].status.state == objects_pb2.RUNNING
    assert recorder.states("t1").count(objects_pb2.RUNNING) == 1


def test_rates_outside_zero_to_one_are_refused():
    with pytest.raises(ValueError, match="reject_rate"):
        SimulationProfile(reject_rate=1.5)
