"""The delayed starter alone on an in-process store: a task created to wait (desired READY) starts only
once the retired tasks of its slot can no longer be running, or their time is up."""

import asyncio
import time

import pytest

from swarmpy.api import objects_pb2
from swarmpy.manager.orchestrator import DelayedStarter
from swarmpy.manager.orchestrator.common import NodeState, new_task, retire
from swarmpy.manager.store import MemoryStore
from tests.manager.test_orchestrator_support import edit, eventually, make_node, make_service, running, set_task_state

pytestmark = pytest.mark.timeout(30)
READY, RUNNING = objects_pb2.READY, objects_pb2.RUNNING


async def slot_with_old_task(store, *, old_state=RUNNING, node="n1"):
    """A service whose slot 1 holds a retired task in `old_state` on `node` and its waiting successor."""
    service = make_service("web", replicas=1)
    old = new_task(None, service, 1)
    old.node_id = node
    old.status.state = old_state
    old = retire(old)
    successor = new_task(None, service, 1, desired_state=READY)
    successor.node_id = "n2"
    successor.status.state = objects_pb2.ASSIGNED
    await store.update(lambda tx: [tx.create("node", make_node("n1")), tx.create("node", make_node("n2")),
                                   tx.create("service", service), tx.create("task", old), tx.create("task", successor)])
    return old.id, successor.id


def desired(store, task_id):
    return store.view().get_task(task_id).desired_state


async def stays(store, task_id, state, seconds=0.3):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert desired(store, task_id) == state
        await asyncio.sleep(0.02)


async def test_the_successor_waits_until_the_old_task_stops():
    store = MemoryStore()
    old, successor = await slot_with_old_task(store)
    async with running(DelayedStarter(store)):
        await stays(store, successor, READY)
        await set_task_state(store, old, objects_pb2.SHUTDOWN)
        await eventually(lambda: desired(store, successor) == RUNNING, what="successor started")


@pytest.mark.parametrize("old_state", [objects_pb2.PENDING, objects_pb2.FAILED, objects_pb2.SHUTDOWN])
async def test_an_old_task_that_never_reached_a_node_or_already_stopped_does_not_hold_it(old_state):
    store = MemoryStore()
    _, successor = await slot_with_old_task(store, old_state=old_state)
    async with running(DelayedStarter(store)):
        await eventually(lambda: desired(store, successor) == RUNNING, what="successor started")


async def test_an_old_task_on_a_node_that_goes_down_no_longer_holds_it():
    store = MemoryStore()
    _, successor = await slot_with_old_task(store)
    async with running(DelayedStarter(store)):
        await stays(store, successor, READY)

        def down(node):
            node.status.state = NodeState.DOWN

        await edit(store, "node", "n1", down)
        await eventually(lambda: desired(store, successor) == RUNNING, what="successor started")


async def test_an_old_task_that_never_stops_holds_it_only_until_the_timeout():
    store = MemoryStore()
    _, successor = await slot_with_old_task(store)
    async with running(DelayedStarter(store, old_task_timeout=0.5)):
        begun = time.monotonic()
        await eventually(lambda: desired(store, successor) == RUNNING, what="successor started")
        assert time.monotonic() - begun >= 0.45


async def test_a_new_leader_starts_what_the_old_one_left_waiting():
    store = MemoryStore()
    old, successor = await slot_with_old_task(store)
    async with running(DelayedStarter(store)):
        await stays(store, successor, READY, seconds=0.1)
    await set_task_state(store, old, objects_pb2.SHUTDOWN)  # while no leader ran the loop
    async with running(DelayedStarter(store)):
        await eventually(lambda: desired(store, successor) == RUNNING, what="successor started")


async def test_other_slots_do_not_hold_it_and_a_deleted_old_task_frees_it():
    store = MemoryStore()
    old, successor = await slot_with_old_task(store)
    service_id = store.view().get_task(old).service_id
    other = retire(new_task(None, store.view().get_service(service_id), 2))
    other.node_id, other.status.state = "n1", RUNNING
    await store.update(lambda tx: tx.create("task", other))
    async with running(DelayedStarter(store)):
        await stays(store, successor, READY)
        await store.update(lambda tx: tx.delete("task", old))
        await eventually(lambda: desired(store, successor) == RUNNING, what="successor started")
        assert desired(store, other.id) == objects_pb2.SHUTDOWN
