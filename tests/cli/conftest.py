import pytest
from click.testing import CliRunner

from swarmpy.cli import converge
from swarmpy.cli.main import cli
from tests.cli.fake_daemon import RunningFakeDaemon


@pytest.fixture
def daemon():
    running = RunningFakeDaemon()
    yield running
    running.stop()


@pytest.fixture
def fake(daemon):
    return daemon.fake


@pytest.fixture
def run(daemon, monkeypatch):
    """Runs `swarmpy -H <fake> ARGS...`; returns click's Result (stdout and stderr kept apart)."""
    monkeypatch.setattr(converge, "POLL_INTERVAL", 0.01)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, ["-H", daemon.host, *args], catch_exceptions=False)

    return invoke
