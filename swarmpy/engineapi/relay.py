"""The Engine API socket's front door: swarm requests go to swarmpy's own application, everything else
is relayed raw to the local Docker engine over pooled connections, on blocking sockets in threads.

Theory of operation
-------------------
The listeners are plain blocking sockets, each with an accept thread; every accepted connection gets a
thread of its own (`Connection`), which serves its requests one after the other. Why threads and not
the event loop: a relayed request is four socket operations and almost no Python, and under asyncio
each of them costs an event-loop wake-up of the relay's two hops (~66 us of CPU a request on this
machine, against ~25 us for the same relay on blocking sockets); the relay alone kept the proxy path
near 0.7 of the engine's own socket. The threads hold the GIL only between system calls.

For each request the thread reads the head only (framing.py): the request line, and the headers that
decide where the body ends and whether the connection goes on. The path, its /vX.Y stripped, decides
the upstream (`SwarmRoutes`, built from the aiohttp application's own route table): a route of
swarmpy's application or a swarm-only kind goes to that application, anything else to the engine.
Swarm-only kinds never reach the engine.

Both upstreams are reached the same way, through a `Pool` of persistent blocking connections: the
engine's unix socket, and swarmpy's aiohttp server over in-process socketpairs (the loop adopts one end;
aiohttp is then just one more HTTP server behind the relay). The request is written as it came (only a
/vX.Y above the engine's own is lowered to it), and the answer passed back byte for byte: its head is
read for framing, its body counted (Content-Length), scanned chunk by chunk (chunked, never de-chunked)
or copied until the engine closes. A request body that does not arrive with its head is pumped by a
second thread while the answer is read, so an engine that answers while still reading (a build's
progress) cannot deadlock against the relay. When both messages are complete, the upstream connection
goes back to its pool if it may carry another request; the client's own connection goes on as the
answer says (keep-alive unless Connection: close or HTTP/1.0 without keep-alive).

An answer of 101 (Upgrade: tcp, as attach and exec start ask for it), or one without framing (the
older hijack), turns the exchange into a byte pipe in both directions (one thread each way) until both
sides are done; a half-close (stdin at EOF) is passed on as a half-close so the output that follows
still arrives. Blocking writes are the back-pressure: a side that does not read stops the copying.

A pooled connection the engine closed while idle is noticed when it is taken after more than a second
idle (a non-blocking peek finds its EOF; within a second the peek is skipped, as it costs about as
much as the rest of a request) and dropped. If the close races with a new request and the connection dies before any
byte of an answer, the request is retried once on a new connection only when that is safe: an
idempotent method (GET, HEAD, OPTIONS) whose whole request is still in hand (no body). Anything else
gets a 502 in docker's JSON form.

Client connections are capped (`max_connections`, 256 by default; a connection's thread may have a
body pump or a pipe's second thread beside it, so at most three threads each). A newcomer at the cap
waits in a thread of its own up to `queue_wait` (2 s) for a connection to end (a burst of CLI commands
is served, only late; each waits on its own clock, and the accept thread goes on accepting); if none
ends in time, it is answered 503 in docker's JSON form and closed (a TLS one, which would need a
handshake first, is only closed). At most `max_connections` wait at once; one more is refused at once.
A warning is logged once until a connection is admitted again. Long-lived connections (logs -f,
events, attach) hold their slot for as long as they last, as they hold a thread.

Ownership: the `FrontDoor` owns the listeners and every thread it starts; `close` shuts the listening
and connected sockets down (which wakes each blocked thread with an EOF or an error) and `join` waits
for the threads. The server's stop calls both.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from urllib.parse import unquote_to_bytes

from . import framing
from .upstreams import IDEMPOTENT, READ_SIZE, Pool, Upstream, receive, shut

log = logging.getLogger(__name__)

_VERSION_PREFIX = re.compile(rb"/v(\d+)\.(\d+)(?=/|$)")
_TLS_HANDSHAKE_TIMEOUT = 30.0
MAX_CONNECTIONS = 256
QUEUE_WAIT = 2.0  # seconds a connection over the cap waits for a slot before it is refused
_REFUSAL_READ = 0.2  # seconds given to a refused client's request, read so that closing is no reset

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



def _hung_up(sock: socket.socket) -> bool:
    """Whether the peer closed its connection whole (POLLHUP), not only its sending half (a
    half-close leaves the socket readable at EOF but not hung up)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return any(events & (select.POLLHUP | select.POLLERR) for _, events in poller.poll(0))


