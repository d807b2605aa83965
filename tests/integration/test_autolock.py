"""`swarm update` and autolock on a real daemon, from the CLI: settings applied, a restarted manager
locked until the right key is given, wrong and malformed keys refused with nothing changed, key rotation."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import wait_until

pytestmark = pytest.mark.docker

LOCKED = ('Swarm is encrypted and needs to be unlocked before it can be used. Please use "swarmpy swarm unlock"'
          " to unlock it.")


def unlock(daemon, key: str):
    return subprocess.run([sys.executable, "-m", "swarmpy.cli.main", "swarm", "unlock"], input=key + "\n",
                          capture_output=True, text=True, env=dict(os.environ, SWARMPY_HOST=daemon.host), timeout=120)


def cluster_spec(daemon) -> dict:
    from swarmpy.api import control_pb2

    return daemon.control().GetCluster(control_pb2.GetClusterRequest(), timeout=10).cluster.spec


def test_swarm_update_changes_only_what_is_given(own_daemon):
    before = cluster_spec(own_daemon)
    assert own_daemon.ok("swarm", "update", "--snapshot-interval", "50", "--max-snapshots", "2",
                         "--task-history-limit", "3", "--dispatcher-heartbeat", "7s").stdout == "Swarm updated.\n"
    after = cluster_spec(own_daemon)
    assert (after.raft.snapshot_interval, after.raft.keep_old_snapshots) == (50, 2)
    assert after.orchestration.task_history_retention_limit == 3
    assert after.dispatcher.heartbeat_period == 7_000_000_000
    assert after.ca_config.node_cert_expiry == before.ca_config.node_cert_expiry
    refused = own_daemon.cli("swarm", "update", "--external-ca", "protocol=cfssl,url=https://ca.example")
    assert refused.code == 125 and "external CAs are not supported" in refused.stderr
    assert own_daemon.cli("swarm", "update", "--snapshot-interval", "x").code == 125
    # the snapshot interval is applied: 160 writes make three snapshots, and the two older are kept
    from swarmpy.api import control_pb2, objects_pb2

    for i in range(160):
        spec = objects_pb2.ConfigSpec(annotations=objects_pb2.Annotations(name=f"c{i}"), data=b"x")
        own_daemon.control().CreateConfig(control_pb2.CreateConfigRequest(spec=spec), timeout=10)
    snap_dir = own_daemon.data_dir / "raft" / "snap"
    wait_until(lambda: len([n for n in os.listdir(snap_dir) if n.endswith(".snap")]) == 3,
               what="snapshots taken at the new interval, the older kept")


def test_autolock_locks_a_restarted_manager_until_the_right_key(own_daemon, tmp_path):
    assert own_daemon.cli("swarm", "unlock-key").stderr.strip() == "no unlock key is set"
    enabled = own_daemon.ok("swarm", "update", "--autolock=true").stdout
    assert enabled.startswith("Swarm updated.\nTo unlock a swarm manager after it restarts")
    key = own_daemon.ok("swarm", "unlock-key", "-q").stdout.strip()
    assert key.startswith("SWMKEY-1-") and key in enabled
    path = tmp_path / "s"
    path.write_text("kept-across-the-lock")
    own_daemon.ok("secret", "create", "locked_one", str(path))

    wait_until(lambda: _wrapped_by(own_daemon, key), what="the TLS and Raft keys locked")
    node_pem = (own_daemon.data_dir / "certificates" / "swarm-node.pem").read_text()
    assert "ENCRYPTED PRIVATE KEY" in node_pem and "BEGIN PRIVATE KEY" not in node_pem
    own_daemon.stop()
    own_daemon.start()
    refused = own_daemon.cli("secret", "ls")
    assert refused.code == 1 and refused.stderr.strip() == f"Error response from daemon: {LOCKED}"
    malformed = unlock(own_daemon, "SWMKEY-2-nope")
    assert malformed.returncode == 1 and "invalid unlock key: it must start with SWMKEY-1-" in malformed.stderr
    wrong = unlock(own_daemon, "SWMKEY-1-" + "A" * 43)
    assert wrong.returncode == 1 and "invalid key" in wrong.stderr
    assert own_daemon.cli("secret", "ls").code == 1  # still locked: nothing changed
    right = unlock(own_daemon, key)
    assert right.returncode == 0, right.stderr
    wait_until(lambda: "locked_one" in own_daemon.cli("secret", "ls").stdout, what="the unlocked manager to serve")
    assert unlock(own_daemon, key).stderr.strip() == "Error: swarm is not locked"

    rotated = own_daemon.ok("swarm", "unlock-key", "--rotate").stdout
    assert rotated.startswith("Successfully rotated manager unlock key.\n")
    new_key = own_daemon.ok("swarm", "unlock-key", "-q").stdout.strip()
    assert new_key != key and new_key in rotated
    # the node re-wraps its key with the new one; then the old key no longer opens it
    wait_until(lambda: _wrapped_by(own_daemon, new_key), what="the Raft key re-wrapped with the rotated key")
    own_daemon.stop()
    own_daemon.start()
    assert "invalid key" in unlock(own_daemon, key).stderr
    assert unlock(own_daemon, new_key).returncode == 0
    wait_until(lambda: own_daemon.cli("secret", "ls").code == 0, what="the manager to serve again")

    own_daemon.ok("swarm", "update", "--autolock=false")
    wait_until(lambda: _wrapped_by(own_daemon, None), what="the Raft key back with the TLS key")
    own_daemon.stop()
    own_daemon.start()
    wait_until(lambda: own_daemon.cli("secret", "ls").code == 0, what="an unlocked restart")


def _wrapped_by(daemon, key) -> bool:
    from swarmpy import autolock
    from swarmpy.ca.keystore import _load

    credentials = _load(daemon.data_dir)
    if key is None:
        return not credentials.raft_dek_wrapped and bool(credentials.raft_dek) and not credentials.key_pem_locked
    try:
        autolock.unwrap(credentials.raft_dek_wrapped, key)
    except autolock.WrongUnlockKey:
        return False
    return not credentials.raft_dek and bool(credentials.key_pem_locked)
