"""Any manager answers Control: the leader serves it, a follower forwards it to the leader.

Why forward reads too, rather than answer from the follower's store: the leader, after a ReadIndex
barrier, is the one place a read is linearizable -- it reflects every write acknowledged before it,
even one acknowledged a moment ago through another manager. (swarmkit's managers proxy Control to the
leader for the same reason.) The barrier also makes a deposed leader that has not noticed yet refuse
rather than serve stale state.

Riding through a failover. A call that finds no leader -- none known, the known one unreachable, or
one that says it is not the leader any more -- waits for the next change of leader and tries again,
until `leader_wait()` seconds (about two election timeouts) have passed since the call arrived; then it
fails with UNAVAILABLE, saying that no leader was elected in that time and that nothing was applied.
A write is tried again only while it certainly was not proposed:
- the channel to the leader never connected (grpc fails such a call before sending anything), or
- the leader refused it before proposing and said so with NOT_APPLIED in the trailing metadata (its
  router found it is not the leader, its read barrier failed, or its store's proposal was refused at
  once: NotLeader, ProposalDropped -- see controlapi.errors).
Once a write may have reached a leader's Raft log it is never sent again, so nothing is duplicated:
a forwarded write cut short (the leader's connection broke, or this manager's idea of the leader
changed while it waited: a leader that froze or lost its network keeps the connection and would hold
the call until FORWARD_TIMEOUT) fails with "it may or may not have been applied". Reads are retried in
every such case: they change nothing, and each attempt passes the leader's read barrier again.

A forwarded call is marked, and a manager that receives a marked call but is not the leader refuses
it (NOT_APPLIED): leadership moved while the call was in flight, and bouncing it on could loop; the
manager that forwarded it waits for the new leader instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from swarmpy.aio import unless_set
from swarmpy.api import control_pb2, control_pb2_grpc
from swarmpy.grpc_methods import install_methods

from .controlapi.errors import NO_LEADER, NOT_APPLIED, NOT_APPLIED_KEY

log = logging.getLogger(__name__)

FORWARDED_KEY = "swarmpy-forwarded"
FORWARD_TIMEOUT = 15.0  # a forwarded write waits for its Raft commit on the leader
READ_PREFIXES = ("Get", "List")  # Control methods that change nothing

# grpc's words for a call that failed because its channel never connected: nothing was sent.
_NOT_CONNECTED_MARKERS = ("failed to connect", "connection refused", "connect failed", "dns resolution failed")


def no_leader_after_wait(waited: float) -> str:
    """What the user reads when the wait for a leader ran out (docker's advice follows our words)."""
    return (
        f"{NO_LEADER}: none was elected within {waited:.1f} s, and the request was not applied. It's possible that"
        " too few managers are online. Make sure more than half of the managers are online."
    )


class _TryAgain(Exception):
    """This attempt found no leader to serve the call, and nothing of it was applied."""


class ControlRouter(control_pb2_grpc.ControlServicer):
    def __init__(
        self,
        local: control_pb2_grpc.ControlServicer,
        *,
        is_leader: Callable[[], bool],
        read_barrier: Callable[[], Awaitable[Any]],
        leader_channel: Callable[[], grpc.aio.Channel | None],
        barrier_timeout: Callable[[], float],
        leader_wait: Callable[[], float] | None = None,
        leader_moved: Callable[[], asyncio.Event] | None = None,
    ) -> None:
        """`leader_moved()` returns an event that will be set at the next change of leader (never set if
        None); `leader_wait()` bounds how long a call waits for a leader (default: `barrier_timeout()`)."""
        self._local = local
        self._leader_moved = leader_moved or asyncio.Event
        self._is_leader = is_leader
        self._read_barrier = read_barrier
        self._leader_channel = leader_channel
        self._barrier_timeout = barrier_timeout
        self._leader_wait = leader_wait or barrier_timeout

    async def _until_served(self, context: grpc.aio.ServicerContext, attempt: Callable[[asyncio.Event, float], Awaitable[Any]]) -> Any:
        """Run `attempt(moved, remaining)` until it does not raise _TryAgain, waiting for a change of leader
        between attempts; abort with UNAVAILABLE once the wait bound has passed."""
        loop = asyncio.get_running_loop()
        bound = self._leader_wait()
        started = loop.time()
        while True:
            moved = self._leader_moved()  # taken before looking: a change during the attempt is not missed
            remaining = started + bound - loop.time()
            try:
                return await attempt(moved, max(remaining, 0.0))
            except _TryAgain as why:
                log.debug("no leader to serve the call yet: %s", why)
            remaining = started + bound - loop.time()
            if remaining <= 0:
                await context.abort(grpc.StatusCode.UNAVAILABLE, no_leader_after_wait(loop.time() - started))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):  # not wait_for: 3.11's can swallow a cancel
                    await moved.wait()

    async def _passes_barrier(self, remaining: float) -> bool:
        """True if this manager is the leader and has passed a read barrier; False if it is not the leader.
        Raises _TryAgain when it is the leader but the barrier failed (it may be deposed)."""
        if not self._is_leader():
            return False
        try:
            async with asyncio.timeout(max(min(self._barrier_timeout(), remaining), 0.05)):
                await self._read_barrier()
        except Exception as exc:  # the barrier fails in many ways (timeout, lost leadership): all mean no leader
            raise _TryAgain(f"read barrier failed: {exc!r}") from None
        return True

    async def _refuse_if_forwarded(self, context: grpc.aio.ServicerContext) -> None:
        if any(key == FORWARDED_KEY for key, _ in (context.invocation_metadata() or ())):
            await context.abort(grpc.StatusCode.UNAVAILABLE, NO_LEADER, trailing_metadata=NOT_APPLIED)

    def _leader_stub(self) -> control_pb2_grpc.ControlStub:
        channel = self._leader_channel()
        if channel is None:
            raise _TryAgain("no leader known")
        return control_pb2_grpc.ControlStub(channel)


