"""Failover: SIGKILL the leader of 3 manager processes; how soon is there a new leader, and a write?

Each run starts a fresh swarm of 3 real `swarmpyd` managers (bench/cluster_harness.py: real joins,
mutual TLS, fsynced Raft logs), waits until the leader lists all 3 managers REACHABLE, then SIGKILLs the
leader's process. From the moment of the kill, each survivor is polled over its own local socket with
the Control API, concurrently:

- *answers*: the first ListNodes a survivor answers. A follower forwards Control to the leader it
  believes in, and the leader answers only after its read barrier, so a dead leader gets no answer and
  a survivor answers only once a new leader exists and has committed in its term.
- *lists*: the first ListNodes whose leader flag is on a survivor (the role manager writes that flag,
  up to its 1 s refresh later than the election).
- *write*: the first CreateService (0 replicas, a fresh name per attempt) that a survivor accepts.
- *elected* (from the daemons' logs): the survivor's "became leader" line, against the kill's wall time.

Fresh cluster per run (not a restart of the killed manager), so the runs are independent. The tick is
the daemons' SWARMPY_RAFT_TICK; election timeout (ET) = 10 ticks, as swarmkit's defaults.

    python -m bench.failover_bench --runs 5 --ticks 1,0.1
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import grpc

from bench.cluster_harness import ControlClient, ManagerCluster, ManagerProcess, start_managers
from swarmpy.api import control_pb2, objects_pb2

ELECTION_TICKS = 10  # swarmkit's default, and the daemon's
from swarmpy.raft.driver import DriverConfig

RAFT_TICK_ENV = "SWARMPY_RAFT_TICK"
DEFAULT_TICK = DriverConfig().tick_interval
STEADY_TIMEOUT = 60.0
FAILOVER_TIMEOUT = 120.0
ELECTED_LINE = re.compile(
    # driver_core since the Raft driver's core is shared with the simulator; driver in older logs
    r"^time=(?P<stamp>\S+ \S+) level=INFO module=swarmpy\.raft\.driver(?:_core)? msg=node [0-9a-f]+: became leader$", re.M
)


@dataclass(frozen=True)
class Failover:
    """Seconds after the SIGKILL; `elected` is None if no survivor logged becoming leader."""

    answers: float
    lists: float
    write: float
    write_attempt: float  # how long the accepted CreateService call itself took
    elected: float | None


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Spread:
        if not samples:
            raise ValueError("no samples to summarise")
        return cls(statistics.median(samples), min(samples), max(samples))


def election_timeout(tick: float) -> float:
    return ELECTION_TICKS * tick


def in_election_timeouts(seconds: float, tick: float) -> float:
    return seconds / election_timeout(tick)


def leadership_times(log_text: str) -> list[float]:
    """Wall-clock times (epoch seconds) at which the daemon whose log this is became Raft leader."""
    # logging's default asctime: local time, "2026-11-26 12:34:56,789".
    return [
        datetime.strptime(match["stamp"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        for match in ELECTED_LINE.finditer(log_text)
    ]


def first_election_after(kill_wall: float, logs: Sequence[str]) -> float | None:
    """Seconds from the kill to the first "became leader" in any of `logs` after it (ms resolution)."""
    # The log stamp is truncated to the millisecond, so a leadership right at the kill may read 1 ms early.
    after = [stamp for text in logs for stamp in leadership_times(text) if stamp >= kill_wall - 0.001]
    return min(after) - kill_wall if after else None


def format_spread(spread: Spread, tick: float) -> str:
    return (f"{spread.median:.3f} s = {in_election_timeouts(spread.median, tick):.2f} ET "
            f"(min {spread.low:.3f}, max {spread.high:.3f} = {in_election_timeouts(spread.high, tick):.2f} ET)")


# -- polling the survivors ----------------------------------------------------------------------------


async def first_success(
    survivors: Sequence[ControlClient], attempt: Callable[[ControlClient], Awaitable[bool]], interval: float
) -> float:
    """perf_counter time at which `attempt` first returned True through any survivor (each polled in turn)."""

    async def poll(client: ControlClient) -> float:
        while True:
            if await attempt(client):
                return time.perf_counter()
            await asyncio.sleep(interval)

    pollers = [asyncio.ensure_future(poll(client)) for client in survivors]
    try:
        done, _ = await asyncio.wait(pollers, return_when=asyncio.FIRST_COMPLETED)
        return min(task.result() for task in done)
    finally:
        for poller in pollers:
            poller.cancel()
        await asyncio.gather(*pollers, return_exceptions=True)


def leader_hostname(nodes: Sequence[objects_pb2.Node]) -> str | None:
    leaders = [node.description.hostname for node in nodes if node.role == objects_pb2.MANAGER and node.manager_status.leader]
    return leaders[0] if len(leaders) == 1 else None


async def list_nodes(client: ControlClient, timeout: float) -> list[objects_pb2.Node] | None:
    try:
        return list((await client.control.ListNodes(control_pb2.ListNodesRequest(), timeout=timeout)).nodes)
    except grpc.aio.AioRpcError:
        return None  # no leader yet, or the call gave up: the poller tries again


async def wait_steady(client: ControlClient, managers: int) -> str:
    """Until the leader lists `managers` managers REACHABLE and one leader; the leader's hostname."""
    async with asyncio.timeout(STEADY_TIMEOUT):
        while True:
            nodes = await list_nodes(client, timeout=5)
            if nodes is not None:
                reachable = [n for n in nodes if n.role == objects_pb2.MANAGER
                             and n.manager_status.reachability == objects_pb2.ManagerStatus.REACHABLE]
                leader = leader_hostname(nodes)
                if len(reachable) == managers and leader is not None:
                    return leader
            await asyncio.sleep(0.1)


