"""Engine events for one node's containers, so that a container dying outside swarmpy is noticed at once.

One thread streams `docker events` filtered on the label swarmpy.node.id=<node> and hands each container
event to the event loop (loop.call_soon_threadsafe). Waiters register interest in a container *before* they
inspect it, then sleep until anything happens to it; so no event between the inspection and the sleep is
missed. If the stream breaks (engine restart), the thread reconnects with backoff and wakes every waiter
to inspect again: events lost while disconnected are recovered from the engine's current state.

Owner: the DockerExecutor, which calls start() and close(); close() closes the stream to unblock the thread
and awaits its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator

import docker

from swarmpy.aio import unless_set
from swarmpy.worker.executor.container_config import NODE_LABEL
from swarmpy.worker.executor.threads import run_in_own_thread

log = logging.getLogger(__name__)

RECONNECT_BACKOFF_MIN = 0.1
RECONNECT_BACKOFF_MAX = 5.0


class ContainerChanges:
    """A registration of interest in one container; wait() returns once something happened to it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def _notify(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event.clear()


class EngineEventsWatcher:
    def __init__(self, client: docker.DockerClient, node_id: str) -> None:
        self._client = client
        self._node_id = node_id
        self._watchers: dict[str, set[ContainerChanges]] = {}
        self._stream = None
        self._stream_lock = threading.Lock()
        self._closing = threading.Event()
        self._thread_done: asyncio.Future[None] | None = None
        self._connected = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Start streaming; returns once the stream is open, so later container changes are seen."""
        self._loop = asyncio.get_running_loop()
        self._thread_done = run_in_own_thread(self._pump, f"engine-events-{self._node_id}")
        # Shielded: losing the race must not cancel the thread's future, the pump goes on. A thread that
        # died before connecting raises why.
        await unless_set(asyncio.shield(self._thread_done), self._connected)

    async def close(self) -> None:
        self._closing.set()
        with self._stream_lock:
            stream = self._stream
        if stream is not None:
            with contextlib.suppress(OSError, docker.errors.DockerException):
                await asyncio.to_thread(stream.close)
        if self._thread_done is not None:
            await asyncio.shield(self._thread_done)

    @contextlib.contextmanager
    def watch(self, container_id: str) -> Iterator[ContainerChanges]:
        """Register interest in `container_id` for the duration of the block."""
        changes = ContainerChanges()
        self._watchers.setdefault(container_id, set()).add(changes)
        try:
            yield changes
        finally:
            watchers = self._watchers.get(container_id)
            if watchers is not None:
                watchers.discard(changes)
                if not watchers:
                    del self._watchers[container_id]

    # ---------------------------------------------------------------- event loop side

    def _on_event(self, container_id: str, action: str) -> None:
        log.debug("engine event %s on container %s (node %s)", action, container_id[:12], self._node_id)
        for changes in self._watchers.get(container_id, ()):
            changes._notify()

    def _on_connected(self) -> None:
        self._connected.set()
        # Anything may have happened while the stream was down: every waiter looks again.
        for watchers in self._watchers.values():
            for changes in watchers:
                changes._notify()

    # ---------------------------------------------------------------- thread side

    def _pump(self) -> None:
        assert self._loop is not None
        backoff = RECONNECT_BACKOFF_MIN
        while not self._closing.is_set():
            try:
                stream = self._client.events(
                    decode=True,
                    filters={"type": "container", "label": f"{NODE_LABEL}={self._node_id}"},
                )
            except docker.errors.DockerException as exc:
                log.warning("node %s: cannot stream engine events (%s); retrying in %.1fs", self._node_id, exc, backoff)
                self._closing.wait(backoff)
                backoff = min(backoff * 2, RECONNECT_BACKOFF_MAX)
                continue
            with self._stream_lock:
                self._stream = stream
            if self._closing.is_set():  # close() ran before the stream was published
                stream.close()
                return
            backoff = RECONNECT_BACKOFF_MIN
            self._loop.call_soon_threadsafe(self._on_connected)
            try:
                for event in stream:
                    container_id = event.get("id") or event.get("Actor", {}).get("ID", "")
                    if container_id:
                        self._loop.call_soon_threadsafe(self._on_event, container_id, event.get("Action", ""))
            except (OSError, docker.errors.DockerException, ValueError) as exc:
                log.warning("node %s: engine event stream broke: %s", self._node_id, exc)
            with self._stream_lock:
                self._stream = None
            if not self._closing.is_set():
                self._closing.wait(backoff)
