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
