"""Real containers: a 20-replica busybox service to all RUNNING, against the floor of creating and
starting the same 20 containers directly with the Docker SDK, one after another, in the same run.

The swarm is one manager process (swarmpyd, active, so its own Docker-backed worker runs the tasks).
The swarmpy time runs from just before CreateService (Control API over the local socket) until
ListServices reports 20 running (polled every 10 ms). The floor creates and starts 20 containers of
the same image and command with `containers.create` + `start`, sequentially. Each run does both, in
alternating order, and removes every container it made.

    python -m bench.containers_bench --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
import uuid

import docker

from bench.cluster_harness import ControlClient, replicated_spec, start_managers
from swarmpy.api import control_pb2
from swarmpy.worker.executor.container_config import NODE_LABEL

IMAGE = "swarmpy-test/busybox"
COMMAND = ["sleep", "100000"]
REPLICAS = 20
FLOOR_LABEL = "swarmpy.bench.floor"


def sdk_floor(client: docker.DockerClient) -> float:
    """Seconds to create and start REPLICAS containers one after another; they are removed afterwards."""
    run = uuid.uuid4().hex[:12]
    started = time.perf_counter()
    try:
        for index in range(REPLICAS):
            container = client.containers.create(
                IMAGE, entrypoint=COMMAND, name=f"bench-floor-{run}-{index}", labels={FLOOR_LABEL: run}, detach=True
            )
            container.start()
        return time.perf_counter() - started
    finally:
        for container in client.containers.list(all=True, filters={"label": f"{FLOOR_LABEL}={run}"}):
            container.remove(force=True, v=True)


async def swarmpy_service(client: docker.DockerClient) -> float:
    """Seconds from CreateService to REPLICAS running; the swarm and its containers are removed afterwards."""
    cluster = start_managers(1, availability="active")
    control = ControlClient(cluster.leader)
    node_ids = []
    try:
        await control.wait_ready_nodes(1, timeout=30)
        node_ids = [node.id for node in await control.nodes()]
        started = time.perf_counter()
        service = await control.create_service(replicated_spec(f"bench-{uuid.uuid4().hex[:8]}", REPLICAS, IMAGE, COMMAND))
        converged = await control.wait_running(service.id, REPLICAS, timeout=120, interval=0.01)
        await control.control.RemoveService(control_pb2.RemoveServiceRequest(ref=service.id), timeout=30)
        return converged - started
    finally:
        await control.close()
        await asyncio.to_thread(cluster.stop)
        for node_id in node_ids:
            for container in await asyncio.to_thread(
                client.containers.list, all=True, filters={"label": f"{NODE_LABEL}={node_id}"}
            ):
                await asyncio.to_thread(container.remove, force=True, v=True)


async def all_runs(client: docker.DockerClient, runs: int) -> tuple[list[float], list[float]]:
    floors, services = [], []
    for run in range(1, runs + 1):
        # Alternating which goes first, so neither always meets a warmer engine.
        if run % 2:
            floors.append(await asyncio.to_thread(sdk_floor, client))
            services.append(await swarmpy_service(client))
        else:
            services.append(await swarmpy_service(client))
            floors.append(await asyncio.to_thread(sdk_floor, client))
        print(f"run {run}: swarmpy service {services[-1]:.3f} s, SDK floor {floors[-1]:.3f} s, "
              f"ratio {services[-1] / floors[-1]:.2f}", flush=True)
    return floors, services


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    client = docker.from_env()
    client.images.get(IMAGE)  # fails now, naming the image, rather than in the middle of a run
    try:
        # One event loop for every run: grpc.aio binds to the first loop it sees.
        floors, services = asyncio.run(all_runs(client, args.runs))
    finally:
        client.close()
    service, floor = statistics.median(services), statistics.median(floors)
    print(f"median of {args.runs}: {REPLICAS} replicas via swarmpy {service:.3f} s; "
          f"{REPLICAS} containers via the SDK, sequential {floor:.3f} s; ratio {service / floor:.2f}")


if __name__ == "__main__":
    main()
