"""The real docker CLI's interactive and streaming commands through swarmpyd's socket, relayed raw to
the local engine: `docker run -it` and `docker exec -it` on a real terminal (a pty), `docker logs -f`
and `docker events` streaming as things happen."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time

import pytest

from .conftest import EngineApiDaemon, docker_cli_path

pytestmark = pytest.mark.docker
LABEL = "swarmpy.test=proxy-streams"


def _env(daemon: EngineApiDaemon) -> dict[str, str]:
    env = dict(os.environ, DOCKER_HOST=daemon.docker_host)
    env.pop("DOCKER_CONTEXT", None)
    return env


class Terminal:
    """A docker CLI process on a pty, as a user's terminal runs it."""

    def __init__(self, daemon: EngineApiDaemon, *args: str) -> None:
        self._master, slave = pty.openpty()
        self.process = subprocess.Popen([docker_cli_path(), *args], stdin=slave, stdout=slave, stderr=slave,
                                        env=_env(daemon), start_new_session=True)
        os.close(slave)
        self.seen = b""

    def type(self, text: str) -> None:
        os.write(self._master, text.encode())

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} did not appear; the terminal showed {self.seen[-800:]!r}")
            ready, _, _ = select.select([self._master], [], [], left)
            if ready:
                try:
                    self.seen += os.read(self._master, 65536)
                except OSError:  # the CLI exited and the pty closed
                    raise AssertionError(f"{text!r} did not appear before the CLI exited: {self.seen[-800:]!r}")

    def exit_code(self, timeout: float = 30) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            os.close(self._master)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc_info) -> None:
        self.kill()


@pytest.fixture
def cleanup(manager: EngineApiDaemon):
    yield
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={LABEL}"], capture_output=True, text=True,
                         timeout=60).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, timeout=60)


def test_docker_run_it_and_exec_it_on_a_terminal(manager: EngineApiDaemon, image: str, cleanup):
    with Terminal(manager, "run", "-it", "--rm", "--label", LABEL, image, "sh") as run:
        run.type("tty -s && echo on-a-tty-$((6*7))\n")
        run.wait_for("on-a-tty-42")
        run.type("exit 5\n")
        assert run.exit_code() == 5
    container = manager.docker_ok("run", "-d", "--label", LABEL, image, "sleep", "300").stdout.strip()
    with Terminal(manager, "exec", "-it", container, "sh") as shell:
        shell.type("stty size; echo exec-tty-$((7*8))\n")
        shell.wait_for("exec-tty-56")
        shell.type("exit\n")
        assert shell.exit_code() == 0


def test_docker_logs_follow_and_events_stream_as_they_happen(manager: EngineApiDaemon, image: str, cleanup):
    events = subprocess.Popen([docker_cli_path(), "events", "--filter", f"label={LABEL}", "--format",
                               "{{.Action}}"], env=_env(manager), stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1)  # the events stream is open before the container is made
        container = manager.docker_ok("run", "-d", "--label", LABEL, image, "sh", "-c",
                                      "echo first; sleep 2; echo second; sleep 300").stdout.strip()
        follow = subprocess.Popen([docker_cli_path(), "logs", "-f", container], env=_env(manager),
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert follow.stdout.readline() == "first\n"
            started = time.monotonic()
            assert follow.stdout.readline() == "second\n"  # streamed when written, not at the end
            assert time.monotonic() - started < 20
        finally:
            follow.kill()
            follow.wait(timeout=10)
        actions = []
        while "start" not in actions:
            actions.append(events.stdout.readline().strip())
            assert len(actions) < 10, actions
        assert "create" in actions
    finally:
        events.kill()
        events.wait(timeout=10)
