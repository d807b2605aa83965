"""Scale harness, small: 20 simulated nodes and a 200-replica service on one real manager process.

Checks the result, not the time: every task RUNNING, spread evenly, one task per slot, and the manager's
view agrees with what the simulated nodes hold.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from bench.cluster_harness import ControlClient, check_placement, replicated_spec, start_managers
from bench.simulator import NodeSimulator
from swarmpy.api import objects_pb2

NODES = 20
REPLICAS = 200

pytestmark = [
    pytest.mark.skipif(not os.path.exists("/var/run/docker.sock"), reason="swarmpyd needs the Docker engine"),
    pytest.mark.timeout(120),
]


@pytest.fixture
def manager_cluster():
    cluster = start_managers(1)
    yield cluster
    cluster.stop()


async def test_200_replicas_on_20_simulated_nodes_run_spread_evenly(manager_cluster):
    client = ControlClient(manager_cluster.leader)
    simulator = NodeSimulator(manager_cluster.swarm_addrs, manager_cluster.worker_token)
    try:
        async with asyncio.TaskGroup() as group:
            running_simulator = group.create_task(simulator.run())
            await simulator.add_nodes(NODES)
            await simulator.wait_connected(timeout=30)
            await client.wait_ready_nodes(NODES, timeout=30)

            service = await client.create_service(replicated_spec("spread", REPLICAS))
            await client.wait_running(service.id, REPLICAS, timeout=60, interval=0.05)

            placement = check_placement(await client.tasks(service.id))
            assert placement.running == REPLICAS
            assert placement.duplicate_slots == []
            assert set(placement.per_node) == set(simulator.nodes), "a task ran outside the simulated nodes"
            low, high = placement.spread
            assert 9 <= low and high <= 11, f"uneven spread: {sorted(placement.per_node.values())}"

            held = simulator.task_states()
            for node_id, count in placement.per_node.items():
                states = held[node_id].values()
                assert sum(state == objects_pb2.RUNNING for state in states) == count
            running_simulator.cancel()
    finally:
        await client.close()
