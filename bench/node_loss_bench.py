"""Node loss: a simulated node holding 100 tasks dies; how long until the managers notice, and until all
100 run elsewhere?

One manager process with a short dispatcher heartbeat (`swarm init --dispatcher-heartbeat 1s`). A first
simulated node (the victim) joins alone and gets every task of a 100-replica service; then the others
join (swarm does not rebalance, so the victim keeps all 100). The victim's agent and worker are then
ended without a goodbye (`NodeSimulator.kill`). Polled every 10 ms over the Control API:
- detection: kill → the victim's Node is DOWN (expected ≈ GRACE_MULTIPLIER × heartbeat period);
- replacement: DOWN → 100 tasks of the service desired and observed RUNNING on other nodes, as the
  leader sees them. Also from the timestamps themselves (Node.meta.updated_at of the DOWN write, and the
  simulated nodes' RUNNING status timestamps; one host, one clock), which the polling cannot blur.

    python -m bench.node_loss_bench --runs 5 --survivors 10 --heartbeat 1s
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from dataclasses import dataclass

from bench.cluster_harness import ControlClient, replicated_spec, start_managers
from bench.simulator import NodeSimulator
from swarmpy.api import objects_pb2

TASKS = 100
POLL = 0.01


@dataclass
class Loss:
    detection: float  # kill → DOWN seen
    replacement_seen: float  # DOWN seen → all RUNNING seen
    replacement_stamped: float  # DOWN written → last replacement RUNNING reported by its node


async def one_run(survivors: int, heartbeat: str) -> Loss:
    cluster = start_managers(1, dispatcher_heartbeat=heartbeat)
    client = ControlClient(cluster.leader)
    simulator = NodeSimulator(cluster.swarm_addrs, cluster.worker_token)
    try:
        async with asyncio.TaskGroup() as group:
            running_simulator = group.create_task(simulator.run())
            [victim] = await simulator.add_nodes(1)
            await simulator.wait_connected()
            await client.wait_ready_nodes(1)
            service = await client.create_service(replicated_spec("node-loss", TASKS))
            await client.wait_running(service.id, TASKS, timeout=60, interval=0.05)
            held = simulator.task_states()[victim.node_id]
            if sum(state == objects_pb2.RUNNING for state in held.values()) != TASKS:
                raise RuntimeError(f"the victim node holds {len(held)} tasks, not all {TASKS}")

            others = await simulator.add_nodes(survivors)
            await simulator.wait_connected(others)
            await client.wait_ready_nodes(1 + survivors)
            await asyncio.sleep(0.5)

            killed = time.perf_counter()
            await simulator.kill(victim.node_id)
            while (node := await client.node(victim.node_id)).status.state != objects_pb2.NodeStatus.DOWN:
                await asyncio.sleep(POLL)
            down_seen = time.perf_counter()
            down_written_ns = node.meta.updated_at
            while True:
                tasks = await client.tasks(service.id)
                replacements = [
                    task for task in tasks
                    if task.desired_state == objects_pb2.RUNNING and task.status.state == objects_pb2.RUNNING
                    and task.node_id != victim.node_id
                ]
                if len(replacements) >= TASKS:
                    break
                await asyncio.sleep(POLL)
            all_seen = time.perf_counter()
            last_running_ns = max(task.status.timestamp for task in replacements)
            running_simulator.cancel()
    finally:
        await client.close()
        cluster.stop()
    return Loss(
        detection=down_seen - killed,
        replacement_seen=all_seen - down_seen,
        replacement_stamped=(last_running_ns - down_written_ns) / 1e9,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--survivors", type=int, default=10, help="simulated nodes left to take the tasks")
    parser.add_argument("--heartbeat", default="1s", help="swarm init --dispatcher-heartbeat")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    # One event loop for every run: grpc.aio binds to the first loop it sees.
    asyncio.run(all_runs(args))


async def all_runs(args: argparse.Namespace) -> None:
    losses = []
    for run in range(1, args.runs + 1):
        loss = await one_run(args.survivors, args.heartbeat)
        losses.append(loss)
        print(
            f"run {run}: DOWN detected {loss.detection:.3f} s after the kill; all {TASKS} RUNNING elsewhere "
            f"{loss.replacement_seen:.3f} s after DOWN was seen ({loss.replacement_stamped:.3f} s by timestamps)",
            flush=True,
        )
    print(
        f"median of {args.runs}: detection {statistics.median(l.detection for l in losses):.3f} s "
        f"(heartbeat {args.heartbeat}); replacement after DOWN {statistics.median(l.replacement_seen for l in losses):.3f} s seen, "
        f"{statistics.median(l.replacement_stamped for l in losses):.3f} s by timestamps; "
        f"max replacement {max(l.replacement_seen for l in losses):.3f} s"
    )


if __name__ == "__main__":
    main()
