"""One-host integration fixtures: real `swarmpyd` processes, the real `swarmpy` CLI, the real Docker engine.

A `SwarmDaemon` is one swarmpyd subprocess with its own data dir, its own socket and its own swarm port
on 127.0.0.1, initialised as a single-manager swarm. `shared_daemon` is one per test module, for tests
whose services do not interfere (each uses its own service names); `own_daemon` is one per test, for
the destructive ones (restart, drain, leave). Teardown leaves the swarm, stops the daemon (SIGTERM, then
SIGKILL) and removes every container labelled with the node's ID, so a failed test leaves nothing
running behind it.

Other engineers run containers on the same engine at the same time: every container query here filters
on this daemon's node ID as well as on the service name.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from docker import errors as docker_errors

from tests.conftest import docker_client
from tests import daemon_logs

NODE_LABEL = "swarmpy.node.id"
SERVICE_NAME_LABEL = "com.docker.swarm.service.name"

DAEMON_START_TIMEOUT = 15.0
DAEMON_STOP_TIMEOUT = 15.0
CLI_TIMEOUT = 60.0
WAIT_TIMEOUT = 30.0

_INIT_NODE_ID = re.compile(r"current node \(([0-9a-z]+)\) is now a manager")

T = TypeVar("T")


@dataclass(frozen=True)
class CliResult:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"swarmpy {' '.join(self.args)} -> exit {self.code}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def run_cli(host: str, *args: str, timeout: float = CLI_TIMEOUT) -> CliResult:
    """Run the real CLI in a subprocess against `host`, as a user would."""
    env = dict(os.environ, SWARMPY_HOST=host)
    completed = subprocess.run(
        [sys.executable, "-m", "swarmpy.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(tuple(args), completed.returncode, completed.stdout, completed.stderr)


def wait_until(condition: Callable[[], T], *, timeout: float = WAIT_TIMEOUT, interval: float = 0.2,
               what: str = "the condition", details: Callable[[], str] | None = None) -> T:
    """Poll `condition` until it returns something truthy, and return that; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = f"\n{details()}" if details is not None else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last value: {value!r}){extra}")
        time.sleep(interval)


