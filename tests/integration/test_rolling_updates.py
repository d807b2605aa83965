"""The tutorial's converging commands on one real node, typed without -d as a new user types them: each
returns and ends as docker's does; updates replace one task at a time by default; rollbacks."""

from __future__ import annotations

import datetime
import json
import threading

import pytest

from .test_services import create

pytestmark = pytest.mark.docker


def started_at(container) -> datetime.datetime:
    container.reload()
    return datetime.datetime.fromisoformat(container.attrs["State"]["StartedAt"][:26].rstrip("Z"))


def finished_at(container) -> datetime.datetime:
    container.reload()
    return datetime.datetime.fromisoformat(container.attrs["State"]["FinishedAt"][:26].rstrip("Z"))


def test_scale_up_and_down_without_detach_return_converged_even_after_an_update(shared_daemon, image):
    # Regression: the converge poll only counted tasks of the current spec version, so the tasks a scale
    # kept were never "up to date" and `service scale hw=3` hung at "2 out of 3 tasks".
    create(shared_daemon, "hw", image, "sleep", "1000")
    shared_daemon.wait_running("hw", 1)
    result = shared_daemon.ok("service", "scale", "hw=3", timeout=60)
    assert result.stdout.splitlines()[0] == "hw scaled to 3"
    assert "overall progress: 3 out of 3 tasks" in result.stdout
    assert result.stdout.splitlines()[-1] == "verify: Service hw converged"
    shared_daemon.ok("service", "update", "--env-add", "A=1", "hw", timeout=90)
    result = shared_daemon.ok("service", "scale", "hw=1", timeout=60)
    assert "overall progress: 1 out of 1 tasks" in result.stdout
    assert result.stdout.splitlines()[-1] == "verify: Service hw converged"
    shared_daemon.wait_running("hw", 1)


def test_update_with_no_update_flags_replaces_one_task_at_a_time(shared_daemon, image):
    # Regression: no --update-* flag meant no update config, read as parallelism 0: all stopped at once.
    create(shared_daemon, "onebyone", image, "sleep", "1000", options=("--replicas", "3"))
    shared_daemon.wait_running("onebyone", 3)
    result = shared_daemon.ok("service", "update", "--env-add", "A=1", "--update-monitor", "1s", "onebyone", timeout=90)
    assert result.stdout.splitlines()[-1] == "verify: Service onebyone converged"
    containers = shared_daemon.wait_running("onebyone", 3)
    assert all("A=1" in c.attrs["Config"]["Env"] for c in containers)
    # Stop-first, one at a time, read from the engine's own timestamps: in each slot the new container
    # starts only after the old one exited (sleep ignores SIGTERM, so that takes the 1 s grace; a
    # regression started the new one within it), and the next slot's old container is stopped only after
    # the previous slot's new one started.
    by_slot: dict[str, dict[bool, object]] = {}
    for container in shared_daemon.containers("onebyone", include_stopped=True):
        by_slot.setdefault(container.labels["com.docker.swarm.task.name"], {})["A=1" in container.attrs["Config"]["Env"]] = container
    slots = sorted(by_slot.values(), key=lambda pair: started_at(pair[True]))
    assert len(slots) == 3 and all(len(pair) == 2 for pair in slots), by_slot
    for pair in slots:
        assert started_at(pair[True]) >= finished_at(pair[False]), "a new container started beside its old one"
    for earlier, later in zip(slots, slots[1:]):
        assert finished_at(later[False]) >= started_at(earlier[True]), "two slots were replaced at once"


def test_rollback_without_detach_returns_to_the_previous_spec_as_docker_prints_it(shared_daemon, image):
    create(shared_daemon, "backagain", image, "sleep", "1000", options=("--replicas", "2"))
    shared_daemon.wait_running("backagain", 2)
    shared_daemon.ok("service", "update", "--args", "sleep 999", "--update-parallelism", "2", "backagain", timeout=90)
    result = shared_daemon.ok("service", "rollback", "backagain", timeout=90)
    lines = result.stdout.splitlines()
    assert lines[0] == "backagain"
    assert "rollback: manually requested rollback" in lines
    assert "overall progress: rolling back update: 2 out of 2 tasks" in lines
    assert lines[-1] == "verify: Service backagain converged"
    containers = shared_daemon.wait_running("backagain", 2)
    assert [c.attrs["Config"]["Cmd"] for c in containers] == [["sleep", "1000"]] * 2
    pretty = shared_daemon.ok("service", "inspect", "--pretty", "backagain").stdout
    assert "UpdateStatus:\n State:\t\trollback_completed\n" in pretty
    assert " Message:\trollback completed" in pretty and " Completed:" not in pretty


def test_rollback_of_a_service_never_updated_gives_swarmkits_refusal(shared_daemon, image):
    service_id = create(shared_daemon, "pristine", image, "sleep", "1000")
    result = shared_daemon.cli("service", "rollback", "pristine")
    assert result.code != 0
    assert f"service {service_id} does not have a previous spec" in result.stderr


def test_an_update_whose_health_check_fails_rolls_back_automatically_to_the_previous_spec(shared_daemon, image):
    daemon = shared_daemon
    create(daemon, "canary", image, "sleep", "1000",
           options=("--replicas", "2", "--health-cmd", "true", "--health-interval", "300ms"))
    daemon.wait_listed(r"canary\s+replicated\s+2/2")
    # The new spec's check never passes: the first new task goes unhealthy, fails, and with failure action
    # rollback the updater puts the previous spec back (rollback config: both slots at once).
    result = daemon.cli("service", "update", "--health-cmd", "false", "--health-retries", "1",
                        "--update-failure-action", "rollback", "--update-monitor", "2s",
                        "--rollback-parallelism", "0", "--rollback-monitor", "1s", "canary", timeout=120)
    assert "rollback: update rolled back due to failure or early termination of task" in result.stdout, result
    # docker's endings: an error naming the rollback, or "converged" when the rolled-back tasks were
    # already verified when the rollback completed; either way the command returned.
    assert ("service rolled back: rollback completed" in result.stderr) or \
        result.stdout.splitlines()[-1] == "verify: Service canary converged", result
    inspected = json.loads(daemon.ok("service", "inspect", "canary").stdout)[0]
    assert inspected["Spec"]["TaskTemplate"]["ContainerSpec"]["Healthcheck"]["Test"] == ["CMD-SHELL", "true"]
    assert inspected["UpdateStatus"]["State"] == "rollback_completed"
    assert inspected["UpdateStatus"]["Message"] == "rollback completed"
    daemon.wait_listed(r"canary\s+replicated\s+2/2")
    containers = daemon.wait_running("canary", 2)
    assert all(c.attrs["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "true"] for c in containers)


def test_start_first_update_keeps_every_replica_running(shared_daemon, image):
    daemon = shared_daemon
    create(daemon, "overlap", image, "sleep", "1000", options=("--replicas", "2", "--update-order", "start-first"))
    daemon.wait_listed(r"overlap\s+replicated\s+2/2")
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(len(daemon.containers("overlap")))
            done.wait(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = daemon.ok("service", "update", "--args", "sleep 999", "--update-monitor", "1s", "overlap", timeout=90)
    finally:
        done.set()
        sampler.join()
    assert result.stdout.splitlines()[-1] == "verify: Service overlap converged"
    assert samples and min(samples) >= 2, samples  # never below the replica count
    # The new task ran beside the old one (4 at a moment is possible: the old task of slot 1 still in its
    # stop grace period when slot 2's successor starts).
    assert max(samples) >= 3, samples
