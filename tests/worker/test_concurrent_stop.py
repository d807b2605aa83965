"""Stopping many containers that ignore SIGTERM takes one grace period, not one per few threads."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from swarmpy.api import objects_pb2
from swarmpy.worker.worker import Worker
from tests.worker.conftest import assignments, make_task

GRACE_S = 3
REPLICAS = 8


@pytest.mark.timeout(90)
async def test_grace_periods_run_concurrently_even_with_few_threads(executor, reports, node_id, busybox_image, tmp_path):
    # Two threads for every blocking engine call: a stop that held one for its grace period would make
    # these eight stops take four grace periods, however many threads the daemon gives itself.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=2))
    tasks = [make_task(node_id, busybox_image, "sleep", "1000", slot=slot, grace_s=GRACE_S) for slot in range(1, REPLICAS + 1)]
    async with Worker(node_id, executor, reports, tmp_path) as worker:
        await worker.apply(assignments(*tasks, complete=True))
        for task in tasks:
            await reports.wait_for(task.id, objects_pb2.RUNNING, timeout=60)
        for task in tasks:
            task.desired_state = objects_pb2.SHUTDOWN
        began = time.monotonic()
        await worker.apply(assignments(*tasks))
        for task in tasks:
            await reports.wait_for(task.id, objects_pb2.SHUTDOWN, timeout=60)
        took = time.monotonic() - began
    # sleep ignores SIGTERM as PID 1: every container waits out its grace period, then is killed.
    assert GRACE_S * 0.9 < took < GRACE_S * 3, f"{REPLICAS} stops of {GRACE_S}s grace took {took:.1f}s"
