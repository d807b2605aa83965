"""The relay's upstream connections: blocking sockets to the engine or to swarmpy's own application,
pooled between exchanges and shared by the front door's connection threads (relay.py).

`exchange` is the same pooled connection used as a client, for the few requests swarmpy's own handlers
make of the engine (its /version, a local network, an image's digests): one request sent whole and its
answer read whole, in a worker thread (proxy.py's Engine calls it through asyncio.to_thread).
"""

from __future__ import annotations

import asyncio
import mmap
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import framing

_MAX_IDLE = 16
# A connection idle for less than this is used without a peek at it (a system call that costs about
# as much as the rest of a request's Python): the engine closes idle connections only when it stops,
# and the retry below covers an idempotent request caught by that.
_TRUSTED_IDLE = 1.0

Opener = Callable[[], socket.socket]
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS"})  # safe to send again when a pooled connection died
READ_SIZE = 256 * 1024  # one recv (the relay's too): a whole `docker ps` answer, or a large piece of a stream
ANSWER_LIMIT = 16 * 1024 * 1024  # an answer read whole by `exchange` (a network list, an image inspect)


_buffers = threading.local()


def receive(sock: socket.socket) -> bytes:
    """One recv of up to READ_SIZE bytes, through this thread's own buffer ("" at EOF).

    Why not sock.recv(READ_SIZE): that asks malloc for READ_SIZE bytes on every call and shrinks the
    object to what arrived. 256 KiB is above glibc's mmap threshold, which a shrunken chunk never
    raises, so each call was an mmap, an mremap and a munmap beside the recv (strace of the relay: 3
    extra system calls on each of a request's two reads). The buffer is an anonymous mapping, so a
    thread's memory grows only by the pages its reads have touched."""
    view = getattr(_buffers, "view", None)
    if view is None:
        view = _buffers.view = memoryview(mmap.mmap(-1, READ_SIZE))
    return view[:sock.recv_into(view)].tobytes()


def shut(sock: socket.socket | None, how: int = socket.SHUT_RDWR) -> None:
    """Shut a socket down from any thread (a thread blocked on it wakes). socket.socket's own method,
    also for a TLS socket, whose override would drop its TLS state from under the thread using it."""
    if sock is None:
        return
    try:
        socket.socket.shutdown(sock, how)
    except OSError:
        pass


def _stale(sock: socket.socket) -> bool:
    """Whether an idle connection is unusable: closed by its server (EOF) or out of step (bytes)."""
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


class Upstream:
    """One connection to an upstream server, used by one exchange at a time and pooled in between."""

    __slots__ = ("sock", "exchanges", "idle_since")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.exchanges = 0  # how many exchanges this connection has carried (a reused one may be stale)
        self.idle_since = 0.0


class Pool:
    """Idle connections to one upstream, newest first, shared by the connection threads; `opener()`
    makes a new blocking socket."""

    def __init__(self, name: str, opener: Opener, max_idle: int = _MAX_IDLE) -> None:
        self.name = name
        self._opener = opener
        self._max_idle = max_idle
        self._idle: list[Upstream] = []
        self._lock = threading.Lock()
        self._closed = False
        self.check_idle = True  # peek at an idle connection before using it (tests turn it off to race)
        self.opened = 0  # connections made, for tests and figures
        self.retried = 0  # requests retried after a pooled connection died under them

    def take(self) -> Upstream | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                upstream = self._idle.pop()
            if not self.check_idle or time.monotonic() - upstream.idle_since < _TRUSTED_IDLE \
                    or not _stale(upstream.sock):
                return upstream
            upstream.sock.close()

    def open(self) -> Upstream:
        upstream = Upstream(self._opener())
        with self._lock:
            self.opened += 1
        return upstream

    def give_back(self, upstream: Upstream) -> None:
        upstream.idle_since = time.monotonic()
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(upstream)
                return
        upstream.sock.close()

    @property
    def idle(self) -> int:
        """Idle connections still usable (the stale ones are dropped on the way)."""
        with self._lock:
            idle, self._idle = self._idle, []
        usable = []
        for upstream in idle:
            if self.check_idle and _stale(upstream.sock):
                upstream.sock.close()
            else:
                usable.append(upstream)
        with self._lock:
            self._idle[:0] = usable
            return len(self._idle)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for upstream in idle:
            upstream.sock.close()


