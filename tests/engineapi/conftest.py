"""Engine API fixtures: real swarmpyd processes, driven through their docker.sock by the real docker CLI
(the `docker` on PATH, 28.x on this kind of machine) and by docker-py.

An `EngineApiDaemon` is tests.integration's SwarmDaemon (process, teardown, container cleanup) whose
swarm is made through the Engine API rather than the swarmpy CLI. Its Engine API socket is
docker.sock beside its swarmpy socket, swarmpyd's default.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import SwarmDaemon

DOCKER_CLI_TIMEOUT = 90.0


@dataclass(frozen=True)
class DockerResult:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"docker {' '.join(self.args)} -> exit {self.code}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def docker_cli_path() -> str:
    path = shutil.which("docker")
    if path is None:
        pytest.fail("the docker CLI is not on PATH: these tests drive swarmpy with the real docker CLI")
    return path


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self):
        return json.loads(self.body)


class EngineApiDaemon(SwarmDaemon):
    @property
    def api_socket(self) -> Path:
        return self.socket_path.parent / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.api_socket}"

    def start(self) -> None:
        super().start()
        from tests.integration.conftest import wait_until

        wait_until(self.api_socket.exists, what=f"{self.api_socket} to appear", details=self.log_tail)

    def docker_cli(self, *args: str, timeout: float = DOCKER_CLI_TIMEOUT, stdin: str | None = None) -> DockerResult:
        env = dict(os.environ, DOCKER_HOST=self.docker_host)
        env.pop("DOCKER_CONTEXT", None)
        completed = subprocess.run([docker_cli_path(), *args], env=env, capture_output=True, text=True,
                                   timeout=timeout, input=stdin)
        return DockerResult(tuple(args), completed.returncode, completed.stdout, completed.stderr)

    def docker_ok(self, *args: str, timeout: float = DOCKER_CLI_TIMEOUT, stdin: str | None = None) -> DockerResult:
        result = self.docker_cli(*args, timeout=timeout, stdin=stdin)
        assert result.code == 0, f"{result}\n{self.log_tail()}"
        return result

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        connection = UnixHTTPConnection(str(self.api_socket))
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Answer(response.status, response.headers, response.read())
        finally:
            connection.close()

    def docker_init(self) -> DockerResult:
        result = self.docker_ok("swarm", "init", "--advertise-addr", "127.0.0.1",
                                "--listen-addr", f"127.0.0.1:{self.listen_port}")
        self.node_id = self.docker_ok("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
        return result


@pytest.fixture(scope="session")
def docker(busybox_image):
    from tests.conftest import docker_client

    client = docker_client()
    yield client
    client.close()


def _started(workdir: Path, docker) -> EngineApiDaemon:
    daemon = EngineApiDaemon(workdir, docker)
    try:
        daemon.start()
    except BaseException:
        daemon.teardown()
        raise
    return daemon


@pytest.fixture(scope="module")
def manager(docker, tmp_path_factory) -> EngineApiDaemon:
    """A swarmpyd made a single-manager swarm with `docker swarm init`, for a whole module."""
    daemon = _started(tmp_path_factory.mktemp("eapi"), docker)
    try:
        daemon.docker_init()
        yield daemon
    finally:
        daemon.teardown()


@pytest.fixture
def bare(docker, tmp_path) -> EngineApiDaemon:
    """A started swarmpyd in no swarm."""
    daemon = _started(tmp_path, docker)
    try:
        yield daemon
    finally:
        daemon.teardown()


@pytest.fixture
def image(busybox_image) -> str:
    return busybox_image
