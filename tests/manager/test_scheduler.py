"""Scheduler: each filter, the spread, the failure message, preassigned tasks, and the loop."""

import asyncio
from collections import Counter

from swarmpy.api import objects_pb2
from swarmpy.manager.scheduler import NodeInfo, Scheduler, explain, place_group, place_preassigned
from swarmpy.manager.scheduler.nodeinfo import task_usage
from swarmpy.manager.store import MemoryStore
from tests.manager.test_orchestrator_support import (
    Availability,
    NodeState,
    eventually,
    make_node,
    make_service,
    make_task,
    running,
)

GIB = 2**30
HOST = objects_pb2.PortConfig.PublishMode.HOST


def pending(service, count):
    return [make_task(service, slot, state=objects_pb2.PENDING) for slot in range(1, count + 1)]


def infos(*nodes):
    return [NodeInfo(node) for node in nodes]


def placed(result):
    return Counter(info.id for _, info in result.assigned)


def test_spread_prefers_fewest_tasks_of_the_service_then_fewest_tasks_in_all():
    nodes = infos(make_node("a"), make_node("b"), make_node("c"))
    other = make_service("other")
    nodes[0].add("x1", task_usage(make_task(other, 1)))  # a is busier in all
    result = place_group(pending(make_service("web"), 5), nodes)
    assert placed(result) == {"b": 2, "c": 2, "a": 1}


def test_ready_filter_skips_down_paused_and_drained_nodes():
    nodes = infos(
        make_node("a", state=NodeState.DOWN),
        make_node("b", availability=Availability.PAUSE),
        make_node("c", availability=Availability.DRAIN),
        make_node("d"),
    )
    assert placed(place_group(pending(make_service(), 3), nodes)) == {"d": 3}


def test_resources_are_used_up_as_tasks_land_and_the_rest_stay_unplaced():
    service = make_service()
    service.spec.task.resources.reservations.memory_bytes = 3 * GIB
    nodes = infos(make_node("a", memory=8 * GIB), make_node("b", memory=4 * GIB))
    result = place_group(pending(service, 5), nodes)
    assert placed(result) == {"a": 2, "b": 1}
    assert len(result.unplaced) == 2
    assert result.explanation == "no suitable node (insufficient resources on 2 nodes)"


def test_constraints_and_platforms():
    service = make_service(constraints=["node.labels.zone==east"])
    service.spec.task.placement.platforms.add(os="linux", architecture="amd64")  # x86_64 is the same
    nodes = infos(
        make_node("a", labels={"zone": "east"}),
        make_node("b", labels={"zone": "west"}),
        make_node("c", labels={"zone": "east"}, arch="aarch64"),
    )
    assert placed(place_group(pending(service, 2), nodes)) == {"a": 2}


def test_host_mode_port_once_per_node():
    service = make_service()
    tasks = pending(service, 3)
    for task in tasks:
        task.endpoint.ports.add(target_port=80, published_port=8080, publish_mode=HOST)
    result = place_group(tasks, infos(make_node("a"), make_node("b")))
    assert placed(result) == {"a": 1, "b": 1}
    assert result.explanation == "no suitable node (host-mode port already in use on 2 nodes)"


def test_max_replicas_per_node():
    service = make_service()
    service.spec.task.placement.max_replicas = 2
    result = place_group(pending(service, 5), infos(make_node("a"), make_node("b")))
    assert placed(result) == {"a": 2, "b": 2} and len(result.unplaced) == 1
    assert result.explanation == "no suitable node (max replicas per node limit exceed)"


def test_explanation_counts_each_nodes_first_failing_filter_most_first():
    service = make_service(constraints=["node.role==manager"])
    service.spec.task.resources.reservations.nano_cpus = 2 * 10**9
    nodes = infos(
        make_node("a"), make_node("b"), make_node("c"),  # constraints
        make_node("d", cpus=10**9, role=objects_pb2.MANAGER),  # resources
    )
    result = place_group(pending(service, 1), nodes)
    assert result.explanation == (
        "no suitable node (scheduling constraints not satisfied on 3 nodes; insufficient resources on 1 node)"
    )
    assert explain(Counter()) == "no suitable node"


def test_preassigned_tasks_are_only_checked_against_their_node():
    service = make_service(replicas=None)
    task = make_task(service, 0, node_id="a", state=objects_pb2.PENDING)
    [a] = infos(make_node("a"))
    assert place_preassigned(task, a) is None and a.total_tasks == 1
    [paused] = infos(make_node("a", availability=Availability.PAUSE))
    assert place_preassigned(task, paused) == "no suitable node (1 node not available for new tasks)"


def test_a_thousand_tasks_on_a_hundred_nodes_spread_evenly():
    nodes = infos(*(make_node(f"n{i:03}") for i in range(100)))
    nodes[7].add("busy", task_usage(make_task(make_service("other"), 1)))
    result = place_group(pending(make_service(), 1000), nodes)
    counts = placed(result)
    assert len(result.assigned) == 1000 and not result.unplaced
    assert len(counts) == 100 and max(counts.values()) - min(counts.values()) <= 1


async def test_loop_batches_pending_tasks_writes_assignments_and_explains_failures():
    store = MemoryStore()
    service = make_service(constraints=["node.labels.zone==east"])
    tasks = pending(service, 4)
    await store.update(lambda tx: [tx.create("node", make_node(n, labels={"zone": "east"})) for n in ("a", "b")])
    async with running(Scheduler(store, debounce_seconds=0.01)):
        await store.update(lambda tx: [tx.create("task", t) for t in tasks])
        await eventually(
            lambda: all(t.status.state == objects_pb2.ASSIGNED for t in store.view().tasks()), what="assignment"
        )
        stored = store.view().tasks()
        assert Counter(t.node_id for t in stored) == {"a": 2, "b": 2}
        assert {t.status.message for t in stored} == {"scheduler assigned task to node"}

        lonely = make_task(make_service(constraints=["node.labels.zone==west"]), 1, state=objects_pb2.PENDING)
        await store.update(lambda tx: tx.create("task", lonely))
        await eventually(lambda: store.view().get_task(lonely.id).status.err != "", what="explanation")
        assert store.view().get_task(lonely.id).status.err == (
            "no suitable node (scheduling constraints not satisfied on 2 nodes)"
        )
        assert store.view().get_task(lonely.id).status.state == objects_pb2.PENDING
        # A node that fits appears: the task set aside is tried again.
        await store.update(lambda tx: tx.create("node", make_node("c", labels={"zone": "west"})))
        await eventually(lambda: store.view().get_task(lonely.id).node_id == "c", what="retry on new node")
        await asyncio.sleep(0)
