"""The one bounded retry of a store write that lost a race.

A write that read an object and staged a change to it is refused with `Conflict` when another write
changed that object first. Re-running it re-reads the state, so a retry is the right answer, but
never an unbounded one and never one that holds the event loop: each attempt yields before the next,
so the write that won (and everything else) gets to run. Other refusals (`StoreError`s such as a name
conflict or a transaction too large) are not races: retrying them cannot help, so they propagate at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .errors import Conflict

log = logging.getLogger(__name__)

T = TypeVar("T")

CONFLICT_ATTEMPTS = 5


async def retry_conflicts(write: Callable[[], Awaitable[T]], *, what: str, attempts: int = CONFLICT_ATTEMPTS) -> T:
    """Run `write()` until it is not refused by a Conflict, at most `attempts` times; the last Conflict
    is raised. `what` names the write for the log."""
    for attempt in range(1, attempts + 1):
        try:
            return await write()
        except Conflict as error:
            if attempt == attempts:
                log.warning("%s lost %d races in a row; giving up: %s", what, attempts, error)
                raise
            log.debug("%s raced another write (attempt %d of %d), retrying: %s", what, attempt, attempts, error)
            await asyncio.sleep(0)
    raise AssertionError("unreachable")
