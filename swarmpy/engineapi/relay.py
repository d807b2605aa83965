"""The Engine API socket's front door: swarm requests go to swarmpy's own application, everything else
is relayed raw to the local Docker engine over pooled connections.

Theory of operation
-------------------
Every connection accepted on the Engine API listeners is a `ClientConnection`, a plain asyncio
Protocol. For each request it reads the head only (framing.py): the request line, and the headers
that decide where the body ends and whether the connection goes on. The path, its /vX.Y stripped,
decides the upstream (`SwarmRoutes`): a route of swarmpy's aiohttp application or a swarm-only kind
goes to that application, anything else to the engine. Swarm-only kinds never reach the engine.

Both upstreams are reached the same way, through a `Pool` of persistent connections: the engine's
unix socket, and swarmpy's aiohttp server over in-process socketpairs (aiohttp is then just one more
HTTP server behind the relay, with nothing to hand over between connections that mix swarm and
engine requests). The request is written as it came (only a /vX.Y above the engine's own is lowered
to it), its body passed on as it arrives, and the answer passed back byte for byte: its head is read
for framing, its body counted (Content-Length), scanned chunk by chunk (chunked, never de-chunked)
or copied until the engine closes. When both messages are complete, a connection that may carry
another request goes back to its pool; the client's own connection goes on as the answer says
(keep-alive unless Connection: close or HTTP/1.0 without keep-alive).

An answer of 101 (Upgrade: tcp, as attach and exec start ask for it), or one without framing (the
older hijack), turns the exchange into a byte pipe in both directions until both sides are done; a
client's half-close (stdin at EOF) is passed on as a half-close so the output that follows still
arrives. Back-pressure runs both ways: a side whose writes are buffered past asyncio's high-water
mark pauses reading of the other, so a large build context or `docker save` streams in bounded memory.

A pooled connection the engine closed while idle is noticed (its EOF) and dropped. If the close races
with a new request and the connection dies before any byte of an answer, the request is retried once
on a new connection only when that is safe: an idempotent method (GET, HEAD, OPTIONS) whose whole
request is still in hand (no body). Anything else gets a 502 in docker's JSON form.
"""

from __future__ import annotations

import asyncio
import json
import logging
import posixpath
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import unquote_to_bytes

from . import framing

log = logging.getLogger(__name__)

_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS"})
_VERSION_PREFIX = re.compile(rb"/v(\d+)\.(\d+)(?=/|$)")
_PENDING_LIMIT = 256 * 1024  # pipelined bytes held while an exchange runs, before the client is paused
_MAX_IDLE = 16

Opener = Callable[[Callable[[], asyncio.Protocol]], Awaitable[object]]


class SwarmRoutes:
    """Which requests swarmpy answers itself: its application's (method, path) routes, written as
    aiohttp writes them ({name} or {name:regex}), and any method on a swarm-only kind."""

    def __init__(self, routes: Iterable[tuple[str, str]], swarm_kinds: Iterable[str]) -> None:
        patterns: dict[bytes, list[str]] = {}
        firsts: set[bytes] = set(kind.encode() for kind in swarm_kinds)
        for method, path in routes:
            firsts.add(path.strip("/").split("/", 1)[0].encode())
            patterns.setdefault(method.encode(), []).append(_route_regex(path))
        self._kinds = re.compile(rb"/(?:%s)(?:/.*)?" % b"|".join(re.escape(kind.encode()) for kind in swarm_kinds))
        self._firsts = frozenset(firsts)
        self._by_method = {method: re.compile("|".join(f"(?:{p})" for p in paths).encode())
                           for method, paths in patterns.items()}

    def served(self, method: bytes, path: bytes) -> bool:
        if path[1:].split(b"/", 1)[0] not in self._firsts:  # the common case: /containers, /images, ...
            return False
        if self._kinds.fullmatch(path):
            return True
        pattern = self._by_method.get(method)
        return pattern is not None and pattern.fullmatch(path) is not None


