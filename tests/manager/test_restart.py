"""Restart policy decisions (pure, timestamps instead of a clock) and the supervisor's timers."""

import asyncio

from swarmpy.api import objects_pb2
from swarmpy.manager.orchestrator.restart import (
    DEFAULT_RESTART_DELAY_NS,
    RestartSupervisor,
    decide_restart,
    effective_policy,
)
from swarmpy.manager.store import MemoryStore
from tests.manager.test_orchestrator_support import eventually, make_node, make_service, make_task

Condition = objects_pb2.RestartPolicy.Condition
SECOND = 1_000_000_000


def failed(service, at, state=objects_pb2.FAILED, slot=1):
    return make_task(service, slot, node_id="n1", state=state, timestamp=at)


def test_unset_policy_means_any_after_five_seconds_unlimited():
    service = make_service(restart_delay_ns=None)
    policy = effective_policy(service.spec.task)
    assert (policy.condition, policy.delay_ns, policy.max_attempts, policy.window_ns) == (
        Condition.ANY, DEFAULT_RESTART_DELAY_NS, 0, 0)
    decision = decide_restart(failed(service, at=100 * SECOND), [])
    assert decision.restart and decision.at_ns == 105 * SECOND


def test_conditions():
    for condition, state, expected in [
        (Condition.ANY, objects_pb2.COMPLETE, True),
        (Condition.ANY, objects_pb2.FAILED, True),
        (Condition.ON_FAILURE, objects_pb2.COMPLETE, False),
        (Condition.ON_FAILURE, objects_pb2.FAILED, True),
        (Condition.ON_FAILURE, objects_pb2.REJECTED, True),
        (Condition.NONE, objects_pb2.FAILED, False),
    ]:
        service = make_service(restart_condition=condition, restart_delay_ns=SECOND)
        assert decide_restart(failed(service, SECOND, state), []).restart is expected, (condition, state)


def test_max_attempts_count_earlier_failures_of_the_slot_with_the_same_spec():
    service = make_service(max_attempts=2, restart_delay_ns=0)
    history = [failed(service, 10 * SECOND), failed(service, 20 * SECOND)]
    first, second = history
    assert decide_restart(first, [first]).restart
    assert decide_restart(second, history).restart  # one earlier failure: second attempt allowed
    third = failed(service, 30 * SECOND)
    decision = decide_restart(third, [*history, third])
    assert not decision.restart and "exhausted (2 of 2)" in decision.reason
    # A failure under another task spec (before an update) does not count.
    updated = make_service(max_attempts=2, restart_delay_ns=0, service_id=service.id)
    updated.spec.task.container.image = "busybox:2"
    fresh = failed(updated, 30 * SECOND)
    assert decide_restart(fresh, [*history, fresh]).restart
    # The supervisor's own memory counts when history was reaped.
    assert not decide_restart(fresh, [fresh], remembered_restarts=2).restart


def test_window_forgets_old_failures():
    service = make_service(max_attempts=1, restart_delay_ns=0)
    service.spec.task.restart.window = 60 * SECOND
    old = failed(service, 0)
    recent = failed(service, 100 * SECOND)
    assert decide_restart(recent, [old, recent]).restart
    too_soon = failed(service, 30 * SECOND)
    assert not decide_restart(too_soon, [old, too_soon]).restart


async def test_supervisor_waits_out_the_delay_from_the_failure_time_then_replaces_in_the_slot():
    store = MemoryStore()
    service = make_service(restart_delay_ns=10 * SECOND)
    await store.update(lambda tx: (tx.create("service", service), tx.create("node", make_node("n1"))))
    task = failed(service, at=1_000 * SECOND)
    await store.update(lambda tx: tx.create("task", task))
    now = [1_009_950_000_000]  # 9.95 s after the failure: 50 ms left to wait
    supervisor = RestartSupervisor(store, clock=lambda: now[0])
    runner = asyncio.create_task(supervisor.run())
    try:
        await asyncio.sleep(0.02)
        assert len(store.view().tasks()) == 1  # still waiting
        await eventually(lambda: len(store.view().tasks()) == 2, what="the restart")
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    old = store.view().get_task(task.id)
    [new] = [t for t in store.view().tasks() if t.id != task.id]
    assert old.desired_state == objects_pb2.SHUTDOWN
    assert new.slot == 1 and new.desired_state == objects_pb2.RUNNING and new.status.state == objects_pb2.NEW


async def test_stopping_the_supervisor_cancels_pending_restarts():
    store = MemoryStore()
    service = make_service(restart_delay_ns=60 * SECOND)
    task = failed(service, at=0)
    await store.update(lambda tx: (tx.create("service", service), tx.create("task", task)))
    supervisor = RestartSupervisor(store, clock=lambda: 0)
    runner = asyncio.create_task(supervisor.run())
    await asyncio.sleep(0.01)
    assert len(supervisor._waits) == 1
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert runner.cancelled() and not supervisor._waits
    assert len(store.view().tasks()) == 1


async def test_restart_condition_none_leaves_the_slot_to_the_finished_task():
    store = MemoryStore()
    service = make_service(restart_condition=Condition.NONE)
    task = failed(service, at=0, state=objects_pb2.COMPLETE)
    await store.update(lambda tx: (tx.create("service", service), tx.create("task", task)))
    supervisor = RestartSupervisor(store)
    runner = asyncio.create_task(supervisor.run())
    await asyncio.sleep(0.05)
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert [t.id for t in store.view().tasks()] == [task.id]
    assert store.view().get_task(task.id).desired_state == objects_pb2.RUNNING
