"""The LocalNode service: init, join, leave and info for this daemon, on its unix socket only."""

from __future__ import annotations

import grpc

from swarmpy.api import control_pb2, control_pb2_grpc


class LocalNodeError(Exception):
    """A LocalNode request cannot be done; `code` is the gRPC status, the message is for the user."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class LocalNodeServicer(control_pb2_grpc.LocalNodeServicer):
    def __init__(self, daemon: "Daemon") -> None:  # noqa: F821 - the daemon module imports this one
        self._daemon = daemon

    async def Info(self, request: control_pb2.InfoRequest, context: grpc.aio.ServicerContext) -> control_pb2.InfoResponse:
        return self._daemon.info()

    async def Init(self, request: control_pb2.InitRequest, context: grpc.aio.ServicerContext) -> control_pb2.InitResponse:
        try:
            node_id = await self._daemon.init(request)
        except LocalNodeError as exc:
            await context.abort(exc.code, str(exc))
        return control_pb2.InitResponse(node_id=node_id)

    async def Join(self, request: control_pb2.JoinRequest, context: grpc.aio.ServicerContext) -> control_pb2.JoinResponse:
        try:
            await self._daemon.join(request)
        except LocalNodeError as exc:
            await context.abort(exc.code, str(exc))
        return control_pb2.JoinResponse()

    async def Unlock(self, request: control_pb2.UnlockRequest, context: grpc.aio.ServicerContext) -> control_pb2.UnlockResponse:
        try:
            await self._daemon.unlock(request.unlock_key)
        except LocalNodeError as exc:
            await context.abort(exc.code, str(exc))
        return control_pb2.UnlockResponse()

    async def Leave(self, request: control_pb2.LeaveRequest, context: grpc.aio.ServicerContext) -> control_pb2.LeaveResponse:
        try:
            await self._daemon.leave(force=request.force)
        except LocalNodeError as exc:
            await context.abort(exc.code, str(exc))
        return control_pb2.LeaveResponse()
