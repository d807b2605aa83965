"""Any manager answers Control: the leader serves it, a follower forwards it to the leader.

Why forward reads too, rather than answer from the follower's store: the leader, after a ReadIndex
barrier, is the one place a read is linearizable -- it reflects every write acknowledged before it,
even one acknowledged a moment ago through another manager. (swarmkit's managers proxy Control to the
leader for the same reason.) The barrier also makes a deposed leader that has not noticed yet refuse
rather than serve stale state.

A forwarded unary call is abandoned when this manager's idea of the leader changes while it waits
(UNAVAILABLE, no leader): a leader that froze or lost its network still accepts the connection and
would hold the call until FORWARD_TIMEOUT, whereas a follower stops believing in it after one
election timeout. (Like any call cut short, a write abandoned this way may or may not have applied.)

A forwarded call is marked, and a manager that receives a marked call but is not the leader refuses
it: leadership moved while the call was in flight, and bouncing it on could loop. Without a known
leader, calls fail at once with UNAVAILABLE ("the swarm does not have a leader"): they never hang.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from swarmpy.aio import unless_set
from swarmpy.api import control_pb2, control_pb2_grpc
from swarmpy.grpc_methods import install_methods

log = logging.getLogger(__name__)

NO_LEADER = "the swarm does not have a leader"
FORWARDED_KEY = "swarmpy-forwarded"
FORWARD_TIMEOUT = 15.0  # a forwarded write waits for its Raft commit on the leader


class ControlRouter(control_pb2_grpc.ControlServicer):
    def __init__(
        self,
        local: control_pb2_grpc.ControlServicer,
        *,
        is_leader: Callable[[], bool],
        read_barrier: Callable[[], Awaitable[Any]],
        leader_channel: Callable[[], grpc.aio.Channel | None],
        barrier_timeout: float,
        leader_moved: Callable[[], asyncio.Event] | None = None,
    ) -> None:
        """`leader_moved()` returns an event that will be set at the next change of leader (never set if None)."""
        self._local = local
        self._leader_moved = leader_moved or asyncio.Event
        self._is_leader = is_leader
        self._read_barrier = read_barrier
        self._leader_channel = leader_channel
        self._barrier_timeout = barrier_timeout

    async def _serve_locally(self, context: grpc.aio.ServicerContext) -> bool:
        """True to serve here (after the read barrier); False to forward; aborts when neither can be done."""
        if self._is_leader():
            try:
                async with asyncio.timeout(self._barrier_timeout):  # not wait_for: 3.11's can swallow a cancel
                    await self._read_barrier()
            except Exception as exc:  # the barrier fails in many ways (timeout, lost leadership): all mean no leader
                log.info("read barrier failed: %r", exc)
                await context.abort(grpc.StatusCode.UNAVAILABLE, NO_LEADER)
            return True
        if any(key == FORWARDED_KEY for key, _ in (context.invocation_metadata() or ())):
            await context.abort(grpc.StatusCode.UNAVAILABLE, NO_LEADER)
        return False

    async def _leader_stub(self, context: grpc.aio.ServicerContext) -> control_pb2_grpc.ControlStub:
        channel = self._leader_channel()
        if channel is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, NO_LEADER)
        return control_pb2_grpc.ControlStub(channel)


async def _relay_error(context: grpc.aio.ServicerContext, error: grpc.aio.AioRpcError) -> None:
    code = error.code()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        # The transport's own words ("failed to connect ... Connection refused") stay in the log: relayed to
        # the CLI they read as if the user's local daemon were unreachable, and it is not.
        log.info("forwarding to the leader failed: %s: %s", code.name, error.details())
        await context.abort(grpc.StatusCode.UNAVAILABLE, f"{NO_LEADER} (the last known leader did not answer)")
    await context.abort(code, error.details() or "")


async def _forward_unless_leader_moves(call: grpc.aio.UnaryUnaryCall, moved: asyncio.Event) -> Any:
    """The forwarded call's answer, or None (the call cancelled) if the leader changed first."""
    try:
        raced = await unless_set(call, moved)
    except asyncio.CancelledError:
        call.cancel()  # whoever cancelled us no longer wants the answer: the leader may stop working on it
        raise
    if not raced.finished:
        call.cancel()
    return raced.value


def _unary(name: str) -> Callable[..., Any]:
    async def route(self: ControlRouter, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if await self._serve_locally(context):
            return await getattr(self._local, name)(request, context)
        moved = self._leader_moved()
        stub = await self._leader_stub(context)
        try:
            call = getattr(stub, name)(request, metadata=((FORWARDED_KEY, "1"),), timeout=FORWARD_TIMEOUT)
            answer = await _forward_unless_leader_moves(call, moved)
        except grpc.aio.AioRpcError as error:
            await _relay_error(context, error)
        if answer is None:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"{NO_LEADER} (leadership moved while the call waited for the leader; it may or may not have been applied)",
            )
        return answer

    return route


def _server_streaming(name: str) -> Callable[..., Any]:
    async def route(self: ControlRouter, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if await self._serve_locally(context):
            async for message in getattr(self._local, name)(request, context):
                yield message
            return
        stub = await self._leader_stub(context)
        try:
            async for message in getattr(stub, name)(request, metadata=((FORWARDED_KEY, "1"),)):
                yield message
        except grpc.aio.AioRpcError as error:
            await _relay_error(context, error)

    return route


install_methods(ControlRouter, control_pb2.DESCRIPTOR, "Control", _unary, _server_streaming)
