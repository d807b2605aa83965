"""The store: all-or-nothing apply, optimistic concurrency, indexes, watches, snapshots."""

import pytest

from swarmpy.api import objects_pb2
from swarmpy.manager.store import Ambiguous, Change, Commit, Conflict, MemoryStore, NameConflict, NotFound
from swarmpy.manager.store.memory import MAX_CHANGES_PER_PROPOSAL, clone


def service(service_id: str, name: str) -> objects_pb2.Service:
    svc = objects_pb2.Service(id=service_id)
    svc.spec.annotations.name = name
    svc.spec.task.container.image = "busybox"
    return svc


def task(task_id: str, service_id: str, node_id: str = "") -> objects_pb2.Task:
    return objects_pb2.Task(id=task_id, service_id=service_id, node_id=node_id, desired_state=objects_pb2.RUNNING)


async def test_create_sets_version_to_log_index_and_indexes_tasks():
    store = MemoryStore()
    await store.update(lambda tx: tx.create("service", service("s1", "web")))
    await store.update(lambda tx: [tx.create("task", task(f"t{i}", "s1", "n1")) for i in range(3)])
    view = store.view()
    assert view.get_service("s1").meta.version.index == 1
    assert {t.meta.version.index for t in view.tasks_by_service("s1")} == {2}
    assert sorted(t.id for t in view.tasks_by_node("n1")) == ["t0", "t1", "t2"]
    assert view.service_by_name("web").id == "s1"


async def test_stale_update_is_refused_and_changes_nothing():
    store = MemoryStore()
    await store.update(lambda tx: tx.create("service", service("s1", "web")))
    first = clone(store.view().get_service("s1"))
    second = clone(first)
    first.spec.annotations.labels["a"] = "1"
    await store.update(lambda tx: tx.update("service", first))
    second.spec.annotations.labels["b"] = "2"
    with pytest.raises(Conflict, match="update out of sequence"):
        await store.update(lambda tx: tx.update("service", second))
    assert dict(store.view().get_service("s1").spec.annotations.labels) == {"a": "1"}


async def test_a_proposal_applies_all_or_nothing():
    store = MemoryStore()
    await store.update(lambda tx: tx.create("service", service("s1", "web")))

    def create_two_with_clashing_name(tx):
        tx.create("task", task("t1", "s1"))
        tx.create("service", service("s2", "web"))

    with pytest.raises(NameConflict, match="web"):
        await store.update(create_two_with_clashing_name)
    assert store.view().get_task("t1") is None
    assert store.view().count("service") == 1


async def test_transaction_reads_its_own_writes():
    store = MemoryStore()
    await store.update(lambda tx: tx.create("service", service("s1", "web")))

    def create_then_list(tx):
        tx.create("task", task("t1", "s1"))
        return [t.id for t in tx.tasks_by_service("s1")]

    assert await store.update(create_then_list) == ["t1"]


async def test_delete_then_watch_events_and_commit():
    store = MemoryStore()
    await store.update(lambda tx: tx.create("task", task("t1", "s1", "n1")))
    with store.watch(["task"]) as watch:
        await store.update(lambda tx: tx.delete("task", "t1"))
        events = watch.drain()
    assert isinstance(events[0], Change) and events[0].action == "remove" and events[0].obj.id == "t1"
    assert isinstance(events[1], Commit)
    assert store.view().tasks_by_node("n1") == []


async def test_resolve_by_id_name_and_prefix():
    store = MemoryStore()
    await store.update(lambda tx: [tx.create("service", service("abc111", "web")), tx.create("service", service("abc222", "db"))])
    view = store.view()
    assert view.resolve("service", "web").id == "abc111"
    assert view.resolve("service", "abc2").id == "abc222"
    with pytest.raises(Ambiguous, match=r"abc is ambiguous \(2 matches found\)"):
        view.resolve("service", "abc")
    with pytest.raises(NotFound, match="no such service: nope"):
        view.resolve("service", "nope")


async def test_batch_splits_into_bounded_proposals():
    store = MemoryStore()
    n = MAX_CHANGES_PER_PROPOSAL * 2 + 7
    await store.batch(lambda b: [b.create("task", task(f"t{i}", "s1")) for i in range(n)])
    versions = {t.meta.version.index for t in store.view().tasks()}
    assert store.view().count("task") == n
    assert len(versions) == 3


async def test_snapshot_restore_round_trip_keeps_views_live():
    store = MemoryStore()
    await store.update(lambda tx: [tx.create("service", service("s1", "web")), tx.create("task", task("t1", "s1", "n1"))])
    data = store.snapshot()
    other = MemoryStore()
    view = other.view()
    other.restore(data)
    assert view.get_service("s1").spec.annotations.name == "web"
    assert [t.id for t in view.tasks_by_node("n1")] == ["t1"]
    assert view.service_by_name("web").id == "s1"


async def test_a_view_is_live_across_awaits_but_objects_read_from_it_never_change():
    # The documented contract (ReadView): re-reading after an await sees newer writes; an object already
    # read is a fixed record of its moment, because apply replaces objects instead of editing them.
    store = MemoryStore()
    await store.update(lambda tx: tx.create("service", service("s1", "web")))
    view = store.view()
    before = view.get_service("s1")

    def rename_label(tx):
        updated = clone(tx.get_service("s1"))
        updated.spec.annotations.labels["v"] = "2"
        tx.update("service", updated)

    await store.update(rename_label)
    assert view.get_service("s1").spec.annotations.labels["v"] == "2"
    assert "v" not in before.spec.annotations.labels and before.meta.version.index == 1
