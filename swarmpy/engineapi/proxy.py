"""Relaying what is not a swarm object to the local Docker engine's socket, unchanged.

Ordinary requests are streamed both ways through an aiohttp client on the engine's unix socket: the
body as it arrives, the answer as the engine writes it (so `docker logs -f` and `/events` stream).
A request that asks to hijack the connection (`Connection: Upgrade`, `Upgrade: tcp`: attach and exec
start, as `docker run` and `docker exec -it` send them) gets its own raw connection to the engine: the
request is written as received, the engine's 101 answer is relayed, and from then on bytes are copied
in both directions until both sides are done; a client's half-close (stdin at EOF) is passed on as a
half-close, so the output that follows still arrives.

A path's API version above what the engine supports is lowered to the engine's own (swarmpyd may
speak a newer version than the engine it fronts); hop-by-hop headers are not relayed.
"""

from __future__ import annotations

import asyncio
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
_HEAD_LIMIT = 64 * 1024
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
        if "upgrade" in request.headers.get("Connection", "").lower():
            return await self._relay_hijacked(request)
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

    async def _relay_hijacked(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        reader, writer = await asyncio.open_unix_connection(self.socket_path, limit=_HEAD_LIMIT)
        try:
            head = [f"{request.method} {self.engine_path(request.rel_url.path)}"
                    f"{'?' + request.rel_url.query_string if request.rel_url.query_string else ''} HTTP/1.1"]
            for key, value in request.headers.items():
                if key.lower() not in ("content-length", "transfer-encoding"):
                    head.append(f"{key}: {value}")
            head.append(f"Content-Length: {len(body)}")
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
            status_line, headers = await _read_head(reader)
            status = int(status_line.split(" ", 2)[1])
            reply = web.StreamResponse(status=status)
            for key, value in headers:
                if key.lower() not in ("content-length", "transfer-encoding"):
                    reply.headers.add(key, value)
            if status != 101:
                # Refused (no such container, ...): relay the engine's answer as an ordinary one.
                rest = await reader.read()
                reply.content_length = len(rest)
                await reply.prepare(request)
                await reply.write(rest)
                await reply.write_eof()
                return reply
            payload_writer = await reply.prepare(request)
            payload_writer.send_headers()  # aiohttp holds them for the first body write, which never comes
            await _pipe(request, reader, writer)
            return reply
        finally:
            writer.close()


def _copy_headers(answer: aiohttp.ClientResponse, reply: web.StreamResponse) -> None:
    for key, value in answer.headers.items():
        if key.lower() not in _HOP_BY_HOP:
            reply.headers.add(key, value)


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, list[tuple[str, str]]]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line:
            key, _, value = line.partition(":")
            headers.append((key.strip(), value.strip()))
    return lines[0], headers


class _HijackedClient(asyncio.Protocol):
    """Takes over the client's transport from aiohttp once the connection is hijacked: every byte the
    client sends goes to the engine, and the client's EOF becomes a half-close towards the engine while
    our sending half stays open for the output still to come."""

    def __init__(self, engine_writer: asyncio.StreamWriter, http_protocol: asyncio.BaseProtocol) -> None:
        self._engine_writer = engine_writer
        self._http_protocol = http_protocol
        self.gone = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        if not self._engine_writer.is_closing():
            self._engine_writer.write(data)

    def eof_received(self) -> bool:
        if not self._engine_writer.is_closing() and self._engine_writer.can_write_eof():
            self._engine_writer.write_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone.set()
        self._engine_writer.close()
        self._http_protocol.connection_lost(exc)  # aiohttp's own bookkeeping for the closed connection


async def _pipe(request: web.Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    transport = request.transport
    assert transport is not None
    request.protocol.keep_alive(False)
    client = _HijackedClient(writer, request.protocol)
    transport.set_protocol(client)
    while not client.gone.is_set():
        chunk = await reader.read(65536)
        if not chunk:
            break
        transport.write(chunk)
    if not transport.is_closing() and transport.can_write_eof():
        transport.write_eof()
