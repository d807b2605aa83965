"""The Engine API application: routes, API versions, errors and the listeners swarmpyd serves it on.

The listeners accept into relay.py's front door, which sends swarm requests here (over in-process
socketpairs) and relays everything else raw to the engine.

Every route is served with and without a /vX.Y prefix. A version above MAX_API_VERSION or below
MIN_API_VERSION is refused with the engine's own 400 words. Handlers raise EngineError; the error
middleware writes it as the engine does, and turns anything unexpected into a logged 500 (a swarmpy
bug) rather than a dropped connection. Bodies of swarm requests are read whole and bounded by
MAX_BODY_BYTES; proxied bodies (image loads, builds) stream and are not bounded here.

Listeners: the unix socket (mode 0660, group `docker` when it exists, as dockerd's) and, only when
asked, TCP, which requires TLS with client certificates signed by the given CA unless `--api-insecure`
is spelled out.
"""

from __future__ import annotations

import asyncio
import grp
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from . import networks, nodes, secrets, services, swarm, system, tasks
from .errors import EngineError
from .keys import DAEMON, ENGINE
from .proxy import Engine, version_tuple
from .relay import MAX_CONNECTIONS, FrontDoor, SwarmRoutes
from .upstreams import Pool, in_process_opener
from .replies import error_reply

log = logging.getLogger(__name__)

MIN_API_VERSION = (1, 24)
MAX_API_VERSION = (1, 50)
MAX_BODY_BYTES = 4 * 1024 * 1024  # a secret's 500 KB, base64'd, fits many times over
SWARM_KINDS = ("swarm", "nodes", "services", "tasks", "secrets", "configs")  # never reach the engine
_VERSION = r"/v{version:[0-9]+\.[0-9]+}"
_BACKLOG = 128


