"""upstreams.exchange (the engine client swarmpy's own handlers use), against a fake engine (no Docker
engine needed), and `receive`, the one read every relay path makes.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import tracemalloc

import pytest

from swarmpy.engineapi import framing
from swarmpy.engineapi.proxy import EXCHANGE_THREADS, Engine
from swarmpy.engineapi.upstreams import READ_SIZE, Died, Pool, exchange, receive, unix_opener
from tests.engineapi.fake_engine import OK, FakeEngine


@pytest.fixture
def engine(tmp_path):
    fake = FakeEngine(str(tmp_path / "engine.sock"))
    yield fake
    fake.close()


def test_exchange_reads_a_chunked_answer_whole_and_pools_the_connection(engine):
    engine.answer = lambda head: (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
                                  b"3;ext=1\r\n[{\"\r\n5\r\na\":1}\r\n1\r\n]\r\n0\r\nTrailer: x\r\n\r\n")
    pool = Pool("engine", unix_opener(engine.path))
    for _ in range(2):
        answer = exchange(pool, b"GET", b"GET /networks HTTP/1.1\r\nHost: docker\r\n\r\n")
        assert (answer.status, answer.reason, answer.body) == (200, "OK", b'[{"a":1}]')
        assert ("Content-Type", "application/json") in answer.headers
    assert pool.opened == 1 and pool.idle == 1


def test_exchange_skips_interim_answers_and_reads_until_close_without_pooling(engine):
    engine.answer = lambda head: b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\n\r\n{\"message\":\"no\"}"
    pool = Pool("engine", unix_opener(engine.path))
    closer = threading.Timer(0.3, engine.close)  # an answer without framing ends when the engine closes
    closer.start()
    answer = exchange(pool, b"DELETE", b"DELETE /networks/x HTTP/1.1\r\nHost: docker\r\n\r\n")
    closer.join()
    assert (answer.status, answer.body) == (404, b'{"message":"no"}')
    assert pool.idle == 0


def test_exchange_retries_a_get_once_when_a_pooled_connection_died_but_never_a_post(engine):
    pool = Pool("engine", unix_opener(engine.path))
    pool.check_idle = False  # the death must be found by the exchange, not by the pool's peek
    answers = iter([OK, None, OK, OK, None])
    engine.answer = lambda head: next(answers)
    request = b"GET /info HTTP/1.1\r\nHost: docker\r\n\r\n"
    assert exchange(pool, b"GET", request).status == 200
    assert exchange(pool, b"GET", request).status == 200  # the pooled one closed under it: retried
    assert pool.retried == 1 and pool.opened == 2
    assert exchange(pool, b"POST", b"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n").status == 200
    with pytest.raises(Died):
        exchange(pool, b"POST", b"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    assert pool.retried == 1


def test_exchange_refuses_an_answer_it_cannot_frame(engine):
    engine.answer = lambda head: b"HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n"
    pool = Pool("engine", unix_opener(engine.path))
    with pytest.raises(framing.FramingError, match="invalid Content-Length"):
        exchange(pool, b"GET", b"GET / HTTP/1.1\r\n\r\n")
    assert pool.idle == 0


def test_receive_returns_what_arrived_without_allocating_a_whole_read_each_time():
    ours, theirs = socket.socketpair()
    try:
        theirs.sendall(b"x" * 1600)
        assert receive(ours) == b"x" * 1600  # the thread's buffer made here, outside the trace
        tracemalloc.start()
        try:
            for size in (1, 1600, 40_000):
                theirs.sendall(b"y" * size)
                assert receive(ours) == b"y" * size
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # sock.recv(READ_SIZE) would have allocated READ_SIZE (256 KiB) for each read
        assert peak < 3 * 40_000 < READ_SIZE, peak
        sent = b"z" * (READ_SIZE + 10)
        writer = threading.Thread(target=theirs.sendall, args=(sent,))
        writer.start()
        got = b""
        while len(got) < len(sent):
            piece = receive(ours)
            assert 0 < len(piece) <= READ_SIZE
            got += piece
        writer.join()
        assert got == sent
        theirs.close()
        assert receive(ours) == b""  # EOF
    finally:
        ours.close()
        theirs.close()


async def test_an_engine_that_never_answers_fails_a_handlers_request_in_time_and_pins_no_shared_thread(engine):
    """The handlers' engine requests run in the Engine's own threads, each bounded by its timeout: the
    loop's default executor (Raft's disk writes run there, cpu_count + 4 threads) stays free."""
    released = threading.Event()
    engine.answer = lambda head: OK if released.wait(30) else None
    proxy = Engine(engine.path, timeout=2.0)
    try:
        asks = [asyncio.create_task(proxy.ask("GET", "/version")) for _ in range(EXCHANGE_THREADS)]
        await asyncio.sleep(0.1)
        # The default executor answers at once while every engine request hangs.
        assert await asyncio.wait_for(asyncio.to_thread(threading.current_thread), 1) is not threading.main_thread()
        async with asyncio.timeout(10):
            outcomes = await asyncio.gather(*asks, return_exceptions=True)
        assert all(isinstance(outcome, TimeoutError) for outcome in outcomes), outcomes
        assert proxy.pool.idle == 0, "a connection that timed out is in an unknown state: never pooled"
        released.set()
        assert (await proxy.ask("GET", "/version")).status == 200
        assert proxy.pool.idle == 1
        pooled = proxy.pool.take()
        assert pooled.sock.gettimeout() is None, "the relay's streams share the pool: no timeout left on it"
    finally:
        released.set()
        await proxy.close()
