import io

import pytest

from swarmpy.api import objects_pb2
from swarmpy.cli.progress import (
    ConvergenceTracker, ProgressFailed, Snapshot, progress_bar, task_progress_text, tasks_by_slot,
)
from swarmpy.cli.progress_display import PlainProgressDisplay, TerminalProgressDisplay
from swarmpy.units import SECOND
from tests.cli.fake_daemon import make_node

TaskState = objects_pb2.TaskState
FULL_BAR = "[" + "=" * 50 + ">]"


def _service(replicas=1, monitor=None, is_global=False):
    service = objects_pb2.Service(id="svcid")
    if is_global:
        getattr(service.spec, "global").SetInParent()
    else:
        service.spec.replicated.replicas = replicas
    if monitor is not None:
        service.spec.update.monitor = monitor
    return service


def _task(slot, state, desired=TaskState.RUNNING, node="n1", err=""):
    return objects_pb2.Task(id=f"t{slot}{state}", slot=slot, node_id=node, desired_state=desired,
                            status=objects_pb2.TaskStatus(state=state, err=err))


NODES = [make_node("n1", "node-1"), make_node("n2", "node-2", state=objects_pb2.NodeStatus.DOWN)]


def test_progress_bar_steps():
    assert progress_bar(9) == FULL_BAR
    assert progress_bar(3) == "[" + "=" * 16 + ">" + " " * 34 + "]"


def test_task_line_text():
    assert task_progress_text(_task(1, TaskState.RUNNING)) == "running   " + FULL_BAR
    assert task_progress_text(_task(1, TaskState.PREPARING)).startswith("preparing [")
    assert task_progress_text(_task(1, TaskState.REJECTED, err="No such image: foo:latest")) == "No such image: foo:latest"
    assert task_progress_text(_task(1, TaskState.SHUTDOWN, TaskState.SHUTDOWN)) is None


def test_lowest_desired_state_wins_and_down_nodes_are_dropped():
    replacement = _task(1, TaskState.PENDING, TaskState.RUNNING)
    dying = _task(1, TaskState.RUNNING, TaskState.SHUTDOWN)
    on_down_node = _task(2, TaskState.RUNNING, node="n2")
    chosen = tasks_by_slot([dying, replacement, on_down_node], {"n1"})
    assert chosen == {1: replacement}


def test_replicated_convergence_waits_the_monitor_period():
    tracker = ConvergenceTracker("svcid")
    service = _service(replicas=2)
    first = tracker.observe(Snapshot(service, [_task(1, TaskState.NEW), _task(2, TaskState.PENDING)], NODES, 0))
    assert first.lines[0] == ("overall progress", "0 out of 2 tasks")
    assert ("1/2", "new       [=====>" + " " * 45 + "]") in first.lines
    running = [_task(1, TaskState.RUNNING), _task(2, TaskState.RUNNING)]
    second = tracker.observe(Snapshot(service, running, NODES, 1 * SECOND))
    assert ("overall progress", "2 out of 2 tasks") in second.lines
    assert second.lines[-1] == ("verify", "Waiting 5 seconds to verify that tasks are stable...")
    assert not second.converged
    third = tracker.observe(Snapshot(service, running, NODES, 3 * SECOND + 1))
    assert third.lines[-1] == ("verify", "Waiting 3 seconds to verify that tasks are stable...")
    done = tracker.observe(Snapshot(service, running, NODES, 6 * SECOND))
    assert done.converged and done.lines[-1] == ("verify", "Service svcid converged")


def test_task_failure_restarts_the_verification():
    tracker = ConvergenceTracker("svcid")
    service = _service(replicas=1, monitor=2 * SECOND)
    tracker.observe(Snapshot(service, [_task(1, TaskState.RUNNING)], NODES, 0))
    failed = tracker.observe(Snapshot(service, [_task(1, TaskState.FAILED, err="task: non-zero exit (1)")], NODES, SECOND))
    assert ("1/1", "task: non-zero exit (1)") in failed.lines
    assert ("verify", "Detected task failure") in failed.lines
    assert ("overall progress", "0 out of 1 tasks") in failed.lines


def test_more_than_twenty_replicas_shows_only_the_count():
    tracker = ConvergenceTracker("svcid")
    tasks = [_task(slot, TaskState.RUNNING) for slot in range(1, 22)]
    observation = tracker.observe(Snapshot(_service(replicas=21), tasks, NODES, 0))
    assert {line_id for line_id, _ in observation.lines} == {"overall progress", "verify"}


def test_global_service_tracks_nodes():
    tracker = ConvergenceTracker("svcid")
    service = _service(is_global=True)
    assert tracker.observe(Snapshot(service, [], NODES, 0)).lines == [("overall progress", "waiting for new tasks")]
    observation = tracker.observe(Snapshot(service, [_task(0, TaskState.RUNNING, node="n1")], NODES, SECOND))
    assert ("n1", "running   " + FULL_BAR) in observation.lines
    assert ("overall progress", "1 out of 1 tasks") in observation.lines


def test_paused_update_is_an_error():
    service = _service()
    service.update_status.state = objects_pb2.UpdateStatus.PAUSED
    service.update_status.message = "update paused due to failure"
    with pytest.raises(ProgressFailed, match="service update paused: update paused due to failure"):
        ConvergenceTracker("svcid").observe(Snapshot(service, [], NODES, 0))


def test_plain_display_prints_changes_only():
    stream = io.StringIO()
    display = PlainProgressDisplay(stream)
    display.show([("overall progress", "0 out of 1 tasks"), ("1/1", " ")])
    display.show([("1/1", "new"), ("overall progress", "0 out of 1 tasks")])
    display.show([("1/1", "new")])
    assert stream.getvalue() == "overall progress: 0 out of 1 tasks\n1/1: new\n"


def test_terminal_display_rewrites_lines_in_place():
    stream = io.StringIO()
    display = TerminalProgressDisplay(stream)
    display.show([("overall progress", "0 out of 1 tasks"), ("1/1", "new")])
    display.show([("overall progress", "1 out of 1 tasks")])
    assert stream.getvalue() == ("overall progress: 0 out of 1 tasks\n1/1: new\n"
                                 "\x1b[2A\r\x1b[2Koverall progress: 1 out of 1 tasks\x1b[2B\r")


def test_job_progress_lines_as_docker_writes_them():
    """Captured from docker CLI 28.2 against the engine's Swarm mode (a pipe, not a terminal):
    `active tasks: 0 out of 1 tasks`, `1/2:  `, `2/2:  `, ... `active tasks: 0 out of 0 tasks`, `job complete`."""
    from swarmpy.api import control_pb2, objects_pb2
    from swarmpy.cli.job_progress import job_lines

    service = objects_pb2.Service(id="j")
    service.spec.replicated_job.total_completions = 2
    service.spec.replicated_job.max_concurrent = 1
    status = control_pb2.ServiceStatus(service_id="j", running_tasks=0, desired_tasks=1)
    assert job_lines(service, status, first=True, terminal=False) == ["active tasks: 0 out of 1 tasks", "1/2:  ", "2/2:  "]
    status.running_tasks = 1
    assert job_lines(service, status, first=False, terminal=False) == ["active tasks: 1 out of 1 tasks"]
    done = control_pb2.ServiceStatus(service_id="j", running_tasks=0, desired_tasks=0, completed_tasks=2)
    assert job_lines(service, done, first=False, terminal=False) == ["active tasks: 0 out of 0 tasks"]
    assert job_lines(service, status, first=False, terminal=True) == ["job progress: 0 out of 2 complete",
                                                                       "active tasks: 1 out of 1 tasks"]
