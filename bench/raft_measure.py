"""What both Raft benchmarks measure on a leader: sequential and pipelined proposals, with latencies."""

from __future__ import annotations

import asyncio
import statistics
import time

from swarmpy.raft.driver import RaftDriver

PAYLOAD = b"x" * 100


class CountingStateMachine:
    """The cheapest state machine: counts applied entries, so the benchmark measures Raft alone."""

    def __init__(self) -> None:
        self.count = 0

    def apply(self, index: int, data: bytes) -> int:
        self.count += 1
        return index

    def snapshot(self) -> bytes:
        return self.count.to_bytes(8, "little")

    def restore(self, data: bytes) -> None:
        self.count = int.from_bytes(data, "little")


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def summary(latencies: list[float], elapsed: float) -> dict[str, float]:
    """count, per_second, p50_ms, p99_ms (zeros when nothing was measured)."""
    if not latencies:
        return {"count": 0, "per_second": 0.0, "p50_ms": 0.0, "p99_ms": 0.0}
    latencies.sort()
    return {
        "count": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
    }


async def measure_proposals(driver: RaftDriver, sequential: int, pipelined: int, window: int) -> dict[str, dict]:
    """Propose one at a time, then with `window` in flight; a proposal counts once committed and applied."""
    await driver.propose(PAYLOAD)  # warm up: connections open, caches hot
    latencies: list[float] = []
    started = time.perf_counter()
    for _ in range(sequential):
        before = time.perf_counter()
        await driver.propose(PAYLOAD)
        latencies.append(time.perf_counter() - before)
    result = {"sequential": summary(latencies, time.perf_counter() - started)}

    latencies = []
    in_flight = asyncio.Semaphore(window)

    async def one() -> None:
        async with in_flight:
            before = time.perf_counter()
            await driver.propose(PAYLOAD)
            latencies.append(time.perf_counter() - before)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(pipelined):
            group.create_task(one())
    result["pipelined"] = summary(latencies, time.perf_counter() - started)
    result["pipelined"]["window"] = window
    return result
