"""NodeDependencies: a node gets a secret or config with the first task that needs it, before that task,
and is told to forget it after the last such task stops or goes."""

from __future__ import annotations

from swarmpy.api import dispatcher_pb2, objects_pb2
from swarmpy.manager.dispatcher.dependencies import NodeDependencies
from swarmpy.manager.store import MemoryStore

UPDATE = dispatcher_pb2.AssignmentChange.UPDATE
REMOVE = dispatcher_pb2.AssignmentChange.REMOVE


def store_with(*objects):
    store = MemoryStore()
    for kind, obj in objects:
        store._tables.put(kind, obj)
    return store


def task(task_id, secrets=(), configs=(), desired=objects_pb2.RUNNING):
    t = objects_pb2.Task(id=task_id, node_id="n1", desired_state=desired)
    for secret_id in secrets:
        t.spec.container.secrets.add(secret_id=secret_id, secret_name=secret_id)
    for config_id in configs:
        t.spec.container.configs.add(config_id=config_id, config_name=config_id)
    return t


def change(t, action=UPDATE):
    return dispatcher_pb2.AssignmentChange(task=t, action=action)


def test_sent_once_before_and_forgotten_after_the_last_user():
    secret = objects_pb2.Secret(id="s1", spec=objects_pb2.SecretSpec(data=b"v"))
    config = objects_pb2.Config(id="c1", spec=objects_pb2.ConfigSpec(data=b"c"))
    view = store_with(("secret", secret), ("config", config)).view()
    deps = NodeDependencies()
    before, after = deps.changes(view, [change(task("t1", ["s1"], ["c1"])), change(task("t2", ["s1"]))])
    assert [(c.action, c.secret.id or c.config.id) for c in before] == [
        (UPDATE, "c1"), (UPDATE, "s1")]
    assert before[1].secret.spec.data == b"v" and after == []
    # a second task with the same secret sends nothing new
    assert deps.changes(view, [change(task("t3", ["s1"]))]) == ([], [])
    # t1 stops: the config goes, the secret stays (t2 and t3 use it)
    before, after = deps.changes(view, [change(task("t1", ["s1"], ["c1"], desired=objects_pb2.SHUTDOWN))])
    assert before == [] and [(c.action, c.config.id) for c in after] == [(REMOVE, "c1")]
    assert after[0].config.spec.data == b""
    before, after = deps.changes(view, [change(task("t2"), REMOVE), change(task("t3"), REMOVE)])
    assert [(c.action, c.secret.id) for c in after] == [(REMOVE, "s1")]


def test_a_missing_secret_is_not_sent_and_reset_starts_over():
    secret = objects_pb2.Secret(id="s1", spec=objects_pb2.SecretSpec(data=b"v"))
    view = store_with(("secret", secret)).view()
    deps = NodeDependencies()
    before, _ = deps.changes(view, [change(task("t1", ["s1", "gone"]))])
    assert [c.secret.id for c in before] == ["s1"]
    deps.reset()
    before, _ = deps.changes(view, [change(task("t1", ["s1"]))])
    assert [c.secret.id for c in before] == ["s1"]