def never_sent_or_refused(error: grpc.aio.AioRpcError) -> bool:
    """Whether a forwarded call certainly was not proposed: it never left, or the leader said so."""
    if error.code() != grpc.StatusCode.UNAVAILABLE:
        return False
    if any(key == NOT_APPLIED_KEY for key, _ in (error.trailing_metadata() or ())):
        return True
    details = (error.details() or "").lower()
    return any(marker in details for marker in _NOT_CONNECTED_MARKERS)


WENT_AWAY_WITH_WRITE = "the leader went away while it had the request; it may or may not have been applied"


async def _relay_error(context: grpc.aio.ServicerContext, error: grpc.aio.AioRpcError, why: str = "the leader went away") -> None:
    code = error.code()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        # The transport's own words ("Socket closed") stay in the log: relayed to the CLI they read as if
        # the user's local daemon were unreachable, and it is not.
        log.info("forwarding to the leader failed: %s: %s", code.name, error.details())
        await context.abort(grpc.StatusCode.UNAVAILABLE, f"{NO_LEADER} ({why})")
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
    is_read = name.startswith(READ_PREFIXES)

    async def route(self: ControlRouter, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def attempt(moved: asyncio.Event, remaining: float) -> Any:
            if await self._passes_barrier(remaining):
                return await getattr(self._local, name)(request, context)
            await self._refuse_if_forwarded(context)
            stub = self._leader_stub()
            try:
                call = getattr(stub, name)(request, metadata=((FORWARDED_KEY, "1"),), timeout=FORWARD_TIMEOUT)
                answer = await _forward_unless_leader_moves(call, moved)
            except grpc.aio.AioRpcError as error:
                if is_read and error.code() == grpc.StatusCode.UNAVAILABLE or never_sent_or_refused(error):
                    raise _TryAgain(f"forwarding failed before anything was applied: {error.details()}") from None
                await _relay_error(context, error, WENT_AWAY_WITH_WRITE)
            if answer is None:
                if is_read:
                    raise _TryAgain("leadership moved during a read")
                await context.abort(
                    grpc.StatusCode.UNAVAILABLE,
                    f"{NO_LEADER} (leadership moved while the call waited for the leader; it may or may not have been applied)",
                )
            return answer

        return await self._until_served(context, attempt)

    return route


def _server_streaming(name: str) -> Callable[..., Any]:
    async def route(self: ControlRouter, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def opened(moved: asyncio.Event, remaining: float) -> tuple[Any, Any]:
            """The stream to serve and its first message (or None if it ended at once)."""
            if await self._passes_barrier(remaining):
                stream = getattr(self._local, name)(request, context).__aiter__()
            else:
                await self._refuse_if_forwarded(context)
                stream = getattr(self._leader_stub(), name)(request, metadata=((FORWARDED_KEY, "1"),)).__aiter__()
            try:
                return stream, await stream.__anext__()
            except StopAsyncIteration:
                return stream, None
            except grpc.aio.AioRpcError as error:  # streams only read: retry until the first message came
                if error.code() == grpc.StatusCode.UNAVAILABLE:
                    raise _TryAgain(f"opening the stream failed: {error.details()}") from None
                await _relay_error(context, error)

        stream, first = await self._until_served(context, opened)
        if first is None:
            return
        yield first
        try:
            async for message in stream:
                yield message
        except grpc.aio.AioRpcError as error:
            await _relay_error(context, error)

    return route


install_methods(ControlRouter, control_pb2.DESCRIPTOR, "Control", _unary, _server_streaming)
