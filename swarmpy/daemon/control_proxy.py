"""The Control service on the local socket, answered by whatever this daemon currently is.

A grpc.aio server cannot swap servicers once started, but the daemon changes role at run time (not in
a swarm, worker, manager). So the socket serves a proxy whose every method asks the daemon for the
current Control implementation and forwards, or fails with docker's message for this node's role.

A manager that is starting (the daemon restarted, or a demotion is under way) has no Control yet, but
it is not "not a swarm manager": a call then waits, bounded by STARTING_WAIT, for the manager to come
up -- as a call that finds no leader waits for one (control_router) -- and is refused as UNAVAILABLE,
nothing applied, only if it does not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc

from swarmpy.api import control_pb2, control_pb2_grpc
from swarmpy.grpc_methods import install_methods

NOT_IN_SWARM = (
    'This node is not a swarm manager. Use "swarmpy swarm init" or "swarmpy swarm join" to connect this node'
    " to swarm and try again."
)
WORKER_NODE = (
    "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run"
    " this command on a manager node or promote the current node to a manager."
)


# Opening the Raft log and serving the swarm port take about a second; a large log takes longer to read.
STARTING_WAIT = 15.0
STARTING_POLL = 0.05  # the manager is set once, from the daemon's own loop: looking again is cheap


def still_starting_after(waited: float) -> str:
    return f"this node's swarm manager did not finish starting within {waited:.1f} s; the request was not applied"


class NoControl(Exception):
    """This daemon cannot answer Control calls now; the message says why, for the user. `starting`: it
    will soon (its manager is coming up), so the caller may wait."""

    def __init__(self, message: str, *, starting: bool = False) -> None:
        super().__init__(message)
        self.starting = starting


ControlResolver = Callable[[], control_pb2_grpc.ControlServicer]  # raises NoControl


def _unary(name: str) -> Callable[..., Any]:
    async def forward(self: ControlProxy, request: Any, context: grpc.aio.ServicerContext) -> Any:
        target = await self._target(context)
        return await getattr(target, name)(request, context)

    return forward


def _server_streaming(name: str) -> Callable[..., Any]:
    async def forward(self: ControlProxy, request: Any, context: grpc.aio.ServicerContext) -> Any:
        target = await self._target(context)
        async for message in getattr(target, name)(request, context):
            yield message

    return forward


class ControlProxy(control_pb2_grpc.ControlServicer):
    def __init__(self, resolve: ControlResolver) -> None:
        self._resolve = resolve

    async def _target(self, context: grpc.aio.ServicerContext) -> control_pb2_grpc.ControlServicer:
        try:
            return await current_control(self._resolve)
        except NoControl as exc:
            code = grpc.StatusCode.UNAVAILABLE if exc.starting else grpc.StatusCode.FAILED_PRECONDITION
            await context.abort(code, str(exc))
            raise  # abort raises; this keeps type checkers and readers sure we never fall through


async def current_control(resolve: ControlResolver) -> control_pb2_grpc.ControlServicer:
    """What `resolve` gives, once this node's manager has started (waited for up to STARTING_WAIT);
    NoControl if this node has no Control to offer, or its manager did not start in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTING_WAIT
    while True:
        try:
            return resolve()
        except NoControl as exc:
            if not exc.starting:
                raise
            if loop.time() >= deadline:
                raise NoControl(still_starting_after(STARTING_WAIT), starting=True) from None
        await asyncio.sleep(STARTING_POLL)


install_methods(ControlProxy, control_pb2.DESCRIPTOR, "Control", _unary, _server_streaming)
