"""Generic resources (--generic-resource): the scheduler claims units of what a node offers, writes
them into the task, never gives one named unit to two tasks of a node, takes them back when a task stops
using its node, and a new scheduler (a new leader) rebuilds who holds what from the stored tasks."""

from swarmpy.api import objects_pb2
from swarmpy.manager.scheduler import NodeInfo, Scheduler, place_group
from swarmpy.manager.scheduler.nodeinfo import task_usage
from swarmpy.manager.store import MemoryStore
from swarmpy.manager.store.memory import clone
from tests.manager.test_orchestrator_support import eventually, make_node, make_service, make_task, running

NO_GPU = "no suitable node (insufficient resources on 1 node)"


def gpu_node(node_id="a", units=("GPU-1", "GPU-2", "GPU-3"), ssd=0):
    node = make_node(node_id)
    for unit in units:
        node.description.resources.generic.add(kind="gpu", named=unit)
    if ssd:
        node.description.resources.generic.add(kind="ssd", discrete=ssd)
    return node


def gpu_service(gpus=1, ssd=0):
    service = make_service("gpu")
    service.spec.task.resources.reservations.generic.add(kind="gpu", discrete=gpus)
    if ssd:
        service.spec.task.resources.reservations.generic.add(kind="ssd", discrete=ssd)
    return service


def assigned(task):
    return sorted((r.kind, r.WhichOneof("value"), getattr(r, r.WhichOneof("value")))
                  for r in task.assigned_generic_resources)


def test_each_task_gets_its_own_named_units_and_a_share_of_the_count():
    info = NodeInfo(gpu_node(ssd=5))
    tasks = [make_task(gpu_service(gpus=1, ssd=2), slot, state=objects_pb2.PENDING) for slot in (1, 2, 3)]
    result = place_group(tasks, [info])
    assert len(result.assigned) == 2 and len(result.unplaced) == 1  # ssd: 5 // 2
    assert result.explanation == NO_GPU
    first, second = (info.claims[task.id] for task, _ in result.assigned)
    assert first.named == (("gpu", "GPU-1"),) and second.named == (("gpu", "GPU-2"),)
    assert first.discrete == second.discrete == (("ssd", 2),)
    assert info.available_generic == {"gpu": 1, "ssd": 1}
    assert info.free_named_units("gpu") == ["GPU-3"]


def test_a_request_for_several_named_units_takes_distinct_ones_and_release_gives_them_back():
    info = NodeInfo(gpu_node())
    task = make_task(gpu_service(gpus=2), 1, state=objects_pb2.PENDING)
    [(placed, _)] = place_group([task], [info]).assigned
    assert info.claims[placed.id].named == (("gpu", "GPU-1"), ("gpu", "GPU-2"))
    other = make_task(gpu_service(gpus=2), 2, state=objects_pb2.PENDING)
    assert place_group([other], [info]).explanation == NO_GPU
    assert info.remove(task.id)
    assert info.free_named_units("gpu") == ["GPU-1", "GPU-2", "GPU-3"] and not info.claims
    assert info.available_generic == {"gpu": 3}


def test_a_stored_claim_is_taken_as_is_and_a_unit_the_node_dropped_is_not_freed():
    info = NodeInfo(gpu_node())
    task = make_task(gpu_service(), 1, node_id="a")
    task.assigned_generic_resources.add(kind="gpu", named="GPU-3")
    info.add(task.id, task_usage(task))
    assert info.free_named_units("gpu") == ["GPU-1", "GPU-2"]
    info.set_node(gpu_node(units=("GPU-1", "GPU-2")))  # the node restarted offering fewer GPUs
    assert info.available_generic == {"gpu": 2}
    info.remove(task.id)
    assert info.free_named_units("gpu") == ["GPU-1", "GPU-2"]


async def test_the_loop_writes_the_units_frees_them_when_a_task_ends_and_never_shares_one():
    store = MemoryStore()
    await store.update(lambda tx: tx.create("node", gpu_node(units=("GPU-1", "GPU-2"))))
    tasks = [make_task(gpu_service(), slot, state=objects_pb2.PENDING) for slot in (1, 2, 3)]
    async with running(Scheduler(store, debounce_seconds=0.01)):
        await store.update(lambda tx: [tx.create("task", t) for t in tasks])

        def states():
            return {t.id: t for t in store.view().tasks()}

        await eventually(lambda: sum(t.status.state == objects_pb2.ASSIGNED for t in states().values()) == 2
                         and any(t.status.err for t in states().values()), what="two assigned, one explained")
        by_state = sorted(states().values(), key=lambda t: t.status.state)
        waiting, holders = by_state[0], by_state[1:]
        assert waiting.status.state == objects_pb2.PENDING and waiting.status.err == NO_GPU
        assert not waiting.assigned_generic_resources
        assert sorted(assigned(t) for t in holders) == [[("gpu", "named", "GPU-1")], [("gpu", "named", "GPU-2")]]

        # The holder of GPU-2 runs, then fails: its unit goes to the waiting task, and only that one.
        ends = next(t for t in holders if assigned(t) == [("gpu", "named", "GPU-2")])
        for state in (objects_pb2.RUNNING, objects_pb2.FAILED):
            update = clone(store.view().get_task(ends.id))
            update.status.state = state
            await store.update(lambda tx, update=update: tx.update("task", update))
        await eventually(lambda: states()[waiting.id].status.state == objects_pb2.ASSIGNED, what="the freed GPU reused")
        assert assigned(states()[waiting.id]) == [("gpu", "named", "GPU-2")]
        assert not states()[waiting.id].status.err


async def test_a_new_scheduler_rebuilds_the_claims_from_the_store():
    store = MemoryStore()
    held = make_task(gpu_service(ssd=3), 1, node_id="a", state=objects_pb2.RUNNING)
    held.assigned_generic_resources.add(kind="gpu", named="GPU-2")  # not the node's first: read, not re-claimed
    held.assigned_generic_resources.add(kind="ssd", discrete=3)
    await store.update(lambda tx: [tx.create("node", gpu_node(ssd=6)), tx.create("task", held)])
    fresh = [make_task(gpu_service(ssd=3), slot, state=objects_pb2.PENDING) for slot in (2, 3)]
    async with running(Scheduler(store, debounce_seconds=0.01)):  # as after a leader change: load, then schedule
        await store.update(lambda tx: [tx.create("task", t) for t in fresh])
        await eventually(lambda: all(store.view().get_task(t.id).status.err or store.view().get_task(t.id).node_id
                                     for t in fresh), what="both decided")
        outcome = [store.view().get_task(t.id) for t in fresh]
        placed = [t for t in outcome if t.node_id]
        assert len(placed) == 1, "ssd=6 with 3 held leaves room for one more"
        assert assigned(placed[0]) == [("gpu", "named", "GPU-1"), ("ssd", "discrete", 3)]
        assert [t.status.err for t in outcome if not t.node_id] == [NO_GPU]
