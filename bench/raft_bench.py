"""Raft benchmark: 3 in-process RaftDrivers over the in-memory transport, real fsynced DiskStorage.

Measures committed-and-applied proposals per second and commit latency (p50/p99), one at a time and
pipelined (a window of proposals in flight), and the time to elect a new leader after the leader is
stopped, in seconds and in election timeouts (election_tick * tick_interval).

Run: python bench/raft_bench.py [--sequential N] [--pipelined N] [--window W] [--failovers K] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from swarmpy.raft.driver import DriverConfig, RaftDriver  # noqa: E402
from swarmpy.raft.transport import InMemoryNetwork  # noqa: E402
from swarmpy.raft.wal import DiskStorage  # noqa: E402

from bench.raft_measure import PAYLOAD, CountingStateMachine, measure_proposals  # noqa: E402

NODE_IDS = (1, 2, 3)


@dataclass
class BenchResult:
    sequential_count: int = 0
    sequential_per_second: float = 0.0
    sequential_p50_ms: float = 0.0
    sequential_p99_ms: float = 0.0
    pipelined_count: int = 0
    pipelined_window: int = 0
    pipelined_per_second: float = 0.0
    pipelined_p50_ms: float = 0.0
    pipelined_p99_ms: float = 0.0
    election_timeout_s: float = 0.0
    failover_seconds: list[float] = field(default_factory=list)
    applied_everywhere: bool = False


class BenchCluster:
    def __init__(self, folder: str, tick_interval: float) -> None:
        self.folder = folder
        self.network = InMemoryNetwork(random.Random(1))
        self.config = DriverConfig(tick_interval=tick_interval)
        self.drivers: dict[int, RaftDriver] = {}
        self.machines: dict[int, CountingStateMachine] = {}

    async def start(self, node_id: int) -> RaftDriver:
        machine = CountingStateMachine()
        driver = RaftDriver(
            node_id,
            NODE_IDS,
            DiskStorage(os.path.join(self.folder, f"node{node_id}")),
            self.network.transport(node_id),
            machine,
            self.config,
            rng=random.Random(node_id * 7919 + int(time.time())),
        )
        await driver.start()
        self.drivers[node_id] = driver
        self.machines[node_id] = machine
        return driver

    async def stop(self, node_id: int) -> None:
        await self.drivers.pop(node_id).stop()

    async def leader(self, timeout: float = 30.0) -> RaftDriver:
        async with asyncio.timeout(timeout):
            while True:
                leaders = [d for d in self.drivers.values() if d.is_leader]
                if len(leaders) == 1:
                    return leaders[0]
                await asyncio.sleep(self.config.tick_interval / 4)


async def run(
    sequential: int = 2_000,
    pipelined: int = 20_000,
    window: int = 1_000,
    failovers: int = 10,
    tick_interval: float = 0.05,
    folder: str | None = None,
) -> BenchResult:
    result = BenchResult(sequential_count=sequential, pipelined_count=pipelined, pipelined_window=window)
    with tempfile.TemporaryDirectory(dir=folder) as data_dir:
        cluster = BenchCluster(data_dir, tick_interval)
        for node_id in NODE_IDS:
            await cluster.start(node_id)
        try:
            leader = await cluster.leader()
            await leader.propose(PAYLOAD)  # warm up

            measured = await measure_proposals(leader, sequential, pipelined, window)
            sequential_figures, pipelined_figures = measured["sequential"], measured["pipelined"]
            result.sequential_per_second = sequential_figures["per_second"]
            result.sequential_p50_ms = sequential_figures["p50_ms"]
            result.sequential_p99_ms = sequential_figures["p99_ms"]
            result.pipelined_per_second = pipelined_figures["per_second"]
            result.pipelined_p50_ms = pipelined_figures["p50_ms"]
            result.pipelined_p99_ms = pipelined_figures["p99_ms"]

            await leader.read_index()
            target = leader.applied
            async with asyncio.timeout(30):
                while any(d.applied < target for d in cluster.drivers.values()):
                    await asyncio.sleep(tick_interval / 4)
            expected = cluster.machines[leader.node_id].count
            result.applied_everywhere = all(m.count == expected for m in cluster.machines.values())

            result.election_timeout_s = cluster.config.election_tick * tick_interval
            for _ in range(failovers):
                leader = await cluster.leader()
                await leader.read_index()
                old_id = leader.node_id
                stopped_at = time.perf_counter()
                await cluster.stop(old_id)
                await cluster.leader()
                result.failover_seconds.append(time.perf_counter() - stopped_at)
                await cluster.start(old_id)
        finally:
            for node_id in list(cluster.drivers):
                await cluster.stop(node_id)
    return result


def report(result: BenchResult) -> str:
    lines = [f"cores: {os.cpu_count()}, python {sys.version.split()[0]}"]
    if result.sequential_count:
        lines.append(
            f"sequential ({result.sequential_count:,} proposals, one at a time): "
            f"{result.sequential_per_second:,.0f} commits/s, p50 {result.sequential_p50_ms:.2f} ms, "
            f"p99 {result.sequential_p99_ms:.2f} ms"
        )
    if result.pipelined_count:
        lines.append(
            f"pipelined ({result.pipelined_count:,} proposals, {result.pipelined_window:,} in flight): "
            f"{result.pipelined_per_second:,.0f} commits/s, p50 {result.pipelined_p50_ms:.2f} ms, "
            f"p99 {result.pipelined_p99_ms:.2f} ms"
        )
    lines.append(f"applied on every node: {result.applied_everywhere}")
    if result.failover_seconds:
        timeouts = [s / result.election_timeout_s for s in result.failover_seconds]
        lines.append(
            f"new leader after stopping the leader ({len(timeouts)} trials, election timeout "
            f"{result.election_timeout_s:.2f} s): median {statistics.median(result.failover_seconds):.3f} s = "
            f"{statistics.median(timeouts):.2f} election timeouts, max {max(result.failover_seconds):.3f} s = "
            f"{max(timeouts):.2f} election timeouts"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=2_000)
    parser.add_argument("--pipelined", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=1_000)
    parser.add_argument("--failovers", type=int, default=10)
    parser.add_argument("--tick", type=float, default=0.05, help="tick interval in seconds")
    parser.add_argument("--profile", action="store_true", help="profile with pyinstrument (pip install pyinstrument)")
    args = parser.parse_args()
    coroutine = run(args.sequential, args.pipelined, args.window, args.failovers, args.tick)
    if args.profile:
        import pyinstrument

        profiler = pyinstrument.Profiler(async_mode="enabled")
        profiler.start()
        result = asyncio.run(coroutine)
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    else:
        result = asyncio.run(coroutine)
    print(report(result))


if __name__ == "__main__":
    main()
