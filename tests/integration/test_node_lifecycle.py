"""Destructive node operations, each on its own daemon: draining the only node, restarting swarmpyd."""

from __future__ import annotations

import re
import time

import pytest

from .conftest import wait_until

pytestmark = pytest.mark.docker

# A sole manager elects itself at once on restart; the bound is generous for a loaded machine.
LEADER_AGAIN_TIMEOUT = 40


def rows_of(daemon, service: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", row.strip())
            for row in daemon.ok("service", "ps", "--no-trunc", service).stdout.splitlines()[1:]]


def test_drain_sends_tasks_pending_and_active_brings_them_back(own_daemon, image):
    own_daemon.ok("service", "create", "-d", "--name", "drained", "--replicas", "2", "--stop-grace-period", "1s",
                  image, "sleep", "1000")
    own_daemon.wait_running("drained", 2)

    assert own_daemon.ok("node", "update", "--availability", "drain", own_daemon.hostname).stdout.strip() \
        == own_daemon.hostname
    wait_until(lambda: not own_daemon.containers("drained"), what="the drained node's containers to stop",
               details=lambda: str(own_daemon.cli("service", "ps", "--no-trunc", "drained")))

    def pending():
        current = [row for row in rows_of(own_daemon, "drained") if not row[1].startswith("\\_")]
        return current if len(current) == 2 and all(row[4].startswith("Pending") for row in current) else None

    for row in wait_until(pending, what="both slots pending"):
        assert row[3] == "Running"  # desired: managers still want it, nowhere to put it
        assert "no suitable node" in row[5], row
    node_row = own_daemon.ok("node", "ls").stdout.splitlines()[1].split()
    assert node_row[3:5] == ["Ready", "Drain"], node_row

    own_daemon.ok("node", "update", "--availability", "active", "self")
    own_daemon.wait_running("drained", 2)
    own_daemon.wait_listed(r"\sdrained\s+replicated\s+2/2\s")


def test_restarted_daemon_adopts_its_containers(own_daemon, image):
    own_daemon.ok("service", "create", "-d", "--name", "durable", "--replicas", "2", "--stop-grace-period", "1s",
                  image, "sleep", "1000")
    before = {c.id: c.attrs["State"]["StartedAt"] for c in own_daemon.wait_running("durable", 2)}
    tasks_before = {row[0] for row in rows_of(own_daemon, "durable")}

    assert own_daemon.stop() == 0, own_daemon.log_tail()
    assert {c.id for c in own_daemon.containers("durable")} == set(before), "stopping swarmpyd stopped containers"

    own_daemon.start()

    def ready_leader():
        result = own_daemon.cli("node", "ls")
        if result.code != 0 or len(result.stdout.splitlines()) != 2:
            return None
        return result.stdout.splitlines()[1].split()

    node_row = wait_until(ready_leader, timeout=LEADER_AGAIN_TIMEOUT, what="the node to be a Ready leader again",
                          details=own_daemon.log_tail)
    wait_until(lambda: ready_leader()[3] == "Ready", timeout=LEADER_AGAIN_TIMEOUT,
               what="the node to report Ready again", details=own_daemon.log_tail)
    node_row = ready_leader()
    assert node_row[:6] == [own_daemon.node_id, "*", own_daemon.hostname, "Ready", "Active", "Leader"], node_row

    own_daemon.wait_listed(r"\sdurable\s+replicated\s+2/2\s")
    # Adopted, not restarted: the same containers, started when they first started, for a while.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        after = {c.id: c.attrs["State"]["StartedAt"] for c in own_daemon.containers("durable")}
        assert after == before
        time.sleep(0.5)
    rows = rows_of(own_daemon, "durable")
    assert {row[0] for row in rows} == tasks_before, rows
    assert all(row[4].startswith("Running") for row in rows), rows