def _route_regex(path: str) -> str:
    def part(match: re.Match[str]) -> str:
        return f"(?:{match.group(2)})" if match.group(2) else "[^/]+"

    pieces = re.split(r"(\{[^}]*\})", path)
    return "".join(re.sub(r"\{(\w+)(?::(.*))?\}", part, piece) if piece.startswith("{") else re.escape(piece)
                   for piece in pieces)


def _canonical(path: bytes) -> bytes:
    """The path as the engine's router would see it (escapes decoded, dot segments and doubled slashes
    folded), so no spelling of a swarm path slips past the routing."""
    if b"%" not in path and b"//" not in path and b"/." not in path:
        return path
    folded = posixpath.normpath(unquote_to_bytes(path).decode("latin-1")).encode("latin-1")
    return b"/" + folded.lstrip(b"/")


class Upstream(asyncio.Protocol):
    """One connection to an upstream server, owned by one exchange at a time and pooled in between."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.owner: ClientConnection | None = None
        self.transport: asyncio.Transport | None = None
        self.exchanges = 0  # how many exchanges this connection has carried (a reused one may be stale)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.owner is not None:
            self.owner.upstream_data(data)
        else:  # nothing may arrive between exchanges: the connection is out of step
            self.transport.close()

    def eof_received(self) -> bool:
        if self.owner is not None:
            return self.owner.upstream_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.forget(self)
        owner, self.owner = self.owner, None
        if owner is not None:
            owner.upstream_lost(self)

    def pause_writing(self) -> None:
        if self.owner is not None:
            self.owner.pause("upstream-full")

    def resume_writing(self) -> None:
        if self.owner is not None:
            self.owner.resume("upstream-full")


class Pool:
    """Idle connections to one upstream, newest first; `opener(factory)` makes a new one."""

    def __init__(self, name: str, opener: Opener, max_idle: int = _MAX_IDLE) -> None:
        self.name = name
        self._opener = opener
        self._max_idle = max_idle
        self._idle: list[Upstream] = []
        self._closed = False
        self.opened = 0  # connections made, for tests and figures
        self.retried = 0  # requests retried after a pooled connection died under them

    def take(self) -> Upstream | None:
        while self._idle:
            upstream = self._idle.pop()
            if not upstream.transport.is_closing():
                return upstream
        return None

    async def open(self) -> Upstream:
        upstream = Upstream(self)
        await self._opener(lambda: upstream)
        self.opened += 1
        return upstream

    def give_back(self, upstream: Upstream) -> None:
        upstream.owner = None
        transport = upstream.transport
        if self._closed or len(self._idle) >= self._max_idle or transport.is_closing():
            transport.close()
            return
        transport.resume_reading()  # an idle connection must see the engine's EOF
        self._idle.append(upstream)

    def forget(self, upstream: Upstream) -> None:
        if upstream in self._idle:
            self._idle.remove(upstream)

    @property
    def idle(self) -> int:
        return len(self._idle)

    def close(self) -> None:
        self._closed = True
        for upstream in self._idle:
            upstream.transport.close()
        self._idle.clear()


def unix_opener(path: str) -> Opener:
    async def open_unix(factory: Callable[[], asyncio.Protocol]) -> object:
        return await asyncio.get_running_loop().create_unix_connection(factory, path)
    return open_unix


def in_process_opener(server_factory: Callable[[], asyncio.Protocol]) -> Opener:
    """Connections to an asyncio server in this process (swarmpy's aiohttp application) over socketpairs."""
    async def open_pair(factory: Callable[[], asyncio.Protocol]) -> object:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        try:
            await loop.connect_accepted_socket(server_factory, theirs)
        except BaseException:
            ours.close()
            theirs.close()
            raise
        return await loop.create_unix_connection(factory, sock=ours)
    return open_pair


class FrontDoor:
    """What every ClientConnection shares: where requests go and the pools that take them there."""

    def __init__(self, routes: SwarmRoutes, swarm: Pool, engine: Pool,
                 engine_version: Callable[[], tuple[int, int] | None],
                 version_refusal: Callable[[str], str | None]) -> None:
        self.routes = routes
        self.swarm = swarm
        self.engine = engine
        self._engine_version = engine_version
        self._version_refusal = version_refusal
        self._routed: dict[tuple[bytes, bytes], tuple[Pool, bytes | None] | str] = {}
        self.connections: set[ClientConnection] = set()

    def __call__(self) -> ClientConnection:
        return ClientConnection(self)

    def route(self, head: framing.Head) -> tuple[Pool, bytes | None] | str:
        """The pool for this request and, when it must change, its new target; or a refusal's words.
        Remembered per (method, target): a client asks the same few again and again."""
        key = (head.first, head.second)
        routed = self._routed.get(key)
        if routed is None:
            if len(self._routed) > 512:  # targets carry IDs and queries: keep it bounded
                self._routed.clear()
            routed = self._routed[key] = self._route(head.first, head.second)
        return routed

    def _route(self, method: bytes, target: bytes) -> tuple[Pool, bytes | None] | str:
        match = _VERSION_PREFIX.match(target)
        rest = target[match.end():] if match else target
        path = rest.split(b"?", 1)[0] or b"/"
        if match is not None:
            refusal = self._version_refusal(match.group(0)[2:].decode())
            if refusal is not None:
                return refusal
        if self.routes.served(method, _canonical(path)):
            return self.swarm, None
        engine_version = self._engine_version()
        if match is not None and engine_version is not None and \
                (int(match.group(1)), int(match.group(2))) > engine_version:
            return self.engine, b"/v%d.%d" % engine_version + rest
        return self.engine, None

    def close(self) -> None:
        for connection in list(self.connections):
            connection.abort()
        self.swarm.close()
        self.engine.close()


def _error_answer(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"message": message}, separators=(",", ":")).encode() + b"\n"
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body


