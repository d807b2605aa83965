"""Worker loss with real daemons and defaults: SIGKILL a worker's swarmpyd; when do its tasks run elsewhere?

Each run: a fresh swarm of one manager (drained) and two real worker daemons (bench/cluster_harness.py,
`swarm init` with no timing flags: dispatcher heartbeat 5 s, Raft tick 100 ms), a service of `--replicas`
busybox tasks spread over both workers as real containers on the local engine. Then the first worker's
daemon is SIGKILLed (its containers keep running, as a host's would not -- they no longer count) and the
manager is polled every 20 ms over its local socket:
- DOWN: kill -> the victim's Node is DOWN (the Session stream broke: 2 s grace, not the 15 s expiry);
- replaced: kill -> every replica desired and observed RUNNING on the other worker, as the manager says;
  also from the timestamps (the last replacement's RUNNING status stamp against the kill's wall time).

    python -m bench.worker_loss_bench --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from dataclasses import dataclass

from bench.cluster_harness import ControlClient, add_workers, replicated_spec, start_managers
from swarmpy.api import objects_pb2

POLL = 0.02
TIMEOUT = 60.0


@dataclass(frozen=True)
class WorkerLoss:
    held: int  # tasks the victim ran
    down: float  # kill -> DOWN seen
    replaced_seen: float  # kill -> all replicas RUNNING elsewhere, seen
    replaced_stamped: float  # kill -> the last replacement's RUNNING timestamp


async def one_run(replicas: int) -> WorkerLoss:
    cluster = await asyncio.to_thread(start_managers, 1)
    client = ControlClient(cluster.leader)
    try:
        victim, _survivor = await asyncio.to_thread(add_workers, cluster, 2)
        await client.wait_ready_nodes(2, timeout=TIMEOUT)
        service = await client.create_service(replicated_spec("worker-loss", replicas))
        await client.wait_running(service.id, replicas, timeout=TIMEOUT, interval=0.1)
        victim_id = victim.node_id
        held = sum(task.node_id == victim_id and task.desired_state == objects_pb2.RUNNING
                   for task in await client.tasks(service.id))
        if held == 0:
            raise RuntimeError("the victim worker runs none of the tasks; spread should have given it some")

        killed, killed_ns = time.perf_counter(), time.time_ns()
        await asyncio.to_thread(victim.kill)
        down_seen = None
        async with asyncio.timeout(TIMEOUT):
            while True:
                if down_seen is None and (await client.node(victim_id)).status.state == objects_pb2.NodeStatus.DOWN:
                    down_seen = time.perf_counter()
                replacements = [
                    task for task in await client.tasks(service.id)
                    if task.desired_state == objects_pb2.RUNNING and task.status.state == objects_pb2.RUNNING
                    and task.node_id != victim_id
                ]
                if len(replacements) >= replicas:
                    break
                await asyncio.sleep(POLL)
        replaced_seen = time.perf_counter()
        down_seen = down_seen or replaced_seen
        stamped = max(task.status.timestamp for task in replacements)
    finally:
        await client.close()
        await asyncio.to_thread(cluster.stop)
    return WorkerLoss(held, down_seen - killed, replaced_seen - killed, (stamped - killed_ns) / 1e9)


async def all_runs(args: argparse.Namespace) -> None:
    losses = []
    for run in range(1, args.runs + 1):
        loss = await one_run(args.replicas)
        losses.append(loss)
        print(f"run {run}: the killed worker held {loss.held} of {args.replicas} tasks; DOWN seen {loss.down:.2f} s, "
              f"all RUNNING elsewhere {loss.replaced_seen:.2f} s after the kill ({loss.replaced_stamped:.2f} s by "
              f"timestamps)", flush=True)
    seen = [loss.replaced_seen for loss in losses]
    print(f"median of {args.runs}: DOWN {statistics.median(l.down for l in losses):.2f} s, RUNNING elsewhere "
          f"{statistics.median(seen):.2f} s (max {max(seen):.2f} s; by timestamps median "
          f"{statistics.median(l.replaced_stamped for l in losses):.2f} s) after the kill")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--replicas", type=int, default=4)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(all_runs(args))  # one loop for every run: grpc.aio binds to the first loop it sees


if __name__ == "__main__":
    main()
