"""Health checks and host-mode ports from the CLI, on one real node: `service ps` shows a task Starting
until its container is healthy, an unhealthy container fails its task with swarm's error and the restart
policy replaces it, `service update` changes the check, bad health flags change nothing, and host-mode
ports show in `service ps` (the engine's pick for a published port left out) as docker shows them."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import free_port, wait_until

pytestmark = pytest.mark.docker

UNHEALTHY_EXIT = "task: non-zero exit (137): dockerexec: unhealthy container"


def create(daemon, name: str, image: str, *args: str, options: tuple[str, ...] = ()) -> None:
    daemon.ok("service", "create", "-d", "--name", name, "--stop-grace-period", "1s", *options, image, *args)


def ps(daemon, service: str) -> str:
    return daemon.ok("service", "ps", "--no-trunc", service).stdout


def test_a_task_shows_starting_until_its_container_is_healthy(shared_daemon, image):
    daemon = shared_daemon
    create(daemon, "hc-slow", image, "sh", "-c", "sleep 4; touch /tmp/ok; exec sleep 1000",
           options=("--health-cmd", "test -f /tmp/ok", "--health-interval", "300ms", "--health-start-period", "30s"))
    containers = daemon.wait_running("hc-slow", 1)
    assert containers[0].attrs["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "test -f /tmp/ok"]
    assert re.search(r"Running\s+Starting (less than a second|\d+ seconds?) ago", ps(daemon, "hc-slow")), ps(daemon, "hc-slow")
    daemon.wait_listed(r"hc-slow\s+replicated\s+0/1")  # a starting task is not a running replica yet
    wait_until(lambda: re.search(r"Running\s+Running ", ps(daemon, "hc-slow")), timeout=30,
               what="the task to be Running once healthy", details=lambda: ps(daemon, "hc-slow"))
    daemon.wait_listed(r"hc-slow\s+replicated\s+1/1")
    containers[0].reload()
    assert containers[0].attrs["State"]["Health"]["Status"] == "healthy"
    daemon.ok("service", "rm", "hc-slow")


def test_an_unhealthy_task_fails_and_is_replaced(shared_daemon, image):
    daemon = shared_daemon
    create(daemon, "hc-bad", image, "sleep", "1000",
           options=("--health-cmd", "exit 1", "--health-interval", "300ms", "--health-retries", "1",
                    "--restart-delay", "1s"))
    listing = wait_until(lambda: (lambda out: out if out.count(UNHEALTHY_EXIT) >= 1 and len(out.splitlines()) >= 3 else None)(ps(daemon, "hc-bad")),
                         timeout=60, what="a task failed as unhealthy and its replacement",
                         details=lambda: ps(daemon, "hc-bad"))
    assert re.search(rf'Shutdown\s+Failed \d+ seconds? ago\s+"{re.escape(UNHEALTHY_EXIT)}"', listing), listing
    daemon.ok("service", "rm", "hc-bad")


def test_service_update_changes_and_turns_off_the_check(shared_daemon, image):
    daemon = shared_daemon
    create(daemon, "hc-upd", image, "sleep", "1000", options=("--health-cmd", "true", "--health-interval", "1s"))
    daemon.wait_running("hc-upd", 1)

    def spec():
        inspected = json.loads(daemon.ok("service", "inspect", "hc-upd").stdout)
        return inspected[0]["Spec"]["TaskTemplate"]["ContainerSpec"]["Healthcheck"]

    assert spec() == {"Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_000}
    daemon.ok("service", "update", "-d", "--health-retries", "5", "--health-timeout", "2s", "hc-upd")
    assert spec() == {"Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_000, "Timeout": 2_000_000_000, "Retries": 5}
    daemon.ok("service", "update", "-d", "--no-healthcheck", "hc-upd")
    assert spec() == {"Test": ["NONE"]}

    def container_without_check():
        found = daemon.containers("hc-upd")
        return found if len(found) == 1 and found[0].attrs["Config"].get("Healthcheck", {}).get("Test") == ["NONE"] else None

    wait_until(container_without_check, timeout=60, what="the updated container with the check turned off",
               details=lambda: ps(daemon, "hc-upd"))
    daemon.ok("service", "rm", "hc-upd")


@pytest.mark.parametrize("flag,value,reason", [
    ("--health-interval", "0.5", 'time: missing unit in duration "0.5"'),
    ("--health-interval", "500us", "must be 0 (the default) or at least 1ms"),
    ("--health-timeout", "-1s", "duration cannot be negative"),
    ("--health-retries", "-2", "Retries in HealthConfig cannot be negative"),
])
def test_bad_health_flags_change_nothing(shared_daemon, image, flag, value, reason):
    daemon = shared_daemon
    if "hc-keep" not in daemon.ok("service", "ls").stdout:
        create(daemon, "hc-keep", image, "sleep", "1000")
    # Services and nodes, specs and versions (containers of earlier tests may still be going away).
    before = daemon.state()[:2]
    expected = f'invalid argument "{value}" for "{flag}" flag: {reason}'
    for command in (("service", "create", "--name", "hc-never", flag, value, image),
                    ("service", "update", flag, value, "hc-keep")):
        result = daemon.cli(*command)
        assert result.code == 125 and result.stderr.strip().splitlines() == [expected], result
    assert daemon.state()[:2] == before


def test_host_mode_ports_show_in_service_ps(shared_daemon, image):
    daemon = shared_daemon
    published = free_port()
    create(daemon, "ports-host", image, "sleep", "1000",
           options=("--publish", f"published={published},target=80,mode=host", "--publish", "mode=host,target=81"))
    container = daemon.wait_running("ports-host", 1)[0]
    picked = int(container.attrs["NetworkSettings"]["Ports"]["81/tcp"][0]["HostPort"])
    expected = f"*:{published}->80/tcp,*:{picked}->81/tcp"
    wait_until(lambda: expected in ps(daemon, "ports-host"), timeout=30, what=f"service ps to show {expected}",
               details=lambda: ps(daemon, "ports-host"))
    # docker's service ls lists ingress ports only: a host-mode port is each node's, shown per task.
    assert re.search(r"ports-host\s+replicated\s+1/1\s+\S+\s*$", daemon.ok("service", "ls").stdout, re.MULTILINE)
    daemon.ok("service", "rm", "ports-host")