def unix_opener(path: str) -> Opener:
    def open_unix() -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            raise
        return sock
    return open_unix


def in_process_opener(loop: asyncio.AbstractEventLoop, server_factory: Callable[[], asyncio.Protocol]) -> Opener:
    """Connections to an asyncio server running on `loop` (swarmpy's aiohttp application) over
    socketpairs: the loop adopts one end, the calling thread keeps the other. Never called on the loop."""
    def open_pair() -> socket.socket:
        ours, theirs = socket.socketpair()
        try:
            asyncio.run_coroutine_threadsafe(loop.connect_accepted_socket(server_factory, theirs), loop).result(10)
        except (OSError, RuntimeError, TimeoutError) as error:  # RuntimeError: the loop is closed (stopping)
            ours.close()
            theirs.close()
            raise ConnectionRefusedError(f"the event loop did not take the connection: {error!r}") from error
        return ours
    return open_pair


class Died(ConnectionError):
    """The upstream connection ended before any byte of its answer."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes  # de-chunked


def exchange(pool: Pool, method: bytes, request: bytes, timeout: float | None = None) -> Answer:
    """Send `request` (head and body, whole) on a pooled connection and read its answer whole, each
    socket operation within `timeout` seconds (None: no bound). A pooled connection that dies before
    answering an idempotent request is replaced once, as the relay does. Raises OSError (Died: no
    answer; TimeoutError) or framing.FramingError (an answer not to be trusted)."""
    upstream = pool.take()
    reused = upstream is not None
    if upstream is None:
        upstream = pool.open()
    try:
        try:
            upstream.sock.settimeout(timeout)
            answer, reusable = _ask(upstream, method, request)
        except Died:
            if not (reused and method in IDEMPOTENT):
                raise
            upstream.sock.close()
            pool.retried += 1
            upstream = pool.open()
            upstream.sock.settimeout(timeout)
            answer, reusable = _ask(upstream, method, request)
    except BaseException:
        upstream.sock.close()  # its state is unknown
        raise
    if reusable:
        upstream.sock.settimeout(None)  # the relay shares the pool, and its streams wait as long as they last
        pool.give_back(upstream)
    else:
        upstream.sock.close()
    return answer


def _ask(upstream: Upstream, method: bytes, request: bytes) -> tuple[Answer, bool]:
    sock = upstream.sock
    upstream.exchanges += 1
    try:
        sock.sendall(request)
    except OSError:
        raise Died("the connection closed before the request was sent") from None
    data = b""
    start = 0  # where the final answer's head begins (interim 1xx answers are skipped)
    while True:
        end = data.find(framing.HEAD_END, start)
        if end >= 0:
            head = framing.parse_head(data[start:end + 4])
            status = framing.answer_status(head)
            if status == 101:
                raise framing.FramingError("the upstream upgraded a connection that asked for no upgrade")
            if status >= 200:
                break
            start = end + 4
            continue
        if len(data) - start > framing.HEAD_LIMIT:
            raise framing.FramingError("answer head too large")
        more = receive(sock)
        if not more:
            if data:
                raise ConnectionAbortedError("the answer was cut short")
            raise Died("the connection closed before answering")
        data += more
    body = framing.answer_body(head, status, method)
    raw = bytearray(data[end + 4:])
    stop = body.feed(raw, 0)
    while stop < 0:
        more = receive(sock)
        if not more:
            if not isinstance(body, framing.UntilClose):
                raise ConnectionAbortedError("the answer was cut short")
            stop = len(raw)
            break
        fed = len(raw)
        raw += more
        if len(raw) > ANSWER_LIMIT:
            raise framing.FramingError(f"the answer is larger than {ANSWER_LIMIT} bytes")
        stop = body.feed(raw, fed)
    reusable = body.reusable and framing.keeps_alive(head, head.first) and stop == len(raw)
    raw = bytes(raw[:stop])
    if isinstance(body, framing.ChunkedBody):
        raw = framing.dechunk(raw)
    lines = data[start:end].decode("latin-1").split("\r\n")
    reason = lines[0].split(" ", 2)[2] if lines[0].count(" ") >= 2 else ""
    headers = [(name.strip(), value.strip()) for name, _, value in (line.partition(":") for line in lines[1:])]
    return Answer(status, reason, headers, raw), reusable
