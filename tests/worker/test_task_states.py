"""The worker's task state machine, over every (observed, desired, container) combination."""

from __future__ import annotations

import itertools

import pytest

from swarmpy.api import objects_pb2
from swarmpy.worker import task_states as ts
from swarmpy.worker.task_states import Action, Container, ContainerFacts

ALL_STATES = list(objects_pb2.TaskState.values())
OBSERVABLE = [s for s in ALL_STATES if s not in (ts.REMOVE, objects_pb2.ORPHANED)]
DESIRED = [ts.READY, ts.RUNNING, ts.COMPLETE, ts.SHUTDOWN, ts.REMOVE]
CONTAINERS = [ContainerFacts(c, container_id="" if c is Container.ABSENT else "c1", exit_code=0) for c in Container]
PAUSE = [ts.NEW, ts.PENDING, ts.ASSIGNED, ts.ACCEPTED, ts.READY]
WORK = [ts.PREPARING, ts.STARTING, ts.RUNNING]
TERMINAL = [ts.COMPLETE, ts.SHUTDOWN, ts.FAILED, ts.REJECTED]
EVERY_CASE = list(itertools.product(OBSERVABLE, DESIRED, CONTAINERS))


def facts(condition: Container, exit_code: int = 0) -> ContainerFacts:
    return ContainerFacts(condition, container_id="" if condition is Container.ABSENT else "c1", exit_code=exit_code)


@pytest.mark.parametrize("observed,desired,container", EVERY_CASE)
def test_observed_state_never_moves_back(observed, desired, container):
    step = ts.next_action(observed, desired, container)
    if step.target is not None:
        assert step.target > observed


@pytest.mark.parametrize("observed,desired,container", EVERY_CASE)
def test_a_started_container_is_never_started_again(observed, desired, container):
    step = ts.next_action(observed, desired, container)
    if step.action is Action.START:
        assert container.condition is Container.CREATED


@pytest.mark.parametrize("observed,desired,container", EVERY_CASE)
def test_container_work_needs_a_non_stop_desired_state(observed, desired, container):
    step = ts.next_action(observed, desired, container)
    if step.action in (Action.PREPARE, Action.START, Action.WAIT):
        assert desired < ts.SHUTDOWN


@pytest.mark.parametrize("observed,desired,container", list(itertools.product(TERMINAL, DESIRED, CONTAINERS)))
def test_terminal_tasks_hold_until_removed(observed, desired, container):
    step = ts.next_action(observed, desired, container)
    if desired == ts.REMOVE:
        assert step.action is (Action.REMOVE if container.exists else Action.FORGET)
    else:
        assert step == ts.HOLD


@pytest.mark.parametrize("observed,container", list(itertools.product(PAUSE + WORK, CONTAINERS)))
@pytest.mark.parametrize("desired", [ts.SHUTDOWN, ts.REMOVE])
def test_stop_wins_over_everything_not_terminal(observed, desired, container):
    assert ts.next_action(observed, desired, container) == ts.Step(Action.SHUTDOWN, ts.SHUTDOWN, "shutdown")


@pytest.mark.parametrize("observed,desired,container", list(itertools.product(PAUSE, [ts.READY, ts.RUNNING, ts.COMPLETE], CONTAINERS)))
def test_pause_states_advance_only_below_the_desired_state(observed, desired, container):
    step = ts.next_action(observed, desired, container)
    if desired > observed:
        expected = ts.ACCEPTED if observed < ts.ACCEPTED else {ts.ACCEPTED: ts.PREPARING, ts.READY: ts.STARTING}[observed]
        assert (step.action, step.target) == (Action.ADVANCE, expected)
    else:
        assert step == ts.HOLD


@pytest.mark.parametrize("desired", [ts.READY, ts.RUNNING, ts.COMPLETE])
def test_work_states_may_pass_the_desired_state(desired):
    assert ts.next_action(ts.PREPARING, desired, facts(Container.ABSENT)) == ts.Step(Action.PREPARE, ts.READY, "prepared")
    assert ts.next_action(ts.STARTING, desired, facts(Container.CREATED)) == ts.Step(Action.START, ts.RUNNING, "started")
    assert ts.next_action(ts.RUNNING, desired, facts(Container.RUNNING)) == ts.Step(Action.WAIT, ts.COMPLETE, "finished")


@pytest.mark.parametrize(
    "observed,condition,expected",
    [
        (ts.PREPARING, Container.CREATED, (Action.ADVANCE, ts.READY)),  # created before a restart: adopt
        (ts.PREPARING, Container.RUNNING, (Action.ADVANCE, ts.READY)),
        (ts.PREPARING, Container.EXITED, (Action.ADVANCE, ts.READY)),
        (ts.STARTING, Container.ABSENT, (Action.FAIL, ts.FAILED)),
        (ts.STARTING, Container.RUNNING, (Action.AWAIT_HEALTH, ts.RUNNING)),  # started before: health left
        (ts.STARTING, Container.EXITED, (Action.ADVANCE, ts.RUNNING)),  # ... and already done: then FINISH
        (ts.RUNNING, Container.EXITED, (Action.FINISH, None)),
        (ts.RUNNING, Container.ABSENT, (Action.FAIL, ts.FAILED)),
        (ts.RUNNING, Container.CREATED, (Action.FAIL, ts.FAILED)),
    ],
)
def test_the_container_overrides_work_steps(observed, condition, expected):
    step = ts.next_action(observed, ts.RUNNING, facts(condition))
    assert (step.action, step.target) == expected
    if step.action is Action.FAIL:
        assert step.error


def test_errors_reject_before_starting_and_fail_after():
    for state in OBSERVABLE:
        assert ts.failure_state(state) == (ts.REJECTED if state < ts.STARTING else ts.FAILED)


def test_exit_codes():
    assert ts.exit_outcome(0) == (ts.COMPLETE, "")
    assert ts.exit_outcome(3) == (ts.FAILED, "task: non-zero exit (3)")
    assert ts.exit_outcome(137) == (ts.FAILED, "task: non-zero exit (137)")


def walk(desired: int, container_exit: int = 0) -> list[int]:
    """Drive the machine with a pretend container until it holds; return the states recorded."""
    observed, condition, recorded = ts.ASSIGNED, Container.ABSENT, []
    for _ in range(20):
        step = ts.next_action(observed, desired, facts(condition, container_exit))
        if step.action in (Action.HOLD, Action.FORGET):
            return recorded
        if step.action is Action.PREPARE:
            condition = Container.CREATED
        elif step.action is Action.START:
            condition = Container.RUNNING
        elif step.action is Action.WAIT:
            condition = Container.EXITED
            observed = ts.exit_outcome(container_exit)[0]
            recorded.append(observed)
            continue
        elif step.action is Action.REMOVE:
            condition = Container.ABSENT
            continue
        observed = step.target
        recorded.append(observed)
    raise AssertionError("the machine never settled")


def test_walks_from_assigned():
    base = [ts.ACCEPTED, ts.PREPARING, ts.READY]
    assert walk(ts.READY) == base  # prepared, then waits to be raised to RUNNING
    assert walk(ts.RUNNING) == base + [ts.STARTING, ts.RUNNING, ts.COMPLETE]
    assert walk(ts.RUNNING, container_exit=2) == base + [ts.STARTING, ts.RUNNING, ts.FAILED]
    assert walk(ts.SHUTDOWN) == [ts.SHUTDOWN]
