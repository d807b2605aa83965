"""Golden output: the docker CLI's tables against swarmpy match, line by line (IDs, hostnames and times
masked), what the same CLI prints against the engine's own Swarm mode for the same steps.

The engine is put into Swarm mode only while holding /tmp/docker-swarm.lock, and left as found
(`docker swarm leave --force`, `docker network rm docker_gwbridge`). Where another session holds the
engine in its own Swarm mode when the lock is free (it should not), the comparison cannot be made
here and the test says so."""

from __future__ import annotations

import fcntl
import re
import time

import pytest

from tests.integration.conftest import wait_until

from .conftest import DockerResult, EngineApiDaemon

pytestmark = pytest.mark.docker

SWARM_LOCK = "/tmp/docker-swarm.lock"
LOCK_WAIT = 600.0
_ID = re.compile(r"\b[0-9a-z]{25}\b|\b[0-9a-z]{12}\b")
_AGO = re.compile(r"(Running|Preparing|Starting|Assigned|Pending|Ready|Shutdown) (about a minute|less than a second|\d+ \w+) ago")
_SPACES = re.compile(r" {2,}")


def _masked(text: str, hostnames: list[str]) -> list[str]:
    # IDs first, and hostnames only as whole words: a short hostname ("vm") also occurs inside random IDs.
    text = _AGO.sub(r"\1 AGO", _ID.sub("ID", text))
    for hostname in hostnames:
        text = re.sub(rf"(?<![0-9A-Za-z]){re.escape(hostname)}(?![0-9A-Za-z])", "HOST", text)
    return [_SPACES.sub("  ", line.rstrip()) for line in text.splitlines()]


class EngineTarget:
    """The CLI pointed at the engine's own socket (its own Swarm mode)."""

    def __init__(self, helper: EngineApiDaemon) -> None:
        self._helper = helper

    def docker_ok(self, *args: str) -> DockerResult:
        import os
        import subprocess

        env = dict(os.environ, DOCKER_HOST="unix:///var/run/docker.sock")
        done = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (args, done.stderr)
        return DockerResult(tuple(args), done.returncode, done.stdout, done.stderr)


def _steps(target, image: str) -> dict[str, list[str]]:
    name = "golden-web"
    target.docker_ok("service", "create", "-d", "--name", name, "--replicas", "2", "--label", "tier=front",
                     "--no-resolve-image", image, "sleep", "1d")
    wait_until(lambda: "2/2" in target.docker_ok("service", "ls", "--filter", f"name={name}").stdout, timeout=90,
               what=f"{name} at 2/2")
    time.sleep(1.5)
    outputs = {
        "node ls": target.docker_ok("node", "ls").stdout,
        "service ls": target.docker_ok("service", "ls", "--filter", f"name={name}").stdout,
        "service ps": target.docker_ok("service", "ps", name).stdout,
        "service inspect --pretty": target.docker_ok("service", "inspect", "--pretty", name).stdout,
        "service inspect format": target.docker_ok("service", "inspect", "--format",
                                                   "{{.Spec.Mode}} {{.Spec.Labels}} {{.Spec.TaskTemplate.ContainerSpec.Args}}", name).stdout,
    }
    target.docker_ok("service", "scale", "-d", f"{name}=1")
    wait_until(lambda: "1/1" in target.docker_ok("service", "ls", "--filter", f"name={name}").stdout, timeout=90,
               what=f"{name} at 1/1")
    outputs["service ls after scale"] = target.docker_ok("service", "ls", "--filter", f"name={name}").stdout
    target.docker_ok("service", "rm", name)
    return outputs


def test_tables_match_the_engines_swarm_mode(manager: EngineApiDaemon, image: str):
    import socket

    ours = _steps(manager, image)
    with open(SWARM_LOCK, "w") as lock:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{SWARM_LOCK} stayed held by another session for {LOCK_WAIT:.0f} s")
                time.sleep(1)
        engine = EngineTarget(manager)
        state = engine.docker_ok("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
        if state != "inactive":
            pytest.fail(f"the engine is in Swarm mode ({state}) though nobody holds {SWARM_LOCK}: cannot compare here")
        engine.docker_ok("swarm", "init", "--advertise-addr", "127.0.0.1")
        try:
            theirs = _steps(engine, image)
        finally:
            import subprocess

            subprocess.run(["docker", "-H", "unix:///var/run/docker.sock", "swarm", "leave", "--force"], capture_output=True)
            subprocess.run(["docker", "-H", "unix:///var/run/docker.sock", "network", "rm", "docker_gwbridge"], capture_output=True)
    assert "golden-web" in ours["service ls"] and "replicated" in ours["service ls"], ours
    assert len(_masked(ours["service ps"], [])) == 3, ours["service ps"]  # heading and two tasks
    hostnames = [manager.hostname, socket.gethostname()]
    for step in ours:
        assert _masked(ours[step], hostnames) == _masked(theirs[step], hostnames), \
            f"{step}:\n--- swarmpy\n{ours[step]}\n--- engine\n{theirs[step]}"
