"""swarmpyd --api-max-connections: the front door's cap, set from the daemon's command line."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker


def _daemon(tmp_path: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "from swarmpy.daemon import main; main()", "--data-dir", str(tmp_path / "data"),
         "--socket", str(tmp_path / "swarmpy.sock"), "--hostname", "eapi-cap", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _ping(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith((b"OK", b"}")):
        more = sock.recv(4096)
        if not more:
            break
        data += more
    return data


def test_a_cap_below_one_is_refused_and_nothing_starts(tmp_path):
    refused = _daemon(tmp_path, "--api-max-connections", "0")
    output, _ = refused.communicate(timeout=30)
    assert refused.returncode == 1
    assert output == "swarmpyd: --api-max-connections must be at least 1, not 0\n"
    assert not (tmp_path / "docker.sock").exists()


def test_the_daemon_serves_at_most_its_cap_of_client_connections(tmp_path, busybox_image):
    daemon = _daemon(tmp_path, "--api-max-connections", "1")
    api = str(tmp_path / "docker.sock")
    held = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    over = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                held.connect(api)
                break
            except OSError:
                assert daemon.poll() is None and time.monotonic() < deadline, "swarmpyd did not serve its API socket"
                time.sleep(0.2)
        held.settimeout(10)
        assert _ping(held).startswith(b"HTTP/1.1 200 ")  # served, and kept alive: it holds the one slot
        over.settimeout(10)
        over.connect(api)
        head, _, body = _ping(over).partition(b"\r\n\r\n")  # waits the door's 2 s for the slot, then refused
        assert head.startswith(b"HTTP/1.1 503 "), head
        assert json.loads(body)["message"].startswith("swarmpyd's Engine API is serving its limit of 1 connections")
        assert _ping(held).startswith(b"HTTP/1.1 200 ")  # the held one goes on
    finally:
        held.close()
        over.close()
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.communicate()