class FrontDoor:
    """The listeners' accept threads and every client connection's thread, and what they share: where
    requests go and the pools that take them there."""

    def __init__(self, routes: SwarmRoutes, swarm: Pool, engine: Pool,
                 engine_version: Callable[[], tuple[int, int] | None],
                 version_refusal: Callable[[str], str | None], max_connections: int = MAX_CONNECTIONS,
                 queue_wait: float = QUEUE_WAIT) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        self.routes = routes
        self.swarm = swarm
        self.engine = engine
        self._engine_version = engine_version
        self._version_refusal = version_refusal
        self._routed: dict[tuple[bytes, bytes], tuple[Pool, bytes | None] | str] = {}
        # Whole heads of bodiless requests seen before -> (pool, head to send, method, client keeps alive)
        self.known: dict[bytes, tuple[Pool, bytes, bytes, bool]] = {}
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        self.max_connections = max_connections
        self.queue_wait = queue_wait
        self.refused = 0  # connections refused at the cap, for tests and figures
        self._at_cap_said = False
        self._closed = False
        self._waiting = 0  # connections over the cap waiting for a slot, each in its own thread
        self._listeners: list[socket.socket] = []
        self._threads: set[threading.Thread] = set()
        self.connections: set[Connection] = set()

    def serve(self, listener: socket.socket, tls: ssl.SSLContext | None = None) -> None:
        """Accept on `listener` (bound and listening, blocking) in a thread of its own until close()."""
        with self._lock:
            self._listeners.append(listener)
        self._start(self._accept, (listener, tls), "engine-api-accept")

    def _start(self, target: Callable[..., None], args: tuple, name: str) -> bool:
        with self._lock:
            if self._closed:
                return False
            thread = threading.Thread(target=self._run, args=(target, args), name=name, daemon=True)
            self._threads.add(thread)
        thread.start()
        return True

    def _run(self, target: Callable[..., None], args: tuple) -> None:
        try:
            target(*args)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _accept(self, listener: socket.socket, tls: ssl.SSLContext | None) -> None:
        while not self._closed:
            try:
                sock, _ = listener.accept()
            except OSError as error:
                if self._closed:
                    return
                log.warning("Engine API listener: accept failed (%s); going on", error)
                time.sleep(0.1)  # EMFILE and the like: do not spin
                continue
            connection = Connection(self, sock, tls)
            with self._lock:  # registered before its thread runs, so that close() always reaches it
                admitted = self._admit(connection)
                waits = not admitted and not self._closed and self._waiting < self.max_connections
                if waits:
                    self._waiting += 1
            if admitted:
                target, args = connection.run, ()
            elif waits:  # each newcomer over the cap waits for a slot on its own clock, not behind the others
                target, args = self._wait_for_slot, (connection, sock, tls)
            else:  # closing, or as many waiting as the cap again: no thread more for this one
                self._refuse(sock, tls, self._say_at_cap())
                continue
            if not self._start(target, args, "engine-api-connection"):
                with self._lock:
                    self.connections.discard(connection)
                    self._waiting -= waits
                sock.close()

    def _admit(self, connection: Connection) -> bool:
        """With the lock held: take a slot for `connection` if one is free."""
        if self._closed or len(self.connections) >= self.max_connections:
            return False
        self.connections.add(connection)
        self._at_cap_said = False
        return True

    def _say_at_cap(self) -> bool:
        """Whether this refusal is the first of a spell at the cap (the one logged)."""
        with self._lock:
            say, self._at_cap_said = not self._at_cap_said and not self._closed, True
            return say

    def _wait_for_slot(self, connection: Connection, sock: socket.socket, tls: ssl.SSLContext | None) -> None:
        """A connection over the cap, in its own thread: served if a slot frees within queue_wait."""
        with self._lock:
            self._slot_freed.wait_for(lambda: self._closed or len(self.connections) < self.max_connections,
                                      self.queue_wait)
            admitted = self._admit(connection)
            self._waiting -= 1
        if admitted:
            connection.run()
        else:
            self._refuse(sock, tls, self._say_at_cap())

    def _refuse(self, sock: socket.socket, tls: ssl.SSLContext | None, say: bool) -> None:
        """A connection over the cap, or come as the door closes: docker's 503, then closed."""
        with self._lock:
            self.refused += 1
        message = ("swarmpyd's Engine API is stopping" if self._closed else
                   f"swarmpyd's Engine API is serving its limit of {self.max_connections} connections; "
                   f"try again when one has ended")
        if say:
            log.warning("Engine API: %d client connections open, the limit: new ones wait up to %.0f s for one "
                        "to end, then get a 503", self.max_connections, self.queue_wait)
        try:
            if tls is None:
                sock.settimeout(_REFUSAL_READ)
                try:
                    sock.recv(framing.HEAD_LIMIT)
                except OSError:
                    pass
                sock.sendall(_error_answer(503, "Service Unavailable", message))
        except OSError:
            pass  # the client went away: nothing to tell it
        finally:
            sock.close()

    def remember(self, head: bytes, known: tuple[Pool, bytes, bytes, bool]) -> None:
        if len(self.known) > 256:  # heads carry IDs and queries: keep it bounded
            self.known.clear()
        self.known[head] = known

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
        """Stop accepting and wake every thread (their sockets are shut down under them)."""
        with self._lock:
            self._closed = True
            self._slot_freed.notify_all()
            listeners, self._listeners = self._listeners, []
            connections = list(self.connections)
        for listener in listeners:
            shut(listener)
            listener.close()
        for connection in connections:
            connection.abort()
        self.swarm.close()
        self.engine.close()

    def join(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the threads close() woke; whether they all ended."""
        end = time.monotonic() + timeout
        while True:
            with self._lock:
                threads = list(self._threads)
            if not threads:
                return True
            left = end - time.monotonic()
            if left <= 0:
                log.warning("Engine API: %d relay threads still running after stop", len(threads))
                return False
            threads[0].join(left)


def _error_answer(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"message": message}, separators=(",", ":")).encode() + b"\n"
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body



class _Died(Exception):
    """The upstream connection ended before any byte of its answer reached the client."""


class _Unreachable(Exception):
    """No connection to the upstream could be made."""


class Connection:
    """One client's connection, served by one thread: requests one after the other, each relayed to its
    upstream."""

    def __init__(self, door: FrontDoor, sock: socket.socket, tls: ssl.SSLContext | None) -> None:
        self._door = door
        self._client = sock
        self._tls = tls
        self._pending = b""  # client bytes not yet part of an exchange (the next request, pipelined)
        self._client_eof = False
        self._upstream: Upstream | None = None  # while an exchange holds one
        self._helper: threading.Thread | None = None  # a request body's pump, while it runs
        self._body_done = False
        self._keeps_alive = False

    def abort(self) -> None:
        shut(self._client)
        upstream = self._upstream
        if upstream is not None:
            shut(upstream.sock)

    def run(self) -> None:
        try:
            if self._tls is not None and not self._handshake(self._tls):
                return
            while self._exchange():
                pass
        except OSError:
            pass  # the client went away (or a TLS handshake failed): nothing is left to answer
        finally:
            upstream, self._upstream = self._upstream, None
            if self._helper is not None:  # a body pump left by a failed exchange: wake it and wait
                shut(self._client)
                shut(upstream.sock if upstream is not None else None)
                self._helper.join()
            if upstream is not None:  # mid-exchange: its state is unknown, so it is not reused
                upstream.sock.close()
            self._client.close()
            with self._door._lock:  # last: the slot is free only once this connection's threads are done
                self._door.connections.discard(self)
                self._door._slot_freed.notify_all()

    def _handshake(self, tls: ssl.SSLContext) -> bool:
        client = self._client = tls.wrap_socket(self._client, server_side=True, do_handshake_on_connect=False)
        client.settimeout(_TLS_HANDSHAKE_TIMEOUT)
        try:
            client.do_handshake()
        except ssl.SSLError as error:  # no certificate, a rogue one, or not TLS at all
            log.info("Engine API TLS handshake refused: %s", error)
            try:  # read what the client sent, so that closing sends a FIN and not a reset
                socket.socket.recv(client, READ_SIZE, socket.MSG_DONTWAIT)
            except OSError:
                pass
            return False
        client.settimeout(None)
        return True

    # -- one exchange ---------------------------------------------------------------------------

    def _read_head(self) -> bytes | None:
        """The next request's head from the client, or None at its EOF between requests."""
        while True:
            end = self._pending.find(framing.HEAD_END)
            if end >= 0:
                head, self._pending = self._pending[:end + 4], self._pending[end + 4:]
                return head
            if len(self._pending) > framing.HEAD_LIMIT:
                self._fail(431, "Request Header Fields Too Large", "request header is too large")
                return None
            data = receive(self._client)
            if not data:
                self._client_eof = True
                return None
            self._pending += data

    def _exchange(self) -> bool:
        """Relay one request and its answer; whether the client's connection goes on."""
        head_bytes = self._read_head()
        if head_bytes is None:
            return False
        known = self._door.known.get(head_bytes)
        if known is not None:  # a head seen before (a client asks the same few again and again)
            pool, first, method, self._keeps_alive = known
            return self._relay(pool, first, None, method, method in IDEMPOTENT)
        try:
            head = framing.parse_head(head_bytes)
            body = framing.request_body(head)
            body_end = body.feed(self._pending, 0)
        except framing.FramingError as error:
            return self._fail(400, "Bad Request", str(error))
        routed = self._door.route(head)
        if isinstance(routed, str):
            return self._fail(400, "Bad Request", routed)
        pool, new_target = routed
        asked = head_bytes
        if new_target is not None:
            line_end = head_bytes.index(b"\r\n")
            head_bytes = b"%s %s %s" % (head.first, new_target, head.third) + head_bytes[line_end:]
        method = head.first
        self._keeps_alive = framing.keeps_alive(head, head.third)
        retry = method in IDEMPOTENT and isinstance(body, framing.EmptyBody)
        if isinstance(body, framing.EmptyBody):
            self._door.remember(asked, (pool, head_bytes, method, self._keeps_alive))
        if body_end < 0:
            first, self._pending = head_bytes + self._pending, b""
        else:
            first, self._pending = head_bytes + self._pending[:body_end], self._pending[body_end:]
            body = None
        return self._relay(pool, first, body, method, retry)

    def _relay(self, pool: Pool, first: bytes, body: framing.Body | None, method: bytes, retry: bool) -> bool:
        """Send the request (`first`, and `body` from the client when it did not all come with the head)
        and relay its answer; whether the client's connection goes on."""
        try:
            try:
                upstream, outcome = self._attempt(pool, first, body, method)
            except _Died:
                died = self._upstream
                if not (retry and died is not None and died.exchanges > 1):
                    raise
                pool.retried += 1
                log.info("a pooled %s connection closed under a %s: retrying on a new one", pool.name,
                         method.decode("latin-1"))
                died.sock.close()
                self._upstream = None
                upstream, outcome = self._attempt(pool, first, None, method, fresh=True)
        except _Died:
            return self._fail(502, "Bad Gateway", "the Docker engine closed the connection before answering"
                              if pool is self._door.engine else
                              "swarmpyd's Engine API closed the connection before answering")
        except _Unreachable as error:
            return self._fail(502, "Bad Gateway", f"the Docker engine did not answer: {error.__cause__}"
                              if pool is self._door.engine else
                              f"swarmpyd's Engine API did not answer: {error.__cause__}")
        if outcome is None:  # piped (hijacked): the connection is spent
            return False
        reusable = outcome
        helper, self._helper = self._helper, None
        if helper is not None:  # the answer is complete; the request body may still be arriving
            helper.join()
            reusable = reusable and not self._client_eof and self._body_done
        self._upstream = None
        if reusable:
            pool.give_back(upstream)
        else:
            upstream.sock.close()
        return self._keeps_alive and reusable and not (self._client_eof and not self._pending)

    def _attempt(self, pool: Pool, first: bytes, body: framing.Body | None, method: bytes,
                 fresh: bool = False) -> tuple[Upstream, bool | None]:
        """Send the request on an upstream connection (pooled unless `fresh`) and relay its answer; the
        connection and what _relay_answer said. Raises _Died when no answer came."""
        upstream = None if fresh else pool.take()
        if upstream is None:
            try:
                upstream = pool.open()
            except OSError as error:
                raise _Unreachable() from error
        upstream.exchanges += 1
        self._upstream = upstream
        try:
            upstream.sock.sendall(first)
        except OSError:
            raise _Died() from None  # a pooled connection that died while idle, or an engine going away
        if body is not None:
            self._body_done = False
            if self._tls is not None:  # one TLS connection is not for two threads: the body first
                self._pump_body(upstream, body)
            else:
                self._helper = threading.Thread(target=self._pump_body, args=(upstream, body),
                                                name="engine-api-body", daemon=True)
                self._helper.start()
        return upstream, self._relay_answer(upstream, method)

    def _pump_body(self, upstream: Upstream, body: framing.Body) -> None:
        """Copy the rest of a request body from the client to the upstream (the exchange's second thread)."""
        try:
            while True:
                data = receive(self._client)
                if not data:  # a body that can never be finished
                    self._client_eof = True
                    shut(upstream.sock)
                    return
                end = body.feed(data, 0)
                if end < 0:
                    upstream.sock.sendall(data)
                    continue
                upstream.sock.sendall(data[:end])
                self._pending = data[end:]
                self._body_done = True
                return
        except framing.FramingError as error:
            log.info("relayed request body cut off: %s", error)
        except OSError:
            pass
        self._client_eof = True
        shut(upstream.sock)

    def _relay_answer(self, upstream: Upstream, method: bytes) -> bool | None:
        """Pass the upstream's answer to the client: whether the upstream connection may carry another
        exchange, or None when the exchange became a pipe and ended with it."""
        sock, client = upstream.sock, self._client
        data = b""
        start = 0  # where the head being read begins in `data` (interim answers before it were sent)
        while True:
            try:
                more = receive(sock)
            except OSError:
                more = b""
            if not more:
                if start:  # interim answers went out: the client saw part of an exchange
                    raise ConnectionAbortedError("the answer was cut short")
                raise _Died()
            data += more
            if not start:
                end = data.find(framing.HEAD_END)
                length = framing.plain_length(data, end) if end > 0 and method != b"HEAD" else -1
                if length >= 0 and end + 4 + length == len(data):  # the common case, whole in one read
                    client.sendall(data)
                    return True
            while True:  # interim (1xx) answers are passed on and the final one read after them
                end = data.find(framing.HEAD_END, start)
                if end < 0:
                    break
                try:
                    head = framing.parse_head(data[start:end + 4])
                    status = framing.answer_status(head)
                except framing.FramingError as error:
                    self._fail(502, "Bad Gateway", f"the engine's answer is malformed: {error}")
                    raise ConnectionAbortedError(str(error)) from None
                if status == 101:
                    client.sendall(data)
                    self._pipe(upstream)
                    return None
                if status >= 200:
                    return self._relay_body(upstream, method, head, status, data, end + 4)
                start = end + 4
            if len(data) - start > framing.HEAD_LIMIT:
                self._fail(502, "Bad Gateway", "the engine's answer head is too large")
                raise ConnectionAbortedError("answer head too large")

    def _relay_body(self, upstream: Upstream, method: bytes, head: framing.Head, status: int, data: bytes,
                    body_start: int) -> bool | None:
        body = framing.answer_body(head, status, method)
        if isinstance(body, framing.UntilClose):  # the older hijack, or an answer that ends when the engine closes
            self._client.sendall(data)
            self._pipe(upstream)
            return None
        reusable = body.reusable and framing.keeps_alive(head, head.first)
        sock, client = upstream.sock, self._client
        try:
            stop = body.feed(data, body_start)
            while stop < 0:
                client.sendall(data)
                data = receive(sock)
                if not data:
                    raise ConnectionAbortedError("the answer was cut short")
                stop = body.feed(data, 0)
        except framing.FramingError as error:
            log.warning("relayed answer for %s cut short: %s", method.decode("latin-1"), error)
            raise ConnectionAbortedError(str(error)) from None
        if stop < len(data):  # bytes past the answer's end: the connection is out of step
            reusable = False
            data = data[:stop]
        client.sendall(data)
        return reusable

    # -- hijacked: a pipe both ways ---------------------------------------------------------------

    def _pipe(self, upstream: Upstream) -> None:
        """Bytes both ways until both sides are done; each side's EOF passed on as a half-close."""
        helper, self._helper = self._helper, None
        if helper is not None:  # a body pump still running: the body is over as far as a pipe goes
            helper.join()
        pending, self._pending = self._pending, b""
        if pending:
            upstream.sock.sendall(pending)
        if self._tls is not None:
            self._pipe_in_turn(upstream.sock)
            return
        towards_engine = threading.Thread(target=self._copy, args=(self._client, upstream.sock, self._client_eof),
                                          name="engine-api-pipe", daemon=True)
        towards_engine.start()
        self._copy(upstream.sock, self._client, False)
        if _hung_up(upstream.sock):
            shut(self._client)  # the engine closed, not just half-closed: the client's stdin has nowhere to go
        towards_engine.join()

    def _pipe_in_turn(self, engine: socket.socket) -> None:
        """The pipe of a TLS client in this one thread (OpenSSL's connection is not for two at once),
        each side copied when select() finds it readable. TLS has no half-close: the engine's EOF ends
        the client's connection; the client's is passed on to the engine as one."""
        client = self._client
        sinks = {engine: client} if self._client_eof else {client: engine, engine: client}
        if self._client_eof:
            shut(engine, socket.SHUT_WR)
        while sinks:
            ready = [client] if client in sinks and client.pending() else select.select(list(sinks), [], [])[0]
            for source in ready:
                sink = sinks[source]
                try:
                    data = receive(source)
                    if data:
                        sink.sendall(data)
                        continue
                except OSError:
                    return  # either side broke: the connection ends (closed by run())
                if source is engine:
                    return
                del sinks[client]
                shut(engine, socket.SHUT_WR)

    @staticmethod
    def _copy(source: socket.socket, sink: socket.socket, at_eof: bool) -> None:
        try:
            while not at_eof:
                data = receive(source)
                if not data:
                    break
                sink.sendall(data)
        except OSError:  # either side broke: both directions end
            shut(source)
            shut(sink)
            return
        if isinstance(sink, ssl.SSLSocket):
            shut(sink)  # TLS has no half-close: the client's connection ends with the engine's side
        else:
            shut(sink, socket.SHUT_WR)

    def _fail(self, status: int, reason: str, message: str) -> bool:
        """Answer with docker's JSON error (nothing of an answer has been sent yet); the connection ends."""
        try:
            self._client.sendall(_error_answer(status, reason, message))
        except OSError:
            pass
        return False
