"""All the leader's placement loops together on an in-process store, with a stand-in worker."""

import asyncio
import contextlib
from collections import Counter

import pytest

from swarmpy.api import objects_pb2
from swarmpy.manager.allocator import Allocator
from swarmpy.manager.orchestrator import (
    DelayedStarter,
    GlobalOrchestrator,
    ReplicatedOrchestrator,
    RestartSupervisor,
    TaskReaper,
)
from swarmpy.manager.scheduler import Scheduler
from swarmpy.manager.store import MemoryStore
from tests.manager.test_orchestrator_support import (
    Availability,
    FakeAgent,
    edit,
    eventually,
    make_node,
    make_service,
    running,
    set_task_state,
)

pytestmark = pytest.mark.timeout(30)
RUNNING = objects_pb2.RUNNING
UpdateState = objects_pb2.UpdateStatus.UpdateState


@contextlib.asynccontextmanager
async def swarm(nodes=("n1", "n2", "n3"), agent=True):
    store = MemoryStore()
    await store.update(lambda tx: [tx.create("node", make_node(n)) for n in nodes])
    loops = [
        Allocator(store),
        Scheduler(store, debounce_seconds=0.005, max_delay_seconds=0.05),
        ReplicatedOrchestrator(store),
        GlobalOrchestrator(store),
        RestartSupervisor(store),
        DelayedStarter(store),
        TaskReaper(store, tick_seconds=0.02),
    ]
    fake_agent = FakeAgent(store)
    if agent:
        loops.append(fake_agent)
    async with running(*loops):
        yield store, fake_agent


def current(store, service_id):
    """The service's current (runnable) tasks."""
    return [t for t in store.view().tasks_by_service(service_id) if t.desired_state <= RUNNING]


def converged(store, service_id, count):
    tasks = current(store, service_id)
    return len(tasks) == count and all(t.status.state == RUNNING for t in tasks)


def by_node(tasks):
    return Counter(t.node_id for t in tasks)


async def test_replicated_service_is_spread_then_scaled_up_and_down():
    async with swarm() as (store, _):
        service = make_service("web", replicas=3)
        await store.update(lambda tx: tx.create("service", service))
        await eventually(lambda: converged(store, service.id, 3), what="3 running")
        tasks = current(store, service.id)
        assert by_node(tasks) == {"n1": 1, "n2": 1, "n3": 1}
        assert sorted(t.slot for t in tasks) == [1, 2, 3]
        assert sorted(t.annotations.name for t in tasks) == ["web.1", "web.2", "web.3"]

        await edit(store, "service", service.id, lambda s: setattr(s.spec.replicated, "replicas", 7))
        await eventually(lambda: converged(store, service.id, 7), what="7 running")
        assert sorted(by_node(current(store, service.id)).values()) == [2, 2, 3]
        assert sorted(t.slot for t in current(store, service.id)) == list(range(1, 8))

        await edit(store, "service", service.id, lambda s: setattr(s.spec.replicated, "replicas", 1))
        await eventually(lambda: converged(store, service.id, 1), what="1 running")
        retired = [t for t in store.view().tasks_by_service(service.id) if t.desired_state > RUNNING]
        await eventually(
            lambda: all(store.view().get_task(t.id).status.state == objects_pb2.SHUTDOWN for t in retired),
            what="scaled-down tasks stopped",
        )


async def test_failed_task_is_restarted_in_its_slot_after_the_delay_keeping_history():
    async with swarm() as (store, agent):
        service = make_service("web", replicas=2, restart_delay_ns=50_000_000)
        await store.update(lambda tx: tx.create("service", service))
        await eventually(lambda: converged(store, service.id, 2), what="2 running")
        victim = next(t for t in current(store, service.id) if t.slot == 1)
        agent.hold.add(victim.id)
        await set_task_state(store, victim.id, objects_pb2.FAILED, err="exit code 1")
        await asyncio.sleep(0.02)
        assert victim.id in {t.id for t in current(store, service.id)}  # still inside the restart delay
        await eventually(
            lambda: converged(store, service.id, 2) and victim.id not in {t.id for t in current(store, service.id)},
            what="restart",
        )
        slot_one = [t for t in store.view().tasks_by_service(service.id) if t.slot == 1]
        assert len(slot_one) == 2  # the failed task stays as history
        old = store.view().get_task(victim.id)
        assert old.desired_state == objects_pb2.SHUTDOWN and old.status.state == objects_pb2.FAILED


async def test_draining_a_node_moves_its_tasks_and_nowhere_to_go_leaves_them_pending_with_a_reason():
    async with swarm(nodes=("n1", "n2")) as (store, _):
        service = make_service("web", replicas=4)
        await store.update(lambda tx: tx.create("service", service))
        await eventually(lambda: converged(store, service.id, 4), what="4 running")
        await edit(store, "node", "n1", lambda n: setattr(n.spec, "availability", Availability.DRAIN))
        await eventually(
            lambda: converged(store, service.id, 4) and by_node(current(store, service.id)) == {"n2": 4},
            what="tasks moved to n2",
        )
        await edit(store, "node", "n2", lambda n: setattr(n.spec, "availability", Availability.DRAIN))
        await eventually(
            lambda: len(current(store, service.id)) == 4
            and all(t.status.err for t in current(store, service.id)),
            what="tasks pending with a reason",
        )
        assert {t.status.state for t in current(store, service.id)} == {objects_pb2.PENDING}
        assert {t.status.err for t in current(store, service.id)} == {
            "no suitable node (2 nodes not available for new tasks)"
        }
        # Pause keeps tasks and places nothing new; activating lets the pending ones land.
        await edit(store, "node", "n1", lambda n: setattr(n.spec, "availability", Availability.ACTIVE))
        await eventually(lambda: converged(store, service.id, 4), what="tasks placed again")


