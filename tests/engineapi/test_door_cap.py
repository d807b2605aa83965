"""The front door's cap on client connections, against a fake engine (no Docker engine needed)."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from swarmpy.engineapi import framing
from swarmpy.engineapi.relay import FrontDoor, SwarmRoutes
from swarmpy.engineapi.server import SWARM_KINDS, _swarm_routes, version_refusal
from swarmpy.engineapi.upstreams import Pool, unix_opener
from tests.engineapi.fake_engine import FakeEngine


def _connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(path)
    return sock


def _ask(sock: socket.socket, target: str = "/v1.41/containers/json") -> bytes:
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: docker\r\n\r\n".encode())
    data = b""
    while True:
        end = data.find(framing.HEAD_END)
        if end >= 0:
            length = framing.parse_head(data[:end + 4]).length
            if length is not None and len(data) >= end + 4 + int(length):
                return data
        more = sock.recv(65536)
        if not more:
            return data
        data += more


@pytest.fixture
def engine(tmp_path):
    fake = FakeEngine(str(tmp_path / "engine.sock"))
    yield fake
    fake.close()


def _open_door(tmp_path, engine: FakeEngine, max_connections: int, queue_wait: float) -> tuple[FrontDoor, str]:
    door = FrontDoor(SwarmRoutes(_swarm_routes(), SWARM_KINDS), swarm=Pool("swarmpyd", unix_opener("/nonexistent")),
                     engine=Pool("engine", unix_opener(engine.path)), engine_version=lambda: (1, 41),
                     version_refusal=version_refusal, max_connections=max_connections, queue_wait=queue_wait)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "docker.sock"))
    listener.listen(16)
    door.serve(listener)
    return door, str(tmp_path / "docker.sock")


@pytest.fixture
def capped_door(tmp_path, engine):
    door, path = _open_door(tmp_path, engine, max_connections=2, queue_wait=0.5)
    yield door, path
    door.close()
    assert door.join(5.0)


def test_a_connection_over_the_cap_waits_then_gets_docker_s_503(capped_door):
    door, path = capped_door
    held = [_connect(path) for _ in range(2)]
    for sock in held:  # served, and then kept alive: each holds its slot
        assert _ask(sock).endswith(b"\r\n\r\n[]")
    started = time.monotonic()
    over = _connect(path)
    answer = _ask(over)
    waited = time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ") and b"Content-Type: application/json" in head, answer
    assert json.loads(body) == {"message": "swarmpyd's Engine API is serving its limit of 2 connections; "
                                           "try again when one has ended"}
    assert over.recv(1) == b""  # and closed
    assert 0.5 <= waited < 5, waited
    assert door.refused == 1
    for sock in held:  # the held connections go on
        assert _ask(sock).endswith(b"[]")
    over.close()


def test_a_connection_over_the_cap_is_served_once_a_slot_frees_within_the_wait(capped_door):
    door, path = capped_door
    held = [_connect(path) for _ in range(2)]
    for sock in held:
        _ask(sock)
    threading.Timer(0.2, held[0].close).start()
    waiting = _connect(path)
    assert _ask(waiting).endswith(b"\r\n\r\n[]")
    assert door.refused == 0
    for sock in (waiting, held[1]):
        sock.close()
    deadline = time.monotonic() + 5
    while door.connections and time.monotonic() < deadline:  # every slot is given back at the end
        time.sleep(0.02)
    assert not door.connections


def test_the_cap_must_be_positive():
    with pytest.raises(ValueError, match="max_connections must be at least 1"):
        FrontDoor(SwarmRoutes([], SWARM_KINDS), swarm=Pool("s", unix_opener("/x")), engine=Pool("e", unix_opener("/x")),
                  engine_version=lambda: None, version_refusal=version_refusal, max_connections=0)


def test_close_wakes_an_accept_thread_waiting_for_a_slot(tmp_path, engine):
    door, path = _open_door(tmp_path, engine, max_connections=1, queue_wait=60)
    held = _connect(path)
    _ask(held)
    waiting = _connect(path)
    waiting.sendall(b"GET /_ping HTTP/1.1\r\n\r\n")
    time.sleep(0.2)  # the accept thread is now waiting for the held connection to end
    started = time.monotonic()
    door.close()
    assert door.join(5.0) and time.monotonic() - started < 5
    assert waiting.recv(1024).startswith(b"HTTP/1.1 503 ")  # refused, not left hanging
    held.close()
    waiting.close()


def test_a_burst_over_the_cap_is_refused_in_one_wait_not_one_wait_each(capped_door):
    door, path = capped_door  # cap 2, each newcomer waits 0.5 s
    held = [_connect(path) for _ in range(2)]
    for sock in held:
        _ask(sock)
    answers: list[bytes] = []
    lock = threading.Lock()

    def newcomer() -> None:
        sock = _connect(path)
        answer = _ask(sock)
        sock.close()
        with lock:
            answers.append(answer)

    started = time.monotonic()
    burst = [threading.Thread(target=newcomer) for _ in range(6)]
    for thread in burst:
        thread.start()
    for thread in burst:
        thread.join(20)
    took = time.monotonic() - started
    assert len(answers) == 6 and all(a.startswith(b"HTTP/1.1 503 ") for a in answers), answers
    assert took < 2.0, f"6 newcomers took {took:.1f} s to be refused: they waited one after another"
    assert door.refused == 6
    for sock in held:
        assert _ask(sock).endswith(b"[]")
        sock.close()


def test_as_many_waiting_as_the_cap_and_one_more_is_refused_at_once(tmp_path, engine):
    door, path = _open_door(tmp_path, engine, max_connections=1, queue_wait=30)
    try:
        held = _connect(path)
        _ask(held)
        waiting = _connect(path)
        waiting.sendall(b"GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n")
        time.sleep(0.2)  # the first newcomer is now waiting for the held slot
        started = time.monotonic()
        assert _ask(_connect(path)).startswith(b"HTTP/1.1 503 ")
        assert time.monotonic() - started < 1.0, "one more than the cap waiting: refused at once, not after 30 s"
        held.close()  # its slot frees: the waiting one is served
        data = b""
        while not data.endswith(b"[]"):
            more = waiting.recv(65536)
            assert more, data
            data += more
        assert data.startswith(b"HTTP/1.1 200 ")
        waiting.close()
    finally:
        door.close()
        assert door.join(5.0)
