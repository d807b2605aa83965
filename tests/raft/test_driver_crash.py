"""A whole 3-node cluster is SIGKILLed mid-write; restarted from its data dirs it has every acknowledged write."""

from __future__ import annotations

import asyncio
import os
import pathlib
import random
import signal
import subprocess
import sys
import textwrap

import pytest

from swarmpy.raft.driver import DriverConfig, RaftDriver
from swarmpy.raft.transport import InMemoryNetwork
from swarmpy.raft.wal import DiskStorage

REPO = pathlib.Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import asyncio, os, random, sys
    from swarmpy.raft.driver import DriverConfig, RaftDriver
    from swarmpy.raft.transport import InMemoryNetwork
    from swarmpy.raft.wal import DiskStorage

    class Machine:  # the same as SetMachine below: snapshots must carry the state
        def __init__(self): self.values = set()
        def apply(self, index, data): self.values.add(int(data))
        def snapshot(self): return b",".join(b"%d" % v for v in sorted(self.values))
        def restore(self, data): self.values = {int(v) for v in data.split(b",") if v}

    async def main(folder):
        network = InMemoryNetwork(random.Random(1))
        config = DriverConfig(tick_interval=0.01, snapshot_interval=150, log_entries_for_slow_followers=20)
        drivers = []
        for node_id in (1, 2, 3):
            driver = RaftDriver(node_id, (1, 2, 3), DiskStorage(os.path.join(folder, f"node{node_id}")),
                                network.transport(node_id), Machine(), config, rng=random.Random(node_id))
            await driver.start()
            drivers.append(driver)
        while not any(d.is_leader for d in drivers):
            await asyncio.sleep(0.01)
        leader = next(d for d in drivers if d.is_leader)
        counter = 0
        async def writer():
            nonlocal counter
            while True:
                counter += 1
                key = counter
                result = await leader.propose(b"%d" % key)
                sys.stdout.write(f"{key}\\n")
                sys.stdout.flush()
        async with asyncio.TaskGroup() as group:
            for _ in range(20):
                group.create_task(writer())

    asyncio.run(main(sys.argv[1]))
    """
)


class SetMachine:
    def __init__(self) -> None:
        self.values: set[int] = set()

    def apply(self, index: int, data: bytes) -> None:
        self.values.add(int(data))

    def snapshot(self) -> bytes:
        return b",".join(b"%d" % v for v in sorted(self.values))

    def restore(self, data: bytes) -> None:
        self.values = {int(v) for v in data.split(b",") if v}


@pytest.mark.timeout(60)
async def test_sigkill_of_the_whole_cluster_loses_no_acknowledged_write(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env, cwd=str(REPO)
    )
    acknowledged: set[int] = set()
    try:
        assert child.stdout is not None
        for line in child.stdout:
            acknowledged.add(int(line))
            if len(acknowledged) >= 400:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert len(acknowledged) >= 400

    network = InMemoryNetwork(random.Random(2))
    machines = {i: SetMachine() for i in (1, 2, 3)}
    drivers = []
    try:
        for node_id in (1, 2, 3):
            driver = RaftDriver(
                node_id,
                (1, 2, 3),
                DiskStorage(str(tmp_path / f"node{node_id}")),
                network.transport(node_id),
                machines[node_id],
                DriverConfig(tick_interval=0.01),
                rng=random.Random(node_id),
            )
            await driver.start()
            drivers.append(driver)
        async with asyncio.timeout(10):
            while not any(d.is_leader for d in drivers):
                await asyncio.sleep(0.01)
            leader = next(d for d in drivers if d.is_leader)
            await leader.propose(b"0")
            await leader.read_index()
            while any(d.applied < leader.applied for d in drivers):
                await asyncio.sleep(0.01)
        for machine in machines.values():
            missing = acknowledged - machine.values
            assert not missing, f"acknowledged writes lost: {sorted(missing)[:10]}"
    finally:
        for driver in drivers:
            await driver.stop()