async def test_global_service_runs_once_per_node_and_follows_new_and_drained_nodes():
    async with swarm() as (store, _):
        service = make_service("agent", replicas=None)
        await store.update(lambda tx: tx.create("service", service))
        await eventually(lambda: converged(store, service.id, 3), what="one per node")
        assert by_node(current(store, service.id)) == {"n1": 1, "n2": 1, "n3": 1}
        await store.update(lambda tx: tx.create("node", make_node("n4")))
        await eventually(lambda: converged(store, service.id, 4), what="the new node gets one")
        await edit(store, "node", "n2", lambda n: setattr(n.spec, "availability", Availability.DRAIN))
        await eventually(lambda: converged(store, service.id, 3), what="drained node's task shut down")
        assert set(by_node(current(store, service.id))) == {"n1", "n3", "n4"}


async def test_deleted_service_tasks_are_marked_remove_then_reaped_once_shut_down():
    async with swarm() as (store, agent):
        service = make_service("web", replicas=2)
        await store.update(lambda tx: tx.create("service", service))
        await eventually(lambda: converged(store, service.id, 2), what="2 running")
        tasks = current(store, service.id)
        agent.hold.update(t.id for t in tasks)  # the worker is slow to stop them
        await store.update(lambda tx: tx.delete("service", service.id))
        await eventually(
            lambda: all(store.view().get_task(t.id).desired_state == objects_pb2.REMOVE for t in tasks),
            what="desired REMOVE",
        )
        await asyncio.sleep(0.1)
        assert all(store.view().get_task(t.id) is not None for t in tasks)  # still running: kept
        for task in tasks:
            await set_task_state(store, task.id, objects_pb2.SHUTDOWN)
        await eventually(lambda: store.view().tasks_by_service(service.id) == [], what="reaped")


async def test_task_spec_change_rolls_through_every_slot_and_completes():
    async with swarm() as (store, _):
        service = make_service("web", replicas=3)
        service.spec.update.parallelism = 1
        service.spec.update.monitor = 300_000_000  # 0.3 s
        await store.update(lambda tx: tx.create("service", service))
        await eventually(lambda: converged(store, service.id, 3), what="3 running")
        before = {t.id for t in current(store, service.id)}

        def new_image(s):
            s.spec.task.container.image = "busybox:2"
            s.spec_version.index = 2

        await edit(store, "service", service.id, new_image)
        await eventually(lambda: all(t.spec.container.image == "busybox:2" and t.status.state == objects_pb2.RUNNING
                                     for t in current(store, service.id)), what="every slot replaced and running")
        all_running_at = asyncio.get_running_loop().time()
        await eventually(
            lambda: store.view().get_service(service.id).update_status.state == UpdateState.COMPLETED,
            what="update completed",
        )
        # COMPLETED only after the monitor period has passed with every new task still up.
        assert asyncio.get_running_loop().time() - all_running_at >= 0.25
        tasks = current(store, service.id)
        assert len(tasks) == 3 and not before & {t.id for t in tasks}
        assert {t.spec.container.image for t in tasks} == {"busybox:2"}
        assert sorted(t.slot for t in tasks) == [1, 2, 3]
        assert store.view().get_service(service.id).update_status.message == "update completed"


async def test_a_failing_new_task_pauses_the_update_and_a_rollback_completes_it():
    async with swarm() as (store, agent):
        service = make_service("web", replicas=2, max_attempts=1)
        service.spec.update.parallelism = 1
        service.spec.rollback.monitor = 300_000_000  # 0.3 s: the rollback waits this long before it completes
        await store.update(lambda tx: tx.create("service", service))
        await eventually(lambda: converged(store, service.id, 2), what="2 running")
        agent.failing_images.add("broken")

        def broken_image(s):
            s.previous_spec.CopyFrom(s.spec)
            s.spec.task.container.image = "broken"
            s.spec_version.index = 2

        await edit(store, "service", service.id, broken_image)
        await eventually(
            lambda: store.view().get_service(service.id).update_status.state == UpdateState.PAUSED,
            what="update paused",
        )
        message = store.view().get_service(service.id).update_status.message
        assert message.startswith("update paused due to failure or early termination of task ")
        assert sum(t.spec.container.image == "broken" for t in current(store, service.id)) == 1  # parallelism 1

        def roll_back(s):  # what the control API does for `service update --rollback`
            s.spec.CopyFrom(s.previous_spec)
            s.spec_version.index = 3
            s.update_status.Clear()
            s.update_status.state = UpdateState.ROLLBACK_STARTED

        await edit(store, "service", service.id, roll_back)
        await eventually(
            lambda: store.view().get_service(service.id).update_status.state == UpdateState.ROLLBACK_COMPLETED,
            what="rollback completed",
        )
        await eventually(lambda: converged(store, service.id, 2), what="2 running again")
        assert {t.spec.container.image for t in current(store, service.id)} == {"busybox"}


async def test_a_global_task_that_fails_is_restarted_on_the_same_node():
    async with swarm() as (store, agent):
        service = make_service("agent", replicas=None)
        await store.update(lambda tx: tx.create("service", service))
        await eventually(lambda: converged(store, service.id, 3), what="one per node")
        victim = next(t for t in current(store, service.id) if t.node_id == "n2")
        agent.hold.add(victim.id)
        await set_task_state(store, victim.id, objects_pb2.FAILED)
        await eventually(
            lambda: converged(store, service.id, 3) and victim.id not in {t.id for t in current(store, service.id)},
            what="restart",
        )
        assert by_node(current(store, service.id)) == {"n1": 1, "n2": 1, "n3": 1}
