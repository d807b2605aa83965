"""Task reaper: history retention per slot, deletion of REMOVE tasks once stopped, batching."""

import asyncio

from swarmpy.api import objects_pb2
from swarmpy.manager.orchestrator.taskreaper import TaskReaper, history_to_delete, reap_removed, retention_limit
from swarmpy.manager.store import MemoryStore
from tests.manager.test_orchestrator_support import eventually, make_node, make_service, make_task, running, set_task_state


def retired(service, created_at, state=objects_pb2.SHUTDOWN):
    return make_task(service, 1, node_id="n1", state=state, desired=objects_pb2.SHUTDOWN, created_at=created_at)


def test_retention_limit_defaults_to_five():
    assert retention_limit(None) == 5
    cluster = objects_pb2.Cluster(id="c")
    assert retention_limit(cluster) == 5
    cluster.spec.orchestration.task_history_retention_limit = 0
    assert retention_limit(cluster) == 0


def test_history_keeps_the_newest_retired_tasks_and_never_the_current_one():
    service = make_service()
    old = [retired(service, created_at=i) for i in range(1, 5)]
    current = make_task(service, 1, node_id="n1", created_at=10)
    doomed = history_to_delete([current, *old], limit=2)
    assert [t.meta.created_at for t in doomed] == [1, 2]
    assert history_to_delete([current, *old], limit=-1) == []
    assert history_to_delete([current, *old], limit=4) == []


def test_history_keeps_a_retired_task_its_worker_has_not_stopped_yet():
    service = make_service()
    still_running = retired(service, created_at=1, state=objects_pb2.RUNNING)
    stopped = retired(service, created_at=2)
    assert history_to_delete([still_running, stopped], limit=0) == [stopped]


def test_removed_tasks_go_once_stopped_never_started_or_their_node_is_gone():
    service = make_service()
    for state, node_exists, expected in [
        (objects_pb2.RUNNING, True, False),
        (objects_pb2.RUNNING, False, True),
        (objects_pb2.SHUTDOWN, True, True),
        (objects_pb2.COMPLETE, True, True),
        (objects_pb2.PENDING, True, True),
    ]:
        task = make_task(service, 1, node_id="n1", state=state, desired=objects_pb2.REMOVE)
        assert reap_removed(task, node_exists) is expected, (state, node_exists)
    assert not reap_removed(make_task(service, 1, state=objects_pb2.SHUTDOWN, desired=objects_pb2.SHUTDOWN), True)


async def test_reaper_loop_trims_history_and_deletes_removed_tasks_when_stopped():
    store = MemoryStore()
    service = make_service()
    cluster = objects_pb2.Cluster(id="c")
    cluster.spec.orchestration.task_history_retention_limit = 1
    history = [retired(service, created_at=i) for i in range(1, 4)]
    doomed = make_task(service, 2, node_id="n1", state=objects_pb2.RUNNING, desired=objects_pb2.REMOVE)

    def setup(tx):
        tx.create("cluster", cluster)
        tx.create("node", make_node("n1"))
        for task in [*history, doomed]:
            tx.create("task", task)

    await store.update(setup)
    async with running(TaskReaper(store, tick_seconds=0.02)):
        await eventually(lambda: len(store.view().tasks()) == 2, what="history trimmed to 1")
        assert store.view().get_task(history[2].id) is not None
        await asyncio.sleep(0.05)
        assert store.view().get_task(doomed.id) is not None  # still running
        await set_task_state(store, doomed.id, objects_pb2.SHUTDOWN)
        await eventually(lambda: store.view().get_task(doomed.id) is None, what="removed task reaped")


async def test_reaper_loop_trims_history_as_tasks_are_retired_and_stop_while_it_runs():
    store = MemoryStore()
    service = make_service()
    cluster = objects_pb2.Cluster(id="c")
    cluster.spec.orchestration.task_history_retention_limit = 1
    first, second, current = (
        make_task(service, 1, node_id="n1", state=objects_pb2.RUNNING, created_at=i) for i in range(1, 4)
    )

    def setup(tx):
        tx.create("cluster", cluster)
        tx.create("node", make_node("n1"))
        tx.create("task", first)

    await store.update(setup)
    async with running(TaskReaper(store, tick_seconds=0.02)):

        async def replace(old, new):
            def write(tx):
                retired_task = objects_pb2.Task()
                retired_task.CopyFrom(tx.get_task(old.id))
                retired_task.desired_state = objects_pb2.SHUTDOWN
                tx.update("task", retired_task)
                tx.create("task", new)

            await store.update(write)

        await replace(first, second)
        await replace(second, current)
        await set_task_state(store, current.id, objects_pb2.RUNNING)  # a report of the current task
        await asyncio.sleep(0.1)
        assert len(store.view().tasks()) == 3  # two retired, but neither has stopped yet
        await set_task_state(store, first.id, objects_pb2.SHUTDOWN)  # the retired task's report
        await eventually(lambda: store.view().get_task(first.id) is None, what="the stopped excess task reaped")
        assert {task.id for task in store.view().tasks()} == {second.id, current.id}
