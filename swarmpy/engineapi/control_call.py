"""Calling the Control servicer in-process, as the gRPC door would, and getting docker's errors back.

The servicer (and the router in front of it, which forwards to the leader) reports refusals with
`await context.abort(code, details)`. `InProcessContext` is the slice of grpc.aio.ServicerContext they
use; its abort raises `Refused`, a grpc.aio.AbortError, so the servicers' own "an abort passes through"
rule applies unchanged. `call_control` resolves what this daemon currently is (not in a swarm, worker,
manager; a manager still starting is waited for) exactly as the gRPC socket's ControlProxy does, and
turns a refusal into an EngineError.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from swarmpy.daemon.control_proxy import NoControl, current_control

from .errors import NOT_A_MANAGER, EngineError, from_status


class Refused(grpc.aio.AbortError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class InProcessContext:
    """What the control servicers ask of a gRPC context, for a call that never left this process."""

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        raise Refused(code, details)

    def invocation_metadata(self) -> tuple:
        return ()

    def peer(self) -> str:
        return "unix:engine-api"

    def auth_context(self) -> dict:
        return {}


async def _servicer(daemon: Any) -> Any:
    try:
        return await current_control(daemon.control)
    except NoControl as exc:
        # The gRPC door words this for the swarmpy CLI; the Engine API says what dockerd says.
        raise EngineError(503, NOT_A_MANAGER if daemon.swarm is None else str(exc)) from None


async def call_control(daemon: Any, rpc: str, request: Any) -> Any:
    servicer = await _servicer(daemon)
    try:
        return await getattr(servicer, rpc)(request, InProcessContext())
    except Refused as refused:
        raise from_status(refused.code, refused.details) from None


async def stream_control(daemon: Any, rpc: str, request: Any) -> AsyncIterator[Any]:
    servicer = await _servicer(daemon)
    try:
        async for message in getattr(servicer, rpc)(request, InProcessContext()):
            yield message
    except Refused as refused:
        raise from_status(refused.code, refused.details) from None
