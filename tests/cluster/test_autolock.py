"""Secrets and autolock on 3 managers and a worker (real daemons): a secret reaches only the node that
runs a task using it and is in clear in no manager's data dir; with autolock a restarted manager stays
locked and refuses control calls until the right key, then rejoins; a rotated key replaces the old one
on every manager; the service keeps running throughout."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from swarmpy import autolock
from swarmpy.ca.keystore import _load
from swarmpy.worker.executor.task_files import DEFAULT_ROOT

from .conftest import form_cluster, ok_despite_elections, wait_running
from ..integration.conftest import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

LOCKED = ('Swarm is encrypted and needs to be unlocked before it can be used. Please use "swarmpy swarm unlock"'
          " to unlock it.")


def unlock(daemon, key: str):
    return subprocess.run([sys.executable, "-m", "swarmpy.cli.main", "swarm", "unlock"], input=key + "\n",
                          capture_output=True, text=True, env=dict(os.environ, SWARMPY_HOST=daemon.host), timeout=120)


def wrapped_by(daemon, key: str) -> bool:
    credentials = _load(daemon.data_dir)
    try:
        autolock.unwrap(credentials.raft_dek_wrapped, key)
    except (autolock.WrongUnlockKey, ValueError):
        return False
    return not credentials.raft_dek


def clear_copies(daemon, value: bytes) -> list[str]:
    found = []
    for root, _, names in os.walk(daemon.data_dir):
        for name in names:
            path = Path(root) / name
            try:
                if value in path.read_bytes():
                    found.append(str(path))
            except OSError:
                pass
    return found


def test_secret_delivery_and_autolock_on_three_managers(docker, tmp_path, image):
    cluster = form_cluster(tmp_path, docker, managers=3, workers=1)
    try:
        m1, m2, m3, w1 = cluster["m1"], cluster["m2"], cluster["m3"], cluster["w1"]
        value = ("cluster-secret-" + uuid.uuid4().hex).encode()
        (tmp_path / "value").write_bytes(value)
        ok_despite_elections(m1, "secret", "create", "shared", str(tmp_path / "value"))
        ok_despite_elections(m1, "service", "create", "-d", "--name", "holder", "--constraint", "node.role==worker",
                             "--secret", "shared", "--stop-grace-period", "1s", image, "sleep", "100000")
        (container,) = wait_running(cluster, "holder", 1)
        assert container.labels["com.docker.swarm.node.id"] == w1.node_id
        assert container.exec_run(["cat", "/run/secrets/shared"]).output == value
        for manager in (m1, m2, m3):  # no task there: nothing delivered, nothing written
            assert not (Path(DEFAULT_ROOT) / manager.node_id).exists() or not any((Path(DEFAULT_ROOT) / manager.node_id).iterdir())
            assert clear_copies(manager, value) == []

        ok_despite_elections(m1, "swarm", "update", "--autolock=true")
        key = m1.ok("swarm", "unlock-key", "-q").stdout.strip()
        wait_until(lambda: all(wrapped_by(m, key) for m in (m1, m2, m3)), what="every manager's Raft key locked")

        m3.restart()
        refused = m3.cli("node", "ls")
        assert refused.code == 1 and refused.stderr.strip() == f"Error response from daemon: {LOCKED}"
        assert "invalid key" in unlock(m3, "SWMKEY-1-" + "B" * 43).stderr
        assert m3.cli("node", "ls").code == 1
        assert unlock(m3, key).returncode == 0
        wait_until(lambda: m3.cli("node", "ls").code == 0, what="m3 unlocked and serving")

        ok_despite_elections(m1, "swarm", "unlock-key", "--rotate")
        new_key = m1.ok("swarm", "unlock-key", "-q").stdout.strip()
        assert new_key != key
        wait_until(lambda: all(wrapped_by(m, new_key) for m in (m1, m2, m3)), what="every manager re-wrapped")
        m2.restart()
        assert "invalid key" in unlock(m2, key).stderr  # the old key no longer opens it
        assert unlock(m2, new_key).returncode == 0
        wait_until(lambda: m2.cli("node", "ls").code == 0, what="m2 unlocked and serving")

        # the service ran throughout, on the same container
        assert [c.id for c in wait_running(cluster, "holder", 1)] == [container.id]
        for manager in (m1, m2, m3):
            assert clear_copies(manager, value) == []
    finally:
        cluster.teardown()
