"""Long-lived blocking loops (engine event and log streams) in threads of their own.

asyncio.to_thread suits short Docker calls; a stream that blocks for the life of a container would hold a
worker of the default executor forever and, with enough of them, starve every other Docker call. So each
stream gets a dedicated daemon thread, and its owner awaits the thread's end through a loop future.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable


def run_in_own_thread(fn: Callable[[], None], name: str) -> asyncio.Future[None]:
    """Start `fn` in a new daemon thread; the returned future resolves (or fails) when it returns."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def body() -> None:
        error: BaseException | None = None
        try:
            fn()
        except BaseException as exc:  # handed to the owner through the future, not lost in the thread
            error = exc
        try:
            loop.call_soon_threadsafe(settle, error)
        except RuntimeError:
            pass  # the loop is closed: nobody is left to tell

    threading.Thread(target=body, name=name, daemon=True).start()
    return done
