"""Elections under CPU saturation: 3 managers beside busy loops that keep every core at 100 %.

A fresh swarm of 3 real managers with the default Raft timing (tick 100 ms, election after 1-2 s), then
one busy-loop process per core (`--hogs`, at the managers' own priority: the scheduler shares each core
between a hog and whatever manager wants it) for `--seconds`. Meanwhile one client writes a little (a
zero-replica service every `--write-every` seconds, through a follower, so the leader replicates and
commits under the load) and the managers' logs are read afterwards:
- elections: "became leader" lines during the window -- any is spurious, nobody was killed;
- starved-loop warnings: ticks that came STALL_TICKS periods late (swarmpy.raft.driver), with how late;
- writes: how many were acknowledged, and the slowest.

    python -m bench.saturation_bench --seconds 60 --runs 1
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import time

import grpc

from bench.chaos_bench import Stubs, current_leader
from bench.cluster_harness import raft_events, start_managers
from bench.failover_bench import tiny_spec
from swarmpy.api import control_pb2

BUSY_LOOP = "while True: pass"
WRITE_TIMEOUT = 30.0


def start_hogs(count: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", BUSY_LOOP], start_new_session=True) for _ in range(count)]


def stop_hogs(hogs: list[subprocess.Popen[bytes]]) -> None:
    for hog in hogs:
        hog.kill()
    for hog in hogs:
        hog.wait()


async def one_run(seconds: float, hogs: int, write_every: float) -> str:
    cluster = await asyncio.to_thread(start_managers, 3)
    stubs = Stubs(cluster.managers)
    running: list[subprocess.Popen[bytes]] = []
    try:
        leader = await current_leader(cluster, stubs)
        follower = next(i for i, m in enumerate(cluster.managers) if m is not leader)
        await asyncio.sleep(2.0)
        before = raft_events(cluster.managers)
        running = start_hogs(hogs)
        latencies: list[float] = []
        failures: list[str] = []
        until = time.perf_counter() + seconds
        number = 0
        while time.perf_counter() < until:
            number += 1
            started = time.perf_counter()
            request = control_pb2.CreateServiceRequest(spec=tiny_spec(f"saturated-{number}"))
            try:
                await stubs.control[follower].CreateService(request, timeout=WRITE_TIMEOUT)
                latencies.append(time.perf_counter() - started)
            except grpc.aio.AioRpcError as error:
                failures.append(f"{error.code().name}: {error.details()}")
            await asyncio.sleep(max(0.0, write_every - (time.perf_counter() - started)))
        stop_hogs(running)
        during = raft_events(cluster.managers).since(before)
        still_leader = await current_leader(cluster, stubs)
    finally:
        stop_hogs(running)
        await stubs.close()
        await asyncio.to_thread(cluster.stop)
    late = during.starved
    return (f"{seconds:.0f} s beside {hogs} busy loops: {during.elections} elections (leader "
            f"{'unchanged' if still_leader is leader else 'CHANGED'}); {len(late)} starved-loop warnings"
            f"{f' (longest {max(late):.2f} s)' if late else ''}; {len(latencies)} writes acknowledged, "
            f"median {statistics.median(latencies):.3f} s, max {max(latencies):.3f} s; {len(failures)} failed"
            f"{': ' + '; '.join(sorted(set(failures))[:3]) if failures else ''}")


async def all_runs(args: argparse.Namespace) -> None:
    for run in range(1, args.runs + 1):
        print(f"run {run}: {await one_run(args.seconds, args.hogs, args.write_every)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 2, help="busy-loop processes (default: one per core)")
    parser.add_argument("--write-every", type=float, default=0.5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(all_runs(args))  # one loop for every run: grpc.aio binds to the first loop it sees


if __name__ == "__main__":
    main()
