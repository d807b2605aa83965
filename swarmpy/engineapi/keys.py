"""The keys of the Engine API application's state: typed aiohttp AppKeys (a plain string key makes
aiohttp warn NotAppKeyWarning, and tells a type checker nothing about what the handlers get back)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .proxy import Engine

if TYPE_CHECKING:
    from swarmpy.daemon.daemon import Daemon

DAEMON: web.AppKey[Daemon] = web.AppKey("daemon")
ENGINE = web.AppKey("engine", Engine)
