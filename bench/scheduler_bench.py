"""How fast does one scheduling pass place M pending tasks of one service on N READY nodes?

In-process store (InProcessProposer: no Raft), nodes with ample resources, a service whose M tasks are
PENDING. Only `Scheduler.schedule_pass()` is timed: the placement decisions and the store batch that
writes them. The decision part alone is timed too, on a fresh copy of the same state.

    python bench/scheduler_bench.py --sizes 1000x1000,10000x1000,100000x1000,10000x10000
(each size is TASKSxNODES). Every node carries a zone (3) and a rack (10) label; each size runs without
placement preferences and then with two (`spread=node.labels.zone`, `spread=node.labels.rack`), side by
side in one process: `--preferences 0,2` (the default) picks which.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time

from swarmpy.api import objects_pb2
from swarmpy.identity import new_id
from swarmpy.manager.scheduler import Scheduler
from swarmpy.manager.scheduler.placement import place_group
from swarmpy.manager.store import MemoryStore
from swarmpy.manager.store.memory import Batch

DEFAULT_SIZES = "1000x1000,10000x1000,100000x1000,10000x10000"


def make_node(index: int) -> objects_pb2.Node:
    node = objects_pb2.Node(id=new_id())
    node.description.hostname = f"node-{index}"
    node.description.resources.nano_cpus = 64 * 10**9
    node.description.resources.memory_bytes = 256 * 2**30
    node.status.state = objects_pb2.NodeStatus.READY
    node.spec.annotations.labels["zone"] = f"zone-{index % 3}"
    node.spec.annotations.labels["rack"] = f"rack-{index % 10}"
    return node


def make_task(service: objects_pb2.Service, slot: int) -> objects_pb2.Task:
    task = objects_pb2.Task(id=new_id(), service_id=service.id, slot=slot, desired_state=objects_pb2.RUNNING)
    task.spec.CopyFrom(service.spec.task)
    task.spec_version.CopyFrom(service.spec_version)
    task.annotations.name = f"{service.spec.annotations.name}.{slot}"
    task.status.state = objects_pb2.PENDING
    task.status.message = "pending task scheduling"
    return task


PREFERENCES = ("node.labels.zone", "node.labels.rack")


async def populate(nodes: int, tasks: int, preferences: int = 0) -> MemoryStore:
    store = MemoryStore()
    service = objects_pb2.Service(id=new_id())
    service.spec.annotations.name = "bench"
    service.spec.task.container.image = "busybox"
    service.spec.task.resources.reservations.nano_cpus = 10_000_000
    service.spec.task.resources.reservations.memory_bytes = 1 << 20
    service.spec.replicated.replicas = tasks
    for descriptor in PREFERENCES[:preferences]:
        service.spec.task.placement.preferences.add(spread=descriptor)
    service.spec_version.index = 1

    def fill(batch: Batch) -> None:
        batch.create("service", service)
        for index in range(nodes):
            batch.create("node", make_node(index))
        for slot in range(1, tasks + 1):
            batch.create("task", make_task(service, slot))

    await store.batch(fill)
    return store


async def bench(tasks: int, nodes: int, preferences: int = 0) -> None:
    store = await populate(nodes, tasks, preferences)
    decide_only = Scheduler(store)
    decide_only.load(store.view())
    pending = list(store.view().tasks())
    gc.collect()
    started = time.perf_counter()
    placement = place_group(pending, decide_only.nodes.values())
    decide_seconds = time.perf_counter() - started
    assert not placement.unplaced, placement.explanation

    scheduler = Scheduler(store)
    scheduler.load(store.view())
    gc.collect()
    started = time.perf_counter()
    await scheduler.schedule_pass()
    pass_seconds = time.perf_counter() - started

    view = store.view()
    per_node = [len(view.tasks_by_node(node.id)) for node in view.nodes()]
    assert sum(per_node) == tasks, f"only {sum(per_node)} of {tasks} tasks placed"
    print(
        f"{tasks:>7} tasks on {nodes:>6} nodes, {preferences} prefs: pass {pass_seconds * 1000:8.1f} ms"
        f" ({tasks / pass_seconds:>9,.0f} tasks/s), decisions alone {decide_seconds * 1000:7.1f} ms"
        f" ({tasks / decide_seconds:>10,.0f} tasks/s), spread {min(per_node)}..{max(per_node)} per node"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated TASKSxNODES (default: %(default)s)")
    parser.add_argument("--preferences", default="0,2", help="placement preference counts to run (default: %(default)s)")
    args = parser.parse_args()
    for size in args.sizes.split(","):
        tasks, nodes = (int(part) for part in size.lower().split("x"))
        for preferences in (int(p) for p in args.preferences.split(",")):
            asyncio.run(bench(tasks, nodes, preferences))


if __name__ == "__main__":
    main()
