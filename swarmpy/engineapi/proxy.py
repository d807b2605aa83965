"""The local Docker engine as swarmpy's own handlers use it: its version, its ping headers, JSON it
answers, and relaying a request a handler decided is the engine's after all (a local network's create,
inspect or delete), through an aiohttp client on the engine's unix socket.

Requests that are the engine's from their path alone never get here: relay.py's front door relays
them raw, hijacked connections included. A path's API version above what the engine supports is
lowered to the engine's own (swarmpyd may speak a newer version than the engine it fronts); hop-by-hop
headers are not relayed.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import aiohttp
from aiohttp import web

log = logging.getLogger(__name__)

DEFAULT_ENGINE_SOCKET = "/var/run/docker.sock"
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
               "host", "content-length"}
_VERSION_PREFIX = re.compile(r"^/v(\d+)\.(\d+)(?=/)")
_BUFFERED_LIMIT = 1024 * 1024  # an answer of known length up to this is relayed in one piece


def version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor)


class Engine:
    """The local Docker engine, reached on its unix socket."""

    def __init__(self, socket_path: str = DEFAULT_ENGINE_SOCKET) -> None:
        self.socket_path = socket_path
        self.api_version: tuple[int, int] | None = None  # learnt at start(); None: not reachable then
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=self.socket_path, limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            auto_decompress=False,
        )
        try:
            version = await self.get_json("/version")
            self.api_version = version_tuple(version["ApiVersion"])
        except (aiohttp.ClientError, OSError, KeyError, ValueError, TypeError) as exc:
            log.warning("the Docker engine at %s did not answer /version (%r): requests for it will fail",
                        self.socket_path, exc)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def get_json(self, path: str) -> Any:
        assert self._session is not None
        async with self._session.get(f"http://docker{path}") as answer:
            answer.raise_for_status()
            return await answer.json(content_type=None)

    async def ping_headers(self) -> dict[str, str]:
        assert self._session is not None
        async with self._session.get("http://docker/_ping") as answer:
            return dict(answer.headers)

    def engine_path(self, path: str) -> str:
        """`path` with its /vX.Y lowered to the engine's version when it asks for more."""
        match = _VERSION_PREFIX.match(path)
        if match is None or self.api_version is None:
            return path
        if (int(match.group(1)), int(match.group(2))) <= self.api_version:
            return path
        return f"/v{self.api_version[0]}.{self.api_version[1]}" + path[match.end():]

    # -- relaying ------------------------------------------------------------------------------

    async def relay(self, request: web.Request, body: bytes | None = None) -> web.StreamResponse:
        """Relay `request` to the engine; `body` when a handler has read it already."""
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        has_body = request.body_exists
        target = self.engine_path(request.rel_url.path) + (f"?{request.rel_url.query_string}" if request.rel_url.query_string else "")
        try:
            answer = await self._session.request(
                request.method, f"http://docker{target}", headers=headers,
                data=body if body is not None else (request.content.iter_any() if has_body else None),
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                allow_redirects=False,
            )
        except (aiohttp.ClientError, OSError) as exc:
            from .errors import EngineError

            raise EngineError(502, f"the Docker engine at {self.socket_path} did not answer: {exc}") from None
        try:
            length = answer.headers.get("Content-Length")
            if length is not None and request.method != "HEAD" and int(length) <= _BUFFERED_LIMIT:
                # Small and whole (docker ps, inspect, ...): read it and answer in one write, which is
                # most of what a relayed request costs (a streamed answer pays a write per chunk).
                body = await answer.read()
                reply = web.Response(status=answer.status, reason=answer.reason, body=body)
                _copy_headers(answer, reply)
                return reply
            reply = web.StreamResponse(status=answer.status, reason=answer.reason)
            _copy_headers(answer, reply)
            if length is not None and request.method != "HEAD":
                reply.content_length = int(length)
            await reply.prepare(request)
            async for chunk in answer.content.iter_any():
                await reply.write(chunk)
            await reply.write_eof()
            return reply
        finally:
            answer.release()


def _copy_headers(answer: aiohttp.ClientResponse, reply: web.StreamResponse) -> None:
    for key, value in answer.headers.items():
        if key.lower() not in _HOP_BY_HOP:
            reply.headers.add(key, value)
