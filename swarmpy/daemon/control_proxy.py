"""The Control service on the local socket, answered by whatever this daemon currently is.

A grpc.aio server cannot swap servicers once started, but the daemon changes role at run time (not in
a swarm, worker, manager). So the socket serves a proxy whose every method asks the daemon for the
current Control implementation and forwards, or fails with docker's message for this node's role.
"""

from __future__ import annotations

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


class NoControl(Exception):
    """This daemon cannot answer Control calls now; the message says why, for the user."""


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
            return self._resolve()
        except NoControl as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            raise  # abort raises; this keeps type checkers and readers sure we never fall through


install_methods(ControlProxy, control_pb2.DESCRIPTOR, "Control", _unary, _server_streaming)
