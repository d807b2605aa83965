"""Shared fixtures: the local Docker engine and the busybox test image built from the host's busybox."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests import daemon_logs

DOCKER_SOCKET = "/var/run/docker.sock"
TEST_IMAGE = "swarmpy-test/busybox:latest"
MAKE_TEST_IMAGE = Path(__file__).resolve().parent.parent / "scripts" / "make-test-image"


def _no_engine() -> None:
    """Locally a missing engine skips the Docker tests, saying so; in CI (CI=true) it fails them: the engine
    is part of CI's machine, so a skip there would count a test as passed that never ran."""
    reason = f"no Docker engine: {DOCKER_SOCKET} is absent"
    if os.environ.get("CI"):
        pytest.fail(reason + " (in CI the Docker tests must run)")
    pytest.skip(reason)


def docker_client():
    """A Docker SDK client for the local engine, or a skip when there is no engine to talk to."""
    if not os.path.exists(DOCKER_SOCKET):
        _no_engine()
    import docker

    return docker.DockerClient(base_url=f"unix://{DOCKER_SOCKET}")


@pytest.fixture(scope="session")
def busybox_image() -> str:
    """The name of the local test image, built on first use (nothing can be pulled: there is no registry)."""
    if not os.path.exists(DOCKER_SOCKET):
        _no_engine()
    result = subprocess.run([str(MAKE_TEST_IMAGE)], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.fail(f"scripts/make-test-image failed:\n{result.stdout}\n{result.stderr}")
    return TEST_IMAGE


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        item.stash.setdefault(_FAILED, []).append(report.when)


_FAILED = pytest.StashKey[list]()


@pytest.fixture(autouse=True)
def _daemon_logs_of_a_failure(request):
    """A failed test's swarmpyd tracebacks and log tails, printed in its report ("Captured stdout teardown")."""
    since = daemon_logs.mark()
    yield
    if request.node.stash.get(_FAILED, None):
        print(daemon_logs.report(since))