class ClientConnection(asyncio.Protocol):
    """One client's connection: requests one after the other, each relayed to its upstream."""

    def __init__(self, door: FrontDoor) -> None:
        self._door = door
        self.transport: asyncio.Transport | None = None
        self._pending = bytearray()  # client bytes not yet part of an exchange (the next request, pipelined)
        self._pauses: set[str] = set()
        self._client_eof = False
        self._closing = False
        self._reset()

    def _reset(self) -> None:
        self._exchange = False  # a request is in flight
        self._piping = False  # hijacked: bytes both ways until both sides are done
        self._method = b""
        self._request_body: framing.Body | None = None  # set while the request's body is still arriving
        self._retry: bytes | None = None  # the whole request, when it may be sent again
        self._pool: Pool | None = None
        self._upstream: Upstream | None = None
        self._outbox: list[bytes] = []  # written while the upstream connection is being made
        self._connecting: asyncio.Task[None] | None = None
        self._answer_head = bytearray()
        self._answer_body: framing.Body | None = None
        self._answer_started = False
        self._answer_done = False
        self._upstream_reusable = False
        self._client_keeps_alive = False
        self._upstream_eof = False

    # -- the client's side --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._door.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._piping:
            self._send(data)
            return
        if self._request_body is not None:
            try:
                end = self._request_body.feed(data, 0)
            except framing.FramingError as error:
                self._fail(400, "Bad Request", str(error))
                return
            if end < 0:
                self._send(data)
                return
            self._send(data[:end])
            self._request_body = None
            self._pending += data[end:]
            self._finish_if_done()
        else:
            self._pending += data
        if not self._exchange:
            self._next_request()
        elif len(self._pending) > _PENDING_LIMIT:
            self.pause("pipelined")

    def eof_received(self) -> bool:
        self._client_eof = True
        if self._piping:
            upstream = self._upstream
            if upstream is not None and upstream.transport.can_write_eof() and not upstream.transport.is_closing():
                upstream.transport.write_eof()
            if self._upstream_eof:
                return False
            return True
        if self._request_body is not None:  # a body that can never be finished: nothing to wait for
            self._close()
            return False
        return self._exchange  # keep our sending half open for the answer in flight

    def connection_lost(self, exc: Exception | None) -> None:
        self._door.connections.discard(self)
        self._closing = True
        if self._connecting is not None:
            self._connecting.cancel()
        upstream, self._upstream = self._upstream, None
        if upstream is not None:  # mid-exchange: its state is unknown, so it is not reused
            upstream.owner = None
            upstream.transport.abort()

    def pause_writing(self) -> None:
        if self._upstream is not None:
            self._upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self._upstream is not None and not self._upstream.transport.is_closing():
            self._upstream.transport.resume_reading()

    def pause(self, reason: str) -> None:
        if not self._pauses and not self._closing:
            self.transport.pause_reading()
        self._pauses.add(reason)

    def resume(self, reason: str) -> None:
        if reason in self._pauses:
            self._pauses.discard(reason)
            if not self._pauses and not self._closing:
                self.transport.resume_reading()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- starting an exchange -------------------------------------------------------------------

    def _next_request(self) -> None:
        if self._closing:
            return
        end = self._pending.find(framing.HEAD_END)
        if end < 0:
            if len(self._pending) > framing.HEAD_LIMIT:
                self._fail(431, "Request Header Fields Too Large", "request header is too large")
            elif self._client_eof:
                self._close()
            return
        head_bytes = bytes(self._pending[:end + 4])
        del self._pending[:end + 4]
        try:
            head = framing.parse_head(head_bytes)
            body = framing.request_body(head)
            body_end = body.feed(self._pending, 0)
        except framing.FramingError as error:
            self._fail(400, "Bad Request", str(error))
            return
        routed = self._door.route(head)
        if isinstance(routed, str):
            self._fail(400, "Bad Request", routed)
            return
        pool, new_target = routed
        if new_target is not None:
            line_end = head_bytes.index(b"\r\n")
            head_bytes = b"%s %s %s" % (head.first, new_target, head.third) + head_bytes[line_end:]
        self._exchange = True
        self._method = head.first
        self._pool = pool
        self._client_keeps_alive = framing.keeps_alive(head, head.third)
        end = body_end
        if end < 0:
            first = head_bytes + self._pending
            self._pending.clear()
            self._request_body = body
        else:
            first = head_bytes + self._pending[:end]
            del self._pending[:end]
            if head.first in _IDEMPOTENT and isinstance(body, framing.EmptyBody):
                self._retry = first
        upstream = pool.take()
        if upstream is not None:
            self._attach(upstream)
            upstream.transport.write(first)
        else:
            self._outbox.append(first)
            self._connecting = asyncio.get_running_loop().create_task(self._connect(pool))

    async def _connect(self, pool: Pool) -> None:
        try:
            upstream = await pool.open()
        except OSError as error:
            self._connecting = None
            self._fail(502, "Bad Gateway", f"the Docker engine did not answer: {error}"
                       if pool is self._door.engine else f"swarmpyd's Engine API did not answer: {error}")
            return
        self._connecting = None
        if self._closing:
            upstream.transport.close()
            return
        self._attach(upstream)
        outbox, self._outbox = self._outbox, []
        for data in outbox:
            upstream.transport.write(data)

    def _attach(self, upstream: Upstream) -> None:
        upstream.owner = self
        upstream.exchanges += 1
        self._upstream = upstream

    def _send(self, data: bytes) -> None:
        if not data:
            return
        if self._upstream is not None:
            if not self._upstream.transport.is_closing():
                self._upstream.transport.write(data)
        else:
            self._outbox.append(data)

    # -- the upstream's side ------------------------------------------------------------------

    def upstream_data(self, data: bytes) -> None:
        if self._closing:
            return
        if self._piping:
            self.transport.write(data)
            return
        self._answer_started = True
        if self._answer_body is None:
            if self._answer_head:
                self._answer_head += data
                data = bytes(self._answer_head)
            start = 0
            while True:  # interim (1xx) answers are passed on and the final one read after them
                end = data.find(framing.HEAD_END, start)
                if end < 0:
                    self._answer_head = bytearray(data[start:])
                    if len(self._answer_head) > framing.HEAD_LIMIT:
                        self._fail(502, "Bad Gateway", "the engine's answer head is too large")
                    elif start:
                        self.transport.write(data[:start])
                    return
                try:
                    head = framing.parse_head(data[start:end + 4])
                    status = framing.answer_status(head)
                except framing.FramingError as error:
                    self._fail(502, "Bad Gateway", f"the engine's answer is malformed: {error}")
                    return
                if status == 101:
                    self._start_piping(data)
                    return
                if status >= 200:
                    break
                start = end + 4
            self._answer_head = bytearray()
            self._answer_body = framing.answer_body(head, status, self._method)
            self._upstream_reusable = self._answer_body.reusable and framing.keeps_alive(head, head.first)
            self._client_keeps_alive = self._client_keeps_alive and self._upstream_reusable
            if isinstance(self._answer_body, framing.UntilClose):
                self._start_piping(data)  # the older hijack, or an answer that ends when the engine closes
                return
            body_start = end + 4
        else:
            body_start = 0
        try:
            stop = self._answer_body.feed(data, body_start)
        except framing.FramingError as error:
            log.warning("relayed answer for %s cut short: %s", self._method, error)
            self.abort()
            return
        if stop < 0:
            self.transport.write(data)
            return
        if stop < len(data):  # bytes past the answer's end: the connection is out of step
            self._upstream_reusable = self._client_keeps_alive = False
            data = data[:stop]
        self.transport.write(data)
        self._answer_done = True
        self._finish_if_done()

    def upstream_eof(self) -> bool:
        self._upstream_eof = True
        if self._piping:
            if self._client_eof or not self.transport.can_write_eof():
                self._close()
                return False
            self.transport.write_eof()
            return True  # the client may still be sending (stdin) to a half-closed engine side
        return False  # connection_lost follows, and decides

    def upstream_lost(self, upstream: Upstream) -> None:
        if upstream is not self._upstream:
            return
        self._upstream = None
        if self._piping:
            self._close()
            return
        if self._answer_done:
            if self._request_body is not None:  # the engine gave up on the rest of the body
                self._close()
            return
        if not self._answer_started:
            pool = self._pool
            if self._retry is not None and upstream.exchanges > 1 and pool is not None:
                pool.retried += 1
                log.info("a pooled %s connection closed under a %s: retrying on a new one", pool.name,
                         self._method.decode("latin-1"))
                retry, self._retry = self._retry, None
                self._outbox = [retry]
                self._connecting = asyncio.get_running_loop().create_task(self._connect(pool))
                return
            self._fail(502, "Bad Gateway", "the Docker engine closed the connection before answering"
                       if pool is self._door.engine else "swarmpyd's Engine API closed the connection before answering")
            return
        self.abort()  # an answer cut short: the client must see it fail, not a shorter body

    # -- ending an exchange -------------------------------------------------------------------

    def _start_piping(self, data: bytes) -> None:
        self._piping = True
        self._request_body = None
        self._upstream_reusable = False
        self.transport.write(data)
        self.resume("pipelined")
        pending, self._pending = bytes(self._pending), bytearray()
        self._send(pending)
        if self._client_eof and self._upstream is not None and self._upstream.transport.can_write_eof():
            self._upstream.transport.write_eof()

    def _finish_if_done(self) -> None:
        if not self._answer_done or self._request_body is not None:
            return
        upstream, pool = self._upstream, self._pool
        keep_alive = self._client_keeps_alive
        reusable = self._upstream_reusable
        self._reset()
        self.resume("upstream-full")
        if upstream is not None:
            if reusable and pool is not None:
                pool.give_back(upstream)
            else:
                upstream.owner = None
                upstream.transport.close()
        if not keep_alive or self._client_eof and not self._pending:
            self._close()
            return
        self.resume("pipelined")
        if self._pending:
            self._next_request()

    def _fail(self, status: int, reason: str, message: str) -> None:
        """Answer with docker's JSON error when nothing of an answer has been sent yet, and close."""
        if not self._answer_started and not self._closing:
            self.transport.write(_error_answer(status, reason, message))
        self._close()

    def _close(self) -> None:
        if self._closing:
            return
        self._closing = True
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            upstream.owner = None
            upstream.transport.close()
        if self._connecting is not None:
            self._connecting.cancel()
        self.transport.close()
