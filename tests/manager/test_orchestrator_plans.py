"""Pure orchestration decisions: new tasks, dirtiness, slots, replicated and global plans."""

from swarmpy.api import objects_pb2
from swarmpy.manager.store.memory import clone
from swarmpy.manager.orchestrator.common import group_by_slot, is_task_dirty, new_task, runnable_by_slot
from swarmpy.manager.orchestrator.global_ import plan_global
from swarmpy.manager.orchestrator.replicated import plan_replicated, task_change_may_alter_plan
from tests.manager.test_orchestrator_support import Availability, NodeState, make_node, make_service, make_task

NODES = {n: make_node(n) for n in ("n1", "n2", "n3")}


def test_new_task_copies_the_service_and_starts_new():
    service = make_service("web", replicas=3)
    service.spec_version.index = 7
    task = new_task(None, service, 2)
    assert len(task.id) == 25 and task.service_id == service.id and task.slot == 2
    assert task.spec == service.spec.task and task.spec_version.index == 7
    assert task.annotations.name == "web.2" and task.service_annotations.name == "web"
    assert task.status.state == objects_pb2.NEW and task.status.message == "created" and task.status.timestamp > 0
    assert task.desired_state == objects_pb2.RUNNING and task.node_id == ""
    global_task = new_task(None, make_service("agent", replicas=None), 0, "n1")
    assert global_task.annotations.name == "agent.n1" and global_task.node_id == "n1" and global_task.slot == 0


def test_only_a_task_spec_change_makes_a_task_dirty():
    service = make_service(replicas=2)
    task = new_task(None, service, 1)
    service.spec.replicated.replicas = 5
    service.spec_version.index = 2
    assert not is_task_dirty(service, task)  # a scale must not restart tasks
    task.endpoint.spec.CopyFrom(service.spec.endpoint)  # allocated
    assert not is_task_dirty(service, task)
    service.spec.endpoint.ports.add(target_port=80)
    assert is_task_dirty(service, task)  # a newly published port needs new tasks
    task.endpoint.spec.CopyFrom(service.spec.endpoint)
    service.spec.task.container.image = "busybox:2"
    assert is_task_dirty(service, task)


def test_slots_group_replicated_by_number_and_global_by_node():
    service = make_service()
    old = make_task(service, 1, desired=objects_pb2.SHUTDOWN, state=objects_pb2.SHUTDOWN)
    current = make_task(service, 1)
    other = make_task(service, 2)
    on_node = make_task(service, 0, node_id="n1")
    slots = group_by_slot([old, current, other, on_node])
    assert {k: len(v) for k, v in slots.items()} == {1: 2, 2: 1, "n1": 1}
    assert runnable_by_slot([old, current])[1] == [current]


def test_scale_up_fills_the_lowest_free_slots():
    service = make_service(replicas=4)
    tasks = [make_task(service, 2, node_id="n1"), make_task(service, 5, node_id="n2")]
    plan = plan_replicated(service, tasks, NODES)
    assert plan.create_slots == [1, 3] and plan.retire == []


def test_a_finished_task_still_wanted_keeps_its_slot_for_the_restart_supervisor():
    service = make_service(replicas=1)
    failed = make_task(service, 1, node_id="n1", state=objects_pb2.FAILED)
    assert not plan_replicated(service, [failed], NODES)


def test_scale_down_sheds_not_running_then_most_loaded_nodes_then_highest_slots():
    service = make_service(replicas=3)
    tasks = [
        make_task(service, 1, node_id="n1"),
        make_task(service, 2, node_id="n1"),
        make_task(service, 3, node_id="n1"),
        make_task(service, 4, node_id="n2"),
        make_task(service, 5, node_id="n3"),
        make_task(service, 6, node_id="n3", state=objects_pb2.ASSIGNED),
    ]
    plan = plan_replicated(service, tasks, NODES)
    assert sorted(t.slot for t in plan.retire) == [2, 3, 6]
    assert plan.create_slots == []


def test_scale_down_with_even_load_removes_the_highest_slots():
    service = make_service(replicas=1)
    tasks = [make_task(service, slot, node_id=f"n{slot}") for slot in (1, 2, 3)]
    assert sorted(t.slot for t in plan_replicated(service, tasks, NODES).retire) == [2, 3]


