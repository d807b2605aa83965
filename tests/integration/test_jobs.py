"""Jobs on a real node: tasks run to completion and are not restarted, `--max-concurrent` bounds how
many run at once (sampled from the engine), `service ls` shows docker's `(n/m completed)`, `update
--force` runs the job again, and docker's refusals for job flags."""

from __future__ import annotations

import re
import time

import pytest

from .conftest import wait_until
from .test_bad_input import FLAG_ERROR, assert_rejected
from .test_container_flags import _remove

pytestmark = pytest.mark.docker

IMAGE = "swarmpy-test/busybox"


def test_a_replicated_job_completes_within_its_concurrency_and_reruns_on_force(shared_daemon):
    daemon = shared_daemon
    daemon.ok("service", "create", "-d", "--name", "batch", "--mode", "replicated-job", "--replicas", "4",
              "--max-concurrent", "2", IMAGE, "sleep", "2")
    most = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        most = max(most, len(daemon.containers("batch")))
        if "(4/4 completed)" in daemon.ok("service", "ls", "--filter", "name=batch").stdout:
            break
        time.sleep(0.2)
    listing = daemon.ok("service", "ls", "--filter", "name=batch").stdout
    assert re.search(r"\sbatch\s+replicated job\s+0/0 \(4/4 completed\)\s", listing), listing
    assert most == 2, f"at most {most} tasks ran at once"

    # completed tasks stay completed: nothing new is started
    time.sleep(2)
    rows = daemon.ok("service", "ps", "--format", "{{.Name}} {{.CurrentState}}", "batch").stdout.splitlines()
    assert len(rows) == 4 and all(" Complete " in row + " " for row in rows), rows
    assert daemon.containers("batch") == []

    daemon.ok("service", "update", "-d", "--force", "batch")
    daemon.wait_listed(r"\sbatch\s+replicated job\s+\d/\d \(4/4 completed\)", timeout=60)
    rows = daemon.ok("service", "ps", "--format", "{{.Name}} {{.CurrentState}}", "batch").stdout.splitlines()
    assert sum(1 for row in rows if "Complete" in row) == 8, rows  # two runs of four
    inspected = daemon.ok("service", "inspect", "-f", "{{json .Spec.Mode}}", "batch").stdout
    assert inspected == '{"ReplicatedJob":{"MaxConcurrent":2,"TotalCompletions":4}}\n'
    assert daemon.ok("service", "scale", "-d", "batch=5").stdout == "batch scaled to 5\n"  # a new run of 5
    daemon.wait_listed(r"\sbatch\s+replicated job\s+\d/\d \(5/5 completed\)", timeout=60)
    _remove(daemon, "batch")


def test_a_failing_job_task_follows_the_restart_policy(shared_daemon):
    daemon = shared_daemon
    daemon.ok("service", "create", "-d", "--name", "flaky", "--mode", "replicated-job",
              "--restart-max-attempts", "1", "--restart-delay", "100ms", IMAGE, "false")

    def given_up():
        rows = daemon.ok("service", "ps", "--format", "{{.CurrentState}}", "flaky").stdout.splitlines()
        return rows if len(rows) == 2 and all(row.startswith("Failed") for row in rows) else None

    wait_until(given_up, timeout=40, what="one restart of the failed job task, then no more")
    time.sleep(1.5)
    assert len(daemon.ok("service", "ps", "-q", "flaky").stdout.split()) == 2
    assert "(0/1 completed)" in daemon.ok("service", "ls", "--filter", "name=flaky").stdout
    _remove(daemon, "flaky")


def test_a_global_job_runs_once_on_the_node(shared_daemon):
    daemon = shared_daemon
    daemon.ok("service", "create", "--name", "gjob", "--mode", "global-job", IMAGE, "true")  # waits for completion
    listing = daemon.ok("service", "ls", "--filter", "name=gjob").stdout
    assert re.search(r"\sgjob\s+global job\s+0/0 \(1/1 completed\)", listing), listing
    _remove(daemon, "gjob")


@pytest.mark.parametrize("flags, mentions", [
    (("--mode", "replicated-job", "--replicas", "2", "--max-concurrent", "3"), ('"3"', "--max-concurrent", "(2)")),
    (("--mode", "replicated-job", "--update-delay", "1s"), ("--update-delay", "not supported for jobs")),
    (("--mode", "global-job", "--rollback-parallelism", "2"), ("--rollback-parallelism", "not supported for jobs")),
    (("--max-concurrent", "2"), ("max-concurrent", "replicated-job")),
    (("--mode", "global-job", "--replicas", "2"), ("replicas",)),
])
def test_job_flag_refusals(shared_daemon, flags, mentions):
    assert_rejected(shared_daemon, ("service", "create", "-d", "--name", "badjob", *flags, IMAGE, "true"),
                    mentions, FLAG_ERROR)
