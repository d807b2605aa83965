"""Small asyncio mechanisms that several subsystems need, written once.

`unless_set` races a piece of work against an event that means "stop waiting" (a stop request, a
session's end, a leader change): whichever comes first wins, the other is cancelled AND awaited, and a
cancellation of the caller that arrives meanwhile still propagates (awaiting the losers with
CancelledError suppressed would swallow it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Generic, TypeVar

T = TypeVar("T")


class Raced(Generic[T]):
    """The outcome of `unless_set`: `finished` tells whether the work ended first; `value` is its result."""

    __slots__ = ("finished", "value")

    def __init__(self, finished: bool, value: T | None = None) -> None:
        self.finished = finished
        self.value = value


async def unless_set(work: Awaitable[T], event: asyncio.Event) -> Raced[T]:
    """Await `work` unless `event` is set first.

    The work's exception, if it ended first with one, is raised. If the event came first the work is
    cancelled and awaited (its own error then is dropped: nobody waits for it any more) and the result
    says `finished=False`. When both are ready together the work's outcome wins.
    """
    worker = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({worker, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (worker, stop):
            if not task.done():
                task.cancel()
        await asyncio.wait({worker, stop})
    if worker.cancelled():
        return Raced(False)
    return Raced(True, worker.result())
