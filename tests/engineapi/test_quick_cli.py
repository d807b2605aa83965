"""`swarmpy service ls` through its quick path (the Engine API socket, no click/grpc/protobuf) prints
what the click + gRPC path prints, byte for byte, for every form it takes; other forms fall through."""

import os
import subprocess
import sys

import pytest

from swarmpy.cli import quick
from tests.engineapi.conftest import EngineApiDaemon

PROBE = ("import sys; from swarmpy.cli import quick; code = quick.run(sys.argv[1:]); "
         "heavy = sorted(m.split('.')[0] for m in sys.modules if m.startswith(('grpc', 'google', 'click', 'swarmpy.api'))); "
         "print(code, sorted(set(heavy)), file=sys.stderr)")


def _ls(daemon: EngineApiDaemon, *args: str, door: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SWARMPY_HOST=daemon.host)
    env.pop("SWARMPY_API_SOCKET", None)
    if door == "grpc":
        env["SWARMPY_API_SOCKET"] = ""  # no Engine API socket: the click tree and gRPC
    return subprocess.run([sys.executable, "-m", "swarmpy.cli.main", *args], env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture(scope="module")
def services(manager: EngineApiDaemon, busybox_image):
    manager.docker_ok("service", "create", "-d", "--name", "quick-web", "--replicas", "0", "--label", "tier=front",
                      "-p", "8089:80", busybox_image, "sleep", "1000")
    manager.docker_ok("service", "create", "-d", "--name", "quick-job", "--mode", "replicated-job",
                      "--replicas", "0", busybox_image, "true")
    yield manager
    manager.docker_cli("service", "rm", "quick-web", "quick-job")


@pytest.mark.parametrize("args", [
    ("service", "ls"),
    ("service", "ls", "-q"),
    ("service", "ls", "--format", "json"),
    ("service", "ls", "--format", "{{.Name}} {{.Replicas}} {{.Ports}}"),
    ("service", "ls", "--format=table {{.Name}}\t{{.Mode}}"),
    ("service", "ls", "-f", "label=tier=front"),
    ("service", "ls", "--filter", "mode=replicated job"),
    ("service", "ls", "-f", "name=quick-w"),
    ("service", "ls", "--format", "{{.Nope}}"),
])
def test_both_doors_print_the_same(services, args):
    through_api, through_grpc = _ls(services, *args, door="api"), _ls(services, *args, door="grpc")
    assert (through_api.returncode, through_api.stdout, through_api.stderr) == \
        (through_grpc.returncode, through_grpc.stdout, through_grpc.stderr)
    if args == ("service", "ls"):
        assert "quick-web" in through_api.stdout and "*:8089->80/tcp" in through_api.stdout
        assert "0/0 (0/0 completed)" in through_api.stdout


def test_the_quick_path_loads_neither_click_nor_grpc(services):
    env = dict(os.environ, SWARMPY_HOST=services.host)
    env.pop("SWARMPY_API_SOCKET", None)
    answered = subprocess.run([sys.executable, "-c", PROBE, "service", "ls"], env=env, capture_output=True,
                              text=True, timeout=60)
    assert answered.stderr.strip() == "0 []", answered.stderr
    assert "quick-web" in answered.stdout


@pytest.mark.parametrize("args", [
    ["service", "ps", "x"], ["service", "ls", "--help"], ["--debug", "service", "ls"], ["service", "ls", "-x"],
    ["service", "ls", "-f"], ["service", "ls", "-f", "bogus=1"], ["node", "ls"], [],
])
def test_other_command_lines_fall_through(tmp_path, monkeypatch, args):
    (tmp_path / "docker.sock").touch()  # there, but not taken for these
    monkeypatch.delenv("SWARMPY_API_SOCKET", raising=False)
    monkeypatch.setenv("SWARMPY_HOST", f"unix://{tmp_path}/swarmpy.sock")
    assert quick.run(args) is None


def test_which_socket(tmp_path, monkeypatch):
    monkeypatch.delenv("SWARMPY_API_SOCKET", raising=False)
    assert quick.engine_api_socket(f"unix://{tmp_path}/swarmpy.sock") is None  # not served: gRPC
    (tmp_path / "docker.sock").touch()
    assert quick.engine_api_socket(f"unix://{tmp_path}/swarmpy.sock") == str(tmp_path / "docker.sock")
    assert quick.engine_api_socket("10.0.0.1:2375") is None
    monkeypatch.setenv("SWARMPY_API_SOCKET", "")
    assert quick.engine_api_socket(f"unix://{tmp_path}/swarmpy.sock") is None
    monkeypatch.setenv("SWARMPY_API_SOCKET", "/elsewhere.sock")
    assert quick.engine_api_socket(f"unix://{tmp_path}/swarmpy.sock") == "/elsewhere.sock"


def test_a_daemon_gone_falls_through_to_grpc_words(tmp_path, monkeypatch):
    (tmp_path / "docker.sock").touch()  # a stale socket file: connect fails
    monkeypatch.delenv("SWARMPY_API_SOCKET", raising=False)
    assert quick.run(["-H", f"unix://{tmp_path}/swarmpy.sock", "service", "ls"]) is None
