"""The dispatcher's TaskRouter: one task watch, changes handed to the inboxes of the nodes concerned."""

from __future__ import annotations

import asyncio
import contextlib

from swarmpy.api import objects_pb2
from swarmpy.manager.dispatcher.routing import TaskRouter
from swarmpy.manager.store import MemoryStore
from swarmpy.manager.store.memory import clone


def make_task(task_id: str, node_id: str) -> objects_pb2.Task:
    task = objects_pb2.Task(id=task_id, node_id=node_id, service_id="svc", desired_state=objects_pb2.RUNNING)
    task.status.state = objects_pb2.ASSIGNED
    return task


async def create(store: MemoryStore, *tasks: objects_pb2.Task) -> None:
    def write(tx):
        for task in tasks:
            tx.create("task", task)

    await store.update(write)


async def move(store: MemoryStore, task_id: str, node_id: str) -> None:
    def write(tx):
        task = clone(tx.get_task(task_id))
        task.node_id = node_id
        tx.update("task", task)

    await store.update(write)


@contextlib.asynccontextmanager
async def running(router: TaskRouter):
    router.open()
    task = asyncio.create_task(router.run())
    try:
        yield router
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        router.close()  # as the dispatcher does: the task may be cancelled before it ever ran


async def test_each_inbox_gets_only_its_nodes_changes_latest_version_first():
    store = MemoryStore()
    await create(store, make_task("a1", "a"), make_task("b1", "b"))
    async with running(TaskRouter(store)) as router:
        tasks_a, inbox_a = router.subscribe("a")
        _, inbox_b = router.subscribe("b")
        assert [task.id for task in tasks_a] == ["a1"]

        await create(store, make_task("a2", "a"), make_task("c1", "c"))
        await move(store, "a2", "a")  # a second write of a2: only the latest is kept
        await asyncio.wait_for(inbox_a.wait(), 1)
        changed, resync = inbox_a.take()
        assert not resync
        assert list(changed) == ["a2"] and changed["a2"].meta.version.index == store.applied_index
        assert not inbox_b.changed


async def test_a_moved_task_reaches_both_nodes_and_a_deleted_one_arrives_as_none():
    store = MemoryStore()
    await create(store, make_task("t", "a"))
    async with running(TaskRouter(store)) as router:
        _, inbox_a = router.subscribe("a")
        _, inbox_b = router.subscribe("b")
        await move(store, "t", "b")
        await asyncio.wait_for(inbox_b.wait(), 1)
        assert inbox_a.take()[0]["t"].node_id == "b"  # so node a can remove it
        assert inbox_b.take()[0]["t"].node_id == "b"

        await store.update(lambda tx: tx.delete("task", "t"))
        await asyncio.wait_for(inbox_b.wait(), 1)
        assert inbox_b.take()[0] == {"t": None}
        assert not inbox_a.changed


async def test_subscribe_sees_every_change_exactly_once_even_before_the_loop_ran():
    store = MemoryStore()
    async with running(TaskRouter(store)) as router:
        # Applied but not yet routed when the node subscribes: already in its starting set, not in its inbox.
        await create(store, make_task("early", "a"))
        tasks, inbox = router.subscribe("a")
        assert [task.id for task in tasks] == ["early"]
        await create(store, make_task("late", "a"))
        await asyncio.wait_for(inbox.wait(), 1)
        assert list(inbox.take()[0]) == ["late"]

        router.unsubscribe(inbox)
        assert router.subscribers() == 0
        await create(store, make_task("unheard", "a"))
        await asyncio.sleep(0)
        assert not inbox.changed


async def test_a_restored_store_asks_every_stream_for_a_complete_set():
    store = MemoryStore()
    await create(store, make_task("t", "a"))
    snapshot = store.snapshot()
    async with running(TaskRouter(store)) as router:
        _, inbox = router.subscribe("a")
        store.restore(snapshot)
        await asyncio.wait_for(inbox.wait(), 1)
        changed, resync = inbox.take()
        assert resync and not changed


async def test_one_router_means_one_store_watch_whatever_the_number_of_nodes():
    store = MemoryStore()
    async with running(TaskRouter(store)) as router:
        for index in range(100):
            router.subscribe(f"n{index}")
        assert len(store._watches) == 1
    assert not store._watches