def tiny_spec(name: str) -> objects_pb2.ServiceSpec:
    spec = objects_pb2.ServiceSpec()
    spec.annotations.name = name
    spec.task.container.image = "swarmpy-test/busybox"
    spec.replicated.replicas = 0  # a write through Raft, with nothing to schedule afterwards
    return spec


async def one_failover(tick: float, run: int, keep_logs: Path | None) -> Failover:
    cluster: ManagerCluster = await asyncio.to_thread(start_managers, 3)
    clients = {manager.name: ControlClient(manager) for manager in cluster.managers}
    try:
        leader_name = await wait_steady(clients[cluster.leader.name], 3)
        victim = next(m for m in cluster.managers if m.name == leader_name)
        survivors: list[ManagerProcess] = [m for m in cluster.managers if m is not victim]
        survivor_clients = [clients[m.name] for m in survivors]
        interval = min(0.05, tick / 5)
        attempt_timeout = max(0.5, election_timeout(tick) / 2)
        attempts = 0

        async def answers(client: ControlClient) -> bool:
            return await list_nodes(client, attempt_timeout) is not None

        async def lists_new_leader(client: ControlClient) -> bool:
            nodes = await list_nodes(client, attempt_timeout)
            return nodes is not None and leader_hostname(nodes) not in (None, victim.name)

        accepted_call = 0.0

        async def write(client: ControlClient) -> bool:
            nonlocal attempts, accepted_call
            attempts += 1
            started = time.perf_counter()
            request = control_pb2.CreateServiceRequest(spec=tiny_spec(f"failover-{run}-{attempts}"))
            try:
                await client.control.CreateService(request, timeout=attempt_timeout)
            except grpc.aio.AioRpcError:
                return False
            accepted_call = time.perf_counter() - started
            return True

        kill_wall = time.time()
        killed = time.perf_counter()
        os.kill(victim.process.pid, signal.SIGKILL)
        async with asyncio.timeout(FAILOVER_TIMEOUT):
            answered, listed, written = await asyncio.gather(
                first_success(survivor_clients, answers, interval),
                first_success(survivor_clients, lists_new_leader, interval),
                first_success(survivor_clients, write, interval),
            )
        logs = [m.log_path.read_text(errors="replace") for m in survivors]
        return Failover(
            answers=answered - killed,
            lists=listed - killed,
            write=written - killed,
            write_attempt=accepted_call,
            elected=first_election_after(kill_wall, logs),
        )
    finally:
        for client in clients.values():
            await client.close()
        await asyncio.to_thread(cluster.stop, keep_logs / f"tick{tick}-run{run}" if keep_logs else None)


async def all_runs(ticks: Sequence[float], runs: int, keep_logs: Path | None) -> None:
    for tick in ticks:
        if tick == DEFAULT_TICK:
            os.environ.pop(RAFT_TICK_ENV, None)  # the daemons' own default (100 ms since issue 15)
        else:
            os.environ[RAFT_TICK_ENV] = repr(tick)
        print(f"tick {tick} s, election timeout {election_timeout(tick):.1f} s (ET), {runs} runs", flush=True)
        failovers = []
        for run in range(1, runs + 1):
            failover = await one_failover(tick, run, keep_logs)
            failovers.append(failover)
            elected = "?" if failover.elected is None else f"{failover.elected:.3f}"
            print(f"  run {run}: elected {elected} s (log); a survivor answers {failover.answers:.3f} s, "
                  f"lists a new leader {failover.lists:.3f} s; write accepted {failover.write:.3f} s "
                  f"= {in_election_timeouts(failover.write, tick):.2f} ET (that call took {failover.write_attempt:.3f} s)",
                  flush=True)
        elections = [f.elected for f in failovers if f.elected is not None]
        if elections:
            print(f"  elected (log):       {format_spread(Spread.of(elections), tick)}")
        print(f"  a survivor answers:  {format_spread(Spread.of([f.answers for f in failovers]), tick)}")
        print(f"  lists a new leader:  {format_spread(Spread.of([f.lists for f in failovers]), tick)}")
        print(f"  first write:         {format_spread(Spread.of([f.write for f in failovers]), tick)}", flush=True)
    os.environ.pop(RAFT_TICK_ENV, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ticks", default="default,1", help="Raft tick(s) in seconds, comma-separated ('default' = the daemons' own, 1 = swarmkit's)")
    parser.add_argument("--keep-logs", type=Path, default=None, help="copy every run's daemon logs here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ticks = [DEFAULT_TICK if tick == "default" else float(tick) for tick in args.ticks.split(",")]
    # One event loop for every run: grpc.aio binds to the first loop it sees.
    asyncio.run(all_runs(ticks, args.runs, args.keep_logs))


if __name__ == "__main__":
    main()