def free_port() -> int:
    """A port nothing listens on right now (the daemon binds it a moment later; a clash is unlikely)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SwarmDaemon:
    """One swarmpyd process and the swarm it manages."""

    node_netns: str | None = None  # the network namespace the daemon runs in (None: this process's)
    extra_args: tuple[str, ...] = ()  # more swarmpyd flags

    def __init__(self, workdir: Path, docker) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        # Unix socket paths are limited to 107 bytes; pytest's tmp paths can be longer than that.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="swarmpy-it-", dir="/tmp"))
        self.socket_path = self._socket_dir / "swarmpy.sock"
        self.hostname = "it-" + uuid.uuid4().hex[:8]
        self.listen_port = free_port()
        self.log_path = workdir / "swarmpyd.log"
        self.docker = docker
        self.process: subprocess.Popen | None = None
        self.node_id = ""
        self.init_result: CliResult | None = None
        self._channel = None
        self._control = None
        self._starts = 0

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    # -- the process ---------------------------------------------------------------------------

    def start(self) -> None:
        self._starts += 1
        daemon_logs.started(self.log_path)
        log = open(self.log_path, "a")  # the daemon's own copy of the descriptor keeps it open
        log.write(f"---- start #{self._starts} ----\n")
        log.flush()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from swarmpy.daemon import main; main()",
                 "--data-dir", str(self.data_dir), "--socket", str(self.socket_path),
                 "--hostname", self.hostname, *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        finally:
            log.close()
        wait_until(self._socket_answers, timeout=DAEMON_START_TIMEOUT, what=f"swarmpyd to serve {self.socket_path}",
                   details=self.log_tail)

    def _socket_answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            pytest.fail(f"swarmpyd exited with {self.process.returncode} during start-up\n{self.log_tail()}")
        if not self.socket_path.exists():
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(self.socket_path))
            except OSError:
                return False
        return True

    def stop(self, timeout: float = DAEMON_STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL if it does not stop within `timeout`; returns the exit status."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        return process.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no daemon log)"
        return "swarmpyd log (tail):\n" + "\n".join(text.splitlines()[-lines:])

    # -- the swarm -----------------------------------------------------------------------------

    def init(self) -> CliResult:
        result = self.cli("swarm", "init", "--advertise-addr", "127.0.0.1",
                          "--listen-addr", f"127.0.0.1:{self.listen_port}")
        assert result.code == 0, f"{result}\n{self.log_tail()}"
        match = _INIT_NODE_ID.search(result.stdout)
        assert match, f"no node ID in the init output:\n{result}"
        self.node_id = match.group(1)
        self.init_result = result
        return result

    def cli(self, *args: str, timeout: float = CLI_TIMEOUT) -> CliResult:
        return run_cli(self.host, *args, timeout=timeout)

    def control(self):
        """A Control stub on the local socket, for checks a CLI subprocess would make slow."""
        if self._control is None:
            import grpc

            from swarmpy.api import control_pb2_grpc

            self._channel = grpc.insecure_channel(f"unix:{self.socket_path}")
            self._control = control_pb2_grpc.ControlStub(self._channel)
        return self._control

    def state(self) -> tuple:
        """What a user can change: services and nodes (specs and versions), tasks, containers."""
        from swarmpy.api import control_pb2

        control = self.control()
        services = control.ListServices(control_pb2.ListServicesRequest(), timeout=10).services
        nodes = control.ListNodes(control_pb2.ListNodesRequest(), timeout=10).nodes
        tasks = control.ListTasks(control_pb2.ListTasksRequest(), timeout=10).tasks
        return (
            sorted((s.id, s.meta.version.index, s.spec.SerializeToString(deterministic=True)) for s in services),
            sorted((n.id, n.meta.version.index, n.spec.SerializeToString(deterministic=True)) for n in nodes),
            sorted(t.id for t in tasks),
            sorted(c.id for c in self.containers(include_stopped=True)),
        )

    def ok(self, *args: str, timeout: float = CLI_TIMEOUT) -> CliResult:
        """Run the CLI and insist that it succeeded."""
        result = self.cli(*args, timeout=timeout)
        assert result.code == 0, f"{result}\n{self.log_tail()}"
        return result

    def teardown(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = self._control = None
        try:
            if self.process is not None and self.process.poll() is None and self.node_id:
                self.cli("swarm", "leave", "--force", timeout=30)
        finally:
            self.stop()
            self.remove_containers()
            for leftover in (self.socket_path, self._socket_dir):
                try:
                    leftover.rmdir() if leftover.is_dir() else leftover.unlink()
                except OSError:
                    pass

    # -- what the engine sees ------------------------------------------------------------------

    def containers(self, service: str | None = None, *, include_stopped: bool = False) -> list:
        labels = [f"{NODE_LABEL}={self.node_id}"]
        if service is not None:
            labels.append(f"{SERVICE_NAME_LABEL}={service}")
        filters: dict = {"label": labels}
        if not include_stopped:
            filters["status"] = "running"
        for _ in range(10):
            try:
                return self.docker.containers.list(all=include_stopped, filters=filters)
            except docker_errors.NotFound:
                # The SDK lists, then inspects each container: one removed in between is not an error.
                time.sleep(0.05)
        return self.docker.containers.list(all=include_stopped, filters=filters)

    def running(self, service: str, count: int) -> list | None:
        """The service's running containers when there are exactly `count` of them, else None."""
        found = self.containers(service)
        return found if len(found) == count else None

    def wait_running(self, service: str, count: int, timeout: float = WAIT_TIMEOUT) -> list:
        return wait_until(lambda: self.running(service, count), timeout=timeout,
                          what=f"{count} running containers of service {service}",
                          details=lambda: f"{self.cli('service', 'ps', service, '--no-trunc')}\n{self.log_tail()}")

    def wait_listed(self, pattern: str, timeout: float = WAIT_TIMEOUT) -> str:
        """`service ls` once a line matches `pattern`: a container can run before its task reports RUNNING."""
        def listed():
            listing = self.ok("service", "ls").stdout
            return listing if re.search(pattern, listing, re.MULTILINE) else None

        return wait_until(listed, timeout=timeout, what=f"service ls to match {pattern!r}",
                          details=lambda: self.cli("service", "ls").stdout)

    def remove_containers(self) -> None:
        if not self.node_id:
            return
        # The daemon is gone: the secret and config files its tasks had in the tmpfs go with them.
        import shutil

        from swarmpy.worker.executor.task_files import DEFAULT_ROOT

        shutil.rmtree(Path(DEFAULT_ROOT) / self.node_id, ignore_errors=True)
        for container in self.containers(include_stopped=True):
            try:
                container.remove(force=True, v=True)
            except docker_errors.APIError:  # gone already, or being removed by the daemon
                pass
        # What its data plane plumbed for tasks on overlay networks (in the namespace it ran in).
        from swarmpy.worker.network.dataplane import remove_node_leftovers

        remove_node_leftovers(self.node_id, self.node_netns)


def _start_swarm(workdir: Path, docker, *extra_args: str) -> SwarmDaemon:
    daemon = SwarmDaemon(workdir, docker)
    daemon.extra_args = extra_args
    try:
        daemon.start()
        daemon.init()
    except BaseException:
        daemon.teardown()
        raise
    return daemon


@pytest.fixture(scope="session")
def docker(busybox_image):
    client = docker_client()
    yield client
    client.close()


@pytest.fixture(scope="module")
def shared_daemon(docker, tmp_path_factory) -> SwarmDaemon:
    """One initialised single-node swarm for a whole module; tests keep to their own service names."""
    daemon = _start_swarm(tmp_path_factory.mktemp("swarmpyd"), docker)
    yield daemon
    daemon.teardown()


@pytest.fixture
def own_daemon(docker, tmp_path) -> SwarmDaemon:
    """An initialised single-node swarm for one test that restarts, drains or leaves it."""
    daemon = _start_swarm(tmp_path, docker)
    yield daemon
    daemon.teardown()


@pytest.fixture
def bare_daemon(docker, tmp_path) -> SwarmDaemon:
    """A started swarmpyd that is in no swarm yet."""
    daemon = SwarmDaemon(tmp_path, docker)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.teardown()


@pytest.fixture
def image(busybox_image) -> str:
    """The test image as users name it (the tag defaults to latest)."""
    return busybox_image.removesuffix(":latest")
