"""The Dispatcher service as every manager serves it: forwarded to the running Dispatcher on the leader,
refused with a redirect everywhere else.

A grpc.aio server cannot swap servicers once started, so each manager registers one DispatcherGate and the
lead's wiring calls `serve(dispatcher)` on election and `stop_serving()` on losing it. While no dispatcher
is being served, every call fails UNAVAILABLE "not the leader", with the leader's address (from the
`leader_addr` hook) in the details and in the trailing metadata key LEADER_ADDR_KEY, so that an agent can
go straight to the leader.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from swarmpy.api import dispatcher_pb2_grpc

from swarmpy.leader_redirect import LEADER_ADDR_KEY, leader_redirect, refusal

from .dispatcher import Dispatcher

__all__ = ["LEADER_ADDR_KEY", "DispatcherGate", "leader_redirect"]

class DispatcherGate(dispatcher_pb2_grpc.DispatcherServicer):
    def __init__(self, leader_addr: Callable[[], str | None]) -> None:
        self._leader_addr = leader_addr
        self._dispatcher: Dispatcher | None = None

    def serve(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    def stop_serving(self) -> None:
        self._dispatcher = None

    async def _refuse(self, context: grpc.aio.ServicerContext) -> None:
        details, trailing = refusal(self._leader_addr() or "")
        await context.abort(grpc.StatusCode.UNAVAILABLE, details, trailing_metadata=trailing)

    async def _unary(self, name: str, request: Any, context: grpc.aio.ServicerContext) -> Any:
        dispatcher = self._dispatcher
        if dispatcher is None:
            await self._refuse(context)
        return await getattr(dispatcher, name)(request, context)

    async def _stream(self, name: str, request: Any, context: grpc.aio.ServicerContext) -> Any:
        dispatcher = self._dispatcher
        if dispatcher is None:
            await self._refuse(context)
        async for message in getattr(dispatcher, name)(request, context):
            yield message

    async def Session(self, request, context):
        async for message in self._stream("Session", request, context):
            yield message

    async def Assignments(self, request, context):
        async for message in self._stream("Assignments", request, context):
            yield message

    async def LogSubscriptions(self, request, context):
        async for message in self._stream("LogSubscriptions", request, context):
            yield message

    async def Heartbeat(self, request, context):
        return await self._unary("Heartbeat", request, context)

    async def UpdateTaskStatus(self, request, context):
        return await self._unary("UpdateTaskStatus", request, context)

    async def PublishLogs(self, request_iterator, context):
        return await self._unary("PublishLogs", request_iterator, context)
