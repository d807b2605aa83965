"""The jobs orchestrator's plan: runs, completions, concurrency, global jobs."""

from swarmpy.api import objects_pb2
from swarmpy.manager.orchestrator.jobs import job_counts, plan_job
from tests.manager.test_orchestrator_support import make_node, make_service, make_task


def job(total=3, concurrent=2, version=1):
    service = make_service("job", replicas=None)
    service.spec.replicated_job.total_completions = total
    service.spec.replicated_job.max_concurrent = concurrent
    service.spec_version.index = version
    return service


def task(service, slot, state, version=None):
    made = make_task(service, slot, state=state)
    made.spec_version.index = service.spec_version.index if version is None else version
    return made


def test_a_new_job_starts_max_concurrent_tasks():
    assert plan_job(job(), [], []).create_slots == [1, 2]


def test_completed_slots_are_not_rerun_and_busy_ones_count_against_concurrency():
    service = job()
    tasks = [task(service, 1, objects_pb2.COMPLETE), task(service, 2, objects_pb2.RUNNING)]
    assert plan_job(service, tasks, []).create_slots == [3]
    tasks.append(task(service, 3, objects_pb2.FAILED))  # waits for the restart supervisor
    assert not plan_job(service, tasks, [])
    done = [task(service, slot, objects_pb2.COMPLETE) for slot in (1, 2, 3)]
    assert not plan_job(service, done, [])
    assert job_counts(service, done, 0) == (0, 0, 3, 3)


def test_a_new_spec_version_is_a_new_run():
    service = job(version=2)
    old = [task(service, slot, objects_pb2.COMPLETE, version=1) for slot in (1, 2, 3)]
    plan = plan_job(service, old, [])
    assert plan.create_slots == [1, 2] and {t.id for t in plan.retire} == {t.id for t in old}


def test_a_global_job_runs_once_per_eligible_node():
    service = make_service("gjob", replicas=None)
    service.spec.global_job.SetInParent()
    service.spec_version.index = 1
    nodes = [make_node("a"), make_node("b"), make_node("c", availability=objects_pb2.NodeSpec.DRAIN)]
    ran = make_task(service, 0, state=objects_pb2.COMPLETE, node_id="a")
    ran.spec_version.index = 1
    assert plan_job(service, [ran], nodes).create_on == ["b"]


def test_a_replicated_job_task_on_a_node_that_went_down_is_replaced():
    service = job(total=3, concurrent=2)
    nodes = [make_node("a"), make_node("b", state=objects_pb2.NodeStatus.DOWN)]
    on_down = task(service, 1, objects_pb2.RUNNING)
    on_down.node_id = "b"
    on_up = task(service, 2, objects_pb2.RUNNING)
    on_up.node_id = "a"
    plan = plan_job(service, [on_down, on_up], nodes)
    assert [t.id for t in plan.retire] == [on_down.id]
    assert plan.create_slots == [1]  # the slot runs again elsewhere; concurrency still 2
    removed_node = plan_job(service, [on_down, on_up], [make_node("a")])  # node b deleted
    assert [t.id for t in removed_node.retire] == [on_down.id] and removed_node.create_slots == [1]


def test_a_completed_job_task_on_a_node_that_went_down_stays_done():
    service = job(total=2, concurrent=2)
    done = task(service, 1, objects_pb2.COMPLETE)
    done.node_id = "b"
    running = task(service, 2, objects_pb2.RUNNING)
    running.node_id = "a"
    nodes = [make_node("a"), make_node("b", state=objects_pb2.NodeStatus.DOWN)]
    assert not plan_job(service, [done, running], nodes)


def test_a_global_job_task_stranded_on_a_down_node_is_retired_and_rerun_when_it_is_back():
    service = make_service("gjob", replicas=None)
    service.spec.global_job.SetInParent()
    service.spec_version.index = 1
    stranded = make_task(service, 0, state=objects_pb2.RUNNING, node_id="a")
    stranded.spec_version.index = 1
    plan = plan_job(service, [stranded], [make_node("a", state=objects_pb2.NodeStatus.DOWN), make_node("b")])
    assert [t.id for t in plan.retire] == [stranded.id] and plan.create_on == ["b"]
    stranded.desired_state = objects_pb2.SHUTDOWN  # retired; the node comes back
    assert plan_job(service, [stranded], [make_node("a")]).create_on == ["a"]
    finished = make_task(service, 0, state=objects_pb2.COMPLETE, node_id="a")
    finished.spec_version.index = 1
    assert not plan_job(service, [finished], [make_node("a", state=objects_pb2.NodeStatus.DOWN)])
