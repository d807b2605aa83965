"""Autolock through the Engine API with the real docker CLI: swarm init --autolock prints the key,
unlock-key (-q, --rotate), a restarted manager is locked until `docker swarm unlock` gets the key, a
wrong key is refused with docker's words, and swarm update of anything else keeps autolock on."""

from __future__ import annotations

import re

import pytest

from tests.engineapi.conftest import EngineApiDaemon
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.docker


def _state(daemon: EngineApiDaemon) -> str:
    return daemon.docker_ok("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()


def test_autolock_over_the_engine_api(bare: EngineApiDaemon):
    init = bare.docker_ok("swarm", "init", "--autolock", "--advertise-addr", "127.0.0.1",
                          "--listen-addr", f"127.0.0.1:{bare.listen_port}").stdout
    key = bare.docker_ok("swarm", "unlock-key", "-q").stdout.strip()
    assert re.fullmatch(r"SWMKEY-1-\S+", key) and key in init
    assert "docker swarm unlock" in init
    inspected = bare.request("GET", "/v1.41/swarm").json()
    assert inspected["Spec"]["EncryptionConfig"] == {"AutoLockManagers": True}
    # the CLI sends back the whole spec it read: an unrelated change keeps autolock on
    bare.docker_ok("swarm", "update", "--task-history-limit", "4")
    assert bare.docker_ok("swarm", "unlock-key", "-q").stdout.strip() == key
    rotated = bare.docker_ok("swarm", "unlock-key", "--rotate", "-q").stdout.strip()
    assert rotated != key and rotated.startswith("SWMKEY-1-")
    assert bare.docker_cli("swarm", "unlock", stdin=rotated + "\n").stderr.strip() == "Error: swarm is not locked"
    not_locked = bare.request("POST", "/v1.41/swarm/unlock", body='{"UnlockKey": "%s"}' % rotated,
                              headers={"Content-Type": "application/json"})
    assert (not_locked.status, not_locked.json()) == (409, {"message": "swarm is not locked"})

    bare.stop()
    bare.start()
    wait_until(lambda: _state(bare) == "locked", what="the restarted manager to be locked")
    wrong = bare.docker_cli("swarm", "unlock", stdin="SWMKEY-1-" + "A" * 43 + "\n")
    assert wrong.code == 1 and "swarm could not be unlocked: invalid key provided" in wrong.stderr
    assert _state(bare) == "locked"
    bare.docker_ok("swarm", "unlock", stdin=rotated + "\n")
    wait_until(lambda: _state(bare) == "active", what="the manager to be active after unlock")
    bare.docker_ok("node", "ls")

    bare.docker_ok("swarm", "update", "--autolock=false")
    assert bare.docker_cli("swarm", "unlock-key").stderr.strip() == "no unlock key is set"  # docker's own words
