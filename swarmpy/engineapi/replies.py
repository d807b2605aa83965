"""Writing answers as the engine writes them: JSON with Content-Type exactly application/json (a
charset suffix makes the docker CLI print an error's raw JSON instead of its message), one trailing
newline as Go's json.Encoder leaves, and errors as {"message": ...}."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

JSON = "application/json"
log = logging.getLogger(__name__)


def json_reply(value: Any, status: int = 200) -> web.Response:
    body = json.dumps(value, separators=(",", ":")).encode() + b"\n"
    return web.Response(status=status, body=body, headers={"Content-Type": JSON})


def error_reply(status: int, message: str) -> web.Response:
    return json_reply({"message": message}, status)


def empty_reply(status: int = 200) -> web.Response:
    return web.Response(status=status)


async def read_json(request: web.Request) -> Any:
    """The request's JSON body, or a 400 naming what is wrong with it (an empty body reads as {})."""
    from .errors import BadRequest

    body = await request.read()  # bounded by the application's client_max_size
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"invalid JSON: {exc}") from None


def log_unmodelled(what: str, warnings: list[str]) -> None:
    """What swarmpy dropped from a spec whose answer has no Warnings in the Engine API (secret and config
    create, node and swarm update): said in the daemon's log rather than nowhere."""
    for warning in warnings:
        log.warning("%s: %s", what, warning)
