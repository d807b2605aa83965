"""ControlRouter's forwarding gives up on a leader that stopped being one (no gRPC server needed)."""

from __future__ import annotations

import asyncio

from swarmpy.manager.control_router import _forward_unless_leader_moves


class FakeCall:
    """Stands for a grpc.aio unary call: awaitable, cancellable."""

    def __init__(self, answer: asyncio.Future) -> None:
        self._answer = answer
        self.cancelled = False

    def __await__(self):
        return self._answer.__await__()

    def cancel(self) -> bool:
        self.cancelled = True
        self._answer.cancel()
        return True


async def test_the_leaders_answer_is_passed_on():
    answer = asyncio.get_running_loop().create_future()
    answer.set_result("created")
    call = FakeCall(answer)
    assert await _forward_unless_leader_moves(call, asyncio.Event()) == "created"
    assert not call.cancelled


async def test_a_call_to_a_silent_leader_is_abandoned_when_the_leader_changes():
    call = FakeCall(asyncio.get_running_loop().create_future())  # the frozen leader never answers
    moved = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, moved.set)
    async with asyncio.timeout(2):
        assert await _forward_unless_leader_moves(call, moved) is None
    assert call.cancelled


async def test_the_leaders_error_is_raised_to_the_router():
    answer = asyncio.get_running_loop().create_future()
    answer.set_exception(ValueError("refused"))
    try:
        await _forward_unless_leader_moves(FakeCall(answer), asyncio.Event())
    except ValueError as exc:
        assert str(exc) == "refused"
    else:
        raise AssertionError("the error was swallowed")


async def test_cancelling_the_router_cancels_the_forwarded_call():
    call = FakeCall(asyncio.get_running_loop().create_future())
    task = asyncio.ensure_future(_forward_unless_leader_moves(call, asyncio.Event()))
    await asyncio.sleep(0.01)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert call.cancelled
