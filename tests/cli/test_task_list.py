from swarmpy.api import objects_pb2
from swarmpy.cli.task_list import current_state_text, error_text, order_tasks, task_rows
from swarmpy.units import MINUTE, SECOND

TaskState = objects_pb2.TaskState
NOW = 1_700_000_000 * SECOND


def _task(task_id, slot, created, state=TaskState.RUNNING, desired=TaskState.RUNNING, node="node-a", err="",
          age=2 * MINUTE, service="svc1"):
    task = objects_pb2.Task(id=task_id, service_id=service, slot=slot, node_id=node, desired_state=desired,
                            meta=objects_pb2.Meta(created_at=created),
                            status=objects_pb2.TaskStatus(state=state, timestamp=NOW - age, err=err))
    task.spec.container.image = "busybox:latest"
    return task


def test_history_is_indented_under_the_newest_task_of_each_slot():
    tasks = [_task("old1", 1, 1, TaskState.FAILED, TaskState.SHUTDOWN), _task("new1", 1, 5),
             _task("new2", 2, 3), _task("older1", 1, 0, TaskState.FAILED, TaskState.SHUTDOWN)]
    assert [(name, task.id) for name, task in order_tasks(tasks, {"svc1": "web"})] == [
        ("web.1", "new1"), (" \\_ web.1", "old1"), (" \\_ web.1", "older1"), ("web.2", "new2")]


def test_global_tasks_are_named_by_node():
    tasks = [_task("g1", 0, 1, node="nodeid1")]
    assert order_tasks(tasks, {"svc1": "agent"})[0][0] == "agent.nodeid1"


def test_current_state_text():
    assert current_state_text(_task("t", 1, 1, age=2 * MINUTE), NOW) == "Running 2 minutes ago"
    assert current_state_text(_task("t", 1, 1, TaskState.FAILED, age=3 * SECOND), NOW) == "Failed 3 seconds ago"
    assert current_state_text(_task("t", 1, 1, age=0), NOW) == "Running less than a second ago"


def test_error_text_is_quoted_and_truncated():
    assert error_text("", True) == ""
    assert error_text("No such image: foo:latest", True) == '"No such image: foo:latest"'
    long_error = "x" * 40
    assert error_text(long_error, True) == '"' + "x" * 29 + '\u2026"'
    assert error_text(long_error, False) == f'"{long_error}"'


def test_task_rows_columns():
    rows = task_rows([_task("abcdefghijklmnopqrstuvwxy", 1, 1)], {"svc1": "web"}, {"node-a": "host-a"}, NOW)
    assert rows == [{"ID": "abcdefghijkl", "Name": "web.1", "Image": "busybox:latest", "Node": "host-a",
                     "DesiredState": "Running", "CurrentState": "Running 2 minutes ago", "Error": "", "Ports": ""}]