def show_version(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


@dataclass
class Listeners:
    socket_path: str | None
    tcp_addr: str | None = None  # host:port
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    insecure: bool = False
    max_connections: int = MAX_CONNECTIONS  # client connections served at once (relay.FrontDoor)

    def check(self) -> None:
        """Refuse a connection cap below one, and a TCP listener that would answer anyone (raises
        ValueError, for the command line)."""
        if self.max_connections < 1:
            raise ValueError(f"--api-max-connections must be at least 1, not {self.max_connections}")
        if not self.tcp_addr:
            return
        if self.insecure:
            return
        missing = [flag for flag, value in (("--api-tls-cert", self.tls_cert), ("--api-tls-key", self.tls_key),
                                            ("--api-tls-ca", self.tls_ca)) if not value]
        if missing:
            raise ValueError(f"--api-listen needs {', '.join(missing)} (client certificates), or --api-insecure")


@web.middleware
async def engine_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except EngineError as error:
        return error_reply(error.status, error.message)
    except web.HTTPRequestEntityTooLarge:
        return error_reply(413, f"request body is too large: the limit is {MAX_BODY_BYTES} bytes")
    except web.HTTPException as error:
        if error.status == 404:
            return error_reply(404, "page not found")
        return error_reply(error.status, error.reason)
    except (ConnectionResetError, ConnectionError):
        raise
    except Exception as error:  # a bug: the client gets a 500 and the log gets the traceback
        log.exception("Engine API %s %s failed", request.method, request.path)
        return error_reply(500, f"internal error in swarmpyd (a bug): {error!r}")


def version_refusal(asked: str) -> str | None:
    """Docker's 400 words for an API version outside MIN_API_VERSION..MAX_API_VERSION, else None."""
    version = version_tuple(asked)
    if version > MAX_API_VERSION:
        return f"client version {asked} is too new. Maximum supported API version is {show_version(MAX_API_VERSION)}"
    if version < MIN_API_VERSION:
        return (f"client version {asked} is too old. Minimum supported API version is"
                f" {show_version(MIN_API_VERSION)}, please upgrade your client to a newer version")
    return None


@web.middleware
async def api_versions(request: web.Request, handler: Any) -> web.StreamResponse:
    asked = request.match_info.get("version")
    if asked is not None:
        refusal = version_refusal(asked)
        if refusal is not None:
            raise EngineError(400, refusal)
    return await handler(request)


def _route(app: web.Application, method: str, path: str, handler: Any) -> None:
    app.router.add_route(method, path, handler)
    app.router.add_route(method, _VERSION + path, handler)


async def _no_such_page(request: web.Request) -> web.StreamResponse:
    raise EngineError(404, "page not found")


def _swarm_routes() -> list[tuple[str, str]]:
    return [(method, path) for module in (system, swarm, nodes, services, tasks, secrets, networks)
            for method, path, _ in module.ROUTES]


def build_app(daemon: Any, engine: Engine) -> web.Application:
    """swarmpy's own answers; the front door (relay.py) sends it only what `_swarm_routes` and
    SWARM_KINDS cover, and everything else to the engine."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[engine_errors, api_versions])
    app[DAEMON] = daemon
    app[ENGINE] = engine
    for module in (system, swarm, nodes, services, tasks, secrets, networks):
        for method, path, handler in module.ROUTES:
            _route(app, method, path, handler)
    for kind in SWARM_KINDS:
        _route(app, "*", f"/{kind}" + "{tail:(/.*)?}", _no_such_page)
    return app


def _tls_context(listeners: Listeners) -> ssl.SSLContext | None:
    if listeners.insecure and not listeners.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=listeners.tls_ca)
    context.load_cert_chain(listeners.tls_cert, listeners.tls_key)
    context.verify_mode = ssl.CERT_REQUIRED if listeners.tls_ca else ssl.CERT_NONE
    return context


class EngineApiServer:
    """The Engine API on this daemon's listeners; `start` and `stop` are the daemon's to call.

    The listeners accept into the relay's front door (blocking sockets, its threads); swarmpy's aiohttp
    application has no listener of its own and is reached by the door over in-process socketpairs."""

    def __init__(self, daemon: Any, listeners: Listeners, engine_socket: str) -> None:
        self._daemon = daemon
        self._listeners = listeners
        self.engine = Engine(engine_socket)
        self._runner: web.AppRunner | None = None
        self.door: FrontDoor | None = None

    async def start(self) -> None:
        await self.engine.start()
        runner = web.AppRunner(build_app(self._daemon, self.engine), access_log=None, shutdown_timeout=2.0,
                               handle_signals=False)
        await runner.setup()
        self._runner = runner
        assert runner.server is not None
        self.door = FrontDoor(SwarmRoutes(_swarm_routes(), SWARM_KINDS),
                              swarm=Pool("swarmpyd", in_process_opener(asyncio.get_running_loop(), runner.server)),
                              engine=self.engine.pool,
                              engine_version=lambda: self.engine.api_version, version_refusal=version_refusal,
                              max_connections=self._listeners.max_connections)
        path = self._listeners.socket_path
        if path:
            socket_path = Path(path)
            socket_path.parent.mkdir(parents=True, exist_ok=True)
            socket_path.unlink(missing_ok=True)  # the daemon already refused to start over a live one
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(path)
            os.chmod(path, 0o660)
            _give_to_docker_group(path)
            listener.listen(_BACKLOG)
            self.door.serve(listener)
        if self._listeners.tcp_addr:
            host, _, port = self._listeners.tcp_addr.rpartition(":")
            host = host.strip("[]") or "0.0.0.0"
            listener = socket.create_server((host, int(port)), backlog=_BACKLOG,
                                            family=socket.AF_INET6 if ":" in host else socket.AF_INET)
            self.door.serve(listener, _tls_context(self._listeners))

    async def stop(self) -> None:
        if self.door is not None:
            self.door.close()
            await asyncio.to_thread(self.door.join, 5.0)  # the relay's threads, woken by close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.engine.close()
        if self._listeners.socket_path:
            Path(self._listeners.socket_path).unlink(missing_ok=True)


def _give_to_docker_group(path: str) -> None:
    """Who may use dockerd's socket may use this one: root and the `docker` group."""
    try:
        os.chown(path, 0, grp.getgrnam("docker").gr_gid)
    except (KeyError, PermissionError):
        pass
