"""The local Docker engine as swarmpy's own handlers use it: its version, JSON it answers, and relaying
a request a handler decided is the engine's after all (a local network's create, inspect or delete).

All of it goes over the engine connections the front door relays on (upstreams.Pool, shared with
relay.py): a request is sent whole and its answer read whole by upstreams.exchange, in a thread of the
engine's own small pool, within EXCHANGE_TIMEOUT. Not the event loop's default executor: that one also
runs Raft's disk writes (and has only cpu_count + 4 threads), so an engine that accepts connections but
never answers would otherwise stall the manager's Raft loop behind a handful of `docker version` calls.
Requests that are the engine's from their path alone never get here: relay.py's front door relays
them raw, streams and hijacked connections included; what comes here is small (an answer is bounded
by upstreams.ANSWER_LIMIT, a request body by the application's MAX_BODY_BYTES). A path's API version
above what the engine supports is lowered to the engine's own (swarmpyd may speak a newer version
than the engine it fronts); hop-by-hop headers are not relayed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from .errors import EngineError
from .framing import FramingError
from .upstreams import Answer, Pool, exchange, unix_opener

log = logging.getLogger(__name__)

DEFAULT_ENGINE_SOCKET = "/var/run/docker.sock"
EXCHANGE_THREADS = 8
EXCHANGE_TIMEOUT = 60.0  # seconds without a byte from the engine before a handler's request to it fails
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
               "host", "content-length"}
_VERSION_PREFIX = re.compile(r"^/v(\d+)\.(\d+)(?=/)")


class EngineStatusError(Exception):
    """The engine answered, with an error status; `message` is its own words when it gave them."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor)


class Engine:
    """The local Docker engine, reached on its unix socket through `pool` (the front door's too)."""

    def __init__(self, socket_path: str = DEFAULT_ENGINE_SOCKET, timeout: float = EXCHANGE_TIMEOUT) -> None:
        self.socket_path = socket_path
        self.pool = Pool("engine", unix_opener(socket_path))
        self.timeout = timeout
        self.api_version: tuple[int, int] | None = None  # learnt at start(); None: not reachable then
        self._threads = ThreadPoolExecutor(EXCHANGE_THREADS, thread_name_prefix="engine-exchange")

    async def start(self) -> None:
        try:
            version = await self.get_json("/version")
            self.api_version = version_tuple(version["ApiVersion"])
        except (EngineStatusError, OSError, KeyError, ValueError, TypeError) as exc:
            log.warning("the Docker engine at %s did not answer /version (%r): requests for it will fail",
                        self.socket_path, exc)

    async def close(self) -> None:
        self.pool.close()
        self._threads.shutdown(wait=False, cancel_futures=True)  # a thread in an exchange ends by its timeout

    async def ask(self, method: str, target: str, headers: list[tuple[str, str]] | None = None,
                  body: bytes = b"") -> Answer:
        """One exchange with the engine. Raises OSError (not reachable, or it went away) or
        FramingError (an answer not to be trusted); ValueError for a target that is not one."""
        if any(character in target for character in " \r\n"):
            raise ValueError(f"not a request target: {target!r}")
        lines = [f"{method} {target} HTTP/1.1", "Host: docker"]
        lines += [f"{name}: {value}" for name, value in headers or ()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        return await asyncio.get_running_loop().run_in_executor(
            self._threads, exchange, self.pool, method.encode(), request, self.timeout)

    async def get_json(self, path: str) -> Any:
        """The engine's JSON answer to GET `path`. Raises EngineStatusError for an error status, OSError
        and ValueError (FramingError, or a body that is not JSON) as ask() and json.loads do."""
        answer = await self.ask("GET", path)
        if answer.status >= 400:
            raise EngineStatusError(answer.status, _message(answer))
        return json.loads(answer.body)

    def engine_path(self, path: str) -> str:
        """`path` with its /vX.Y lowered to the engine's version when it asks for more."""
        match = _VERSION_PREFIX.match(path)
        if match is None or self.api_version is None:
            return path
        if (int(match.group(1)), int(match.group(2))) <= self.api_version:
            return path
        return f"/v{self.api_version[0]}.{self.api_version[1]}" + path[match.end():]

    async def relay(self, request: web.Request, body: bytes | None = None) -> web.Response:
        """Relay `request` to the engine and give its answer back; `body` when a handler has read it
        already (else it is read here, bounded as every swarm request's body is)."""
        if body is None:
            body = await request.read() if request.body_exists else b""
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        query = request.rel_url.raw_query_string
        target = self.engine_path(request.rel_url.raw_path) + (f"?{query}" if query else "")
        try:
            answer = await self.ask(request.method, target, headers, body)
        except (OSError, FramingError) as exc:
            raise EngineError(502, f"the Docker engine at {self.socket_path} did not answer: {exc}") from None
        reply = web.Response(status=answer.status, reason=answer.reason, body=answer.body)
        for key, value in answer.headers:
            if key.lower() not in _HOP_BY_HOP:
                reply.headers.add(key, value)
        return reply


def _message(answer: Answer) -> str:
    """The engine's {"message": ...} words, or its status line's."""
    try:
        message = json.loads(answer.body).get("message")
    except (ValueError, AttributeError):
        message = None
    return message if isinstance(message, str) else answer.reason