def test_tasks_on_down_drained_or_deleted_nodes_are_replaced_in_their_slot():
    nodes = dict(NODES)
    nodes["n1"] = make_node("n1", state=NodeState.DOWN)
    nodes["n2"] = make_node("n2", availability=Availability.DRAIN)
    nodes["n3"] = make_node("n3", availability=Availability.PAUSE)  # paused: tasks stay
    service = make_service(replicas=4)
    tasks = [
        make_task(service, 1, node_id="n1"),
        make_task(service, 2, node_id="n2"),
        make_task(service, 3, node_id="n3"),
        make_task(service, 4, node_id="gone"),
    ]
    plan = plan_replicated(service, tasks, nodes)
    assert sorted(t.slot for t in plan.retire) == [1, 2, 4]
    assert plan.create_slots == [1, 2, 4]


def test_scale_down_prefers_the_slots_being_replaced():
    nodes = dict(NODES, n1=make_node("n1", state=NodeState.DOWN))
    service = make_service(replicas=1)
    tasks = [make_task(service, 1, node_id="n1"), make_task(service, 2, node_id="n2")]
    plan = plan_replicated(service, tasks, nodes)
    assert [t.slot for t in plan.retire] == [1] and plan.create_slots == []


def test_global_one_task_per_eligible_node():
    service = make_service(replicas=None)
    nodes = [
        make_node("n1"),
        make_node("n2", state=NodeState.DOWN),
        make_node("n3", availability=Availability.PAUSE),
        make_node("n4", availability=Availability.DRAIN),
        make_node("n5"),
    ]
    tasks = [
        make_task(service, 0, node_id="n1"),
        make_task(service, 0, node_id="n2"),
        make_task(service, 0, node_id="n3"),
        make_task(service, 0, node_id="n4"),
        make_task(service, 0, node_id="n9"),  # node deleted
    ]
    plan = plan_global(service, tasks, nodes)
    assert sorted(t.node_id for t in plan.retire) == ["n2", "n4", "n9"]
    assert plan.create_on == ["n5"]


def test_global_respects_constraints_both_ways():
    service = make_service(replicas=None, constraints=["node.labels.zone==east"])
    nodes = [make_node("n1", labels={"zone": "east"}), make_node("n2", labels={"zone": "west"})]
    plan = plan_global(service, [make_task(service, 0, node_id="n2")], nodes)
    assert plan.create_on == ["n1"] and [t.node_id for t in plan.retire] == ["n2"]


def test_only_changes_that_can_free_or_fill_a_slot_make_a_replicated_service_dirty():
    service = make_service(replicas=2)
    nodes = dict(NODES, down=make_node("down", state=NodeState.DOWN))
    task = make_task(service, 1, state=objects_pb2.PENDING)

    def after(change, before=task):
        updated = clone(before)
        change(updated)
        return updated

    def may_alter(old, new):
        return task_change_may_alter_plan(old, new, nodes.get)

    assert may_alter(None, task) and may_alter(task, None)  # created, deleted
    assigned = after(lambda t: (setattr(t, "node_id", "n1"), setattr(t.status, "state", objects_pb2.ASSIGNED)))
    assert not may_alter(task, assigned)  # the scheduler's write
    running = after(lambda t: setattr(t.status, "state", objects_pb2.RUNNING), assigned)
    assert not may_alter(assigned, running)  # a status report
    assert may_alter(running, after(lambda t: setattr(t, "desired_state", objects_pb2.SHUTDOWN), running))
    assert may_alter(running, after(lambda t: setattr(t.status, "state", objects_pb2.FAILED), running))
    on_down = after(lambda t: (setattr(t, "node_id", "down"), setattr(t.status, "state", objects_pb2.ASSIGNED)))
    assert may_alter(task, on_down)  # assigned to a node that cannot keep it
    on_gone = after(lambda t: setattr(t.status, "state", objects_pb2.RUNNING), after(lambda t: setattr(t, "node_id", "gone")))
    assert may_alter(after(lambda t: setattr(t, "node_id", "gone")), on_gone)  # reported from a deleted node
    retired = after(lambda t: setattr(t, "desired_state", objects_pb2.SHUTDOWN), running)
    assert not may_alter(retired, after(lambda t: setattr(t.status, "state", objects_pb2.SHUTDOWN), retired))
