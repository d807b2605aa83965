"""What startup costs and where the CLI connects."""

import subprocess
import sys

import pytest

from swarmpy.cli.connection import grpc_target


@pytest.mark.parametrize("host, target", [
    ("unix:///var/run/swarmpy/swarmpy.sock", "unix:/var/run/swarmpy/swarmpy.sock"),
    ("/tmp/x.sock", "unix:/tmp/x.sock"),
    ("10.0.0.1:2375", "10.0.0.1:2375"),
    ("tcp://10.0.0.1:2375", "10.0.0.1:2375"),
])
def test_grpc_target(host, target):
    assert grpc_target(host) == target


def test_loading_the_cli_does_not_import_grpc_or_the_stubs():
    code = ("import sys; from swarmpy.cli.main import cli; "
            "print(sorted(m for m in sys.modules if m.startswith(('grpc', 'google', 'swarmpy.api'))))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert completed.stdout.strip() == "[]", completed.stderr


def test_debug_adds_the_traceback(tmp_path):
    completed = subprocess.run([sys.executable, "-m", "swarmpy.cli.main", "--debug", "-H", str(tmp_path / "none.sock"),
                                "service", "ls"], capture_output=True, text=True, timeout=30)
    assert completed.returncode == 1
    assert "Traceback" in completed.stderr
    assert completed.stderr.endswith("Is swarmpyd running?\n")
