"""A leader's heartbeats sent from a thread of their own, while its event loop is starved.

Why: a leader whose asyncio loop is busy for longer than the followers' election timeout (1-2 s with the
100 ms tick; the 10,000-task convergence bench starves it 1-7 s) sends no heartbeats, because the core's
heartbeats and the GrpcTransport both run on that loop. The followers then elect, and the new leader's
own start-up work starves it in turn (bench/RESULTS.md, issue 15).

What: `KeepAliveSender` runs one thread with sync gRPC channels (they do not use the event loop; a call
releases the GIL while it waits, and the GIL is handed over every few ms however busy the main thread
is). Every `interval` seconds it asks `source(now)` -- RaftDriver.keepalive_heartbeats -- what to send.
The driver answers nothing unless this node leads and its loop has not ticked the core for a while, so
normally no extra message goes out. The heartbeats it gives carry the leader's term and commit 0 (a
follower commits nothing for them) and no read context (ReadIndex confirmations stay the core's); the
driver stops giving them once the loop has been silent for `keepalive_limit`, so a leader whose loop is
stuck for good does not hold its followers forever. The thread only reads addresses the asyncio
transport already dialed (`addr_of`) and never touches the core. `stop()` sets the event and joins.

The interval is asked of `interval()` on every pass, so a retuned Raft tick is followed. `renew()` (a
renewed certificate, a rotated CA) makes the thread close its channels and dial afresh with the new
credentials on its next pass; a channel unused for IDLE_CHANNEL seconds (a peer that moved, a member
removed) is closed. A pass that fails is logged and the next one goes on: the thread ends only at stop().
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import grpc

from swarmpy.api import raft_pb2
from swarmpy.raft.messages import Message

from . import codec
from .transport import PROCESS_RAFT_MESSAGE, _pass_bytes_through

log = logging.getLogger(__name__)

IDLE_CHANNEL = 300.0  # seconds a channel may go unused before it is closed (dialed again when needed)


class KeepAliveSender:
    def __init__(
        self,
        source: Callable[[float], list[Message]],
        addr_of: Callable[[int], str | None],
        channel_factory: Callable[[str], grpc.Channel],
        interval: Callable[[], float],
        name: str = "raft-keepalive",
    ) -> None:
        self.source = source
        self.addr_of = addr_of
        self.channel_factory = channel_factory
        self.interval = interval
        self.sent = 0
        self.failed_passes = 0
        self._stop = threading.Event()
        self._renew = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._channels: dict[str, tuple[grpc.Channel, grpc.UnaryUnaryMultiCallable]] = {}
        self._last_used: dict[str, float] = {}
        self._inflight: list[grpc.Future] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (it wakes at once: the wait is on the stop event)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def renew(self) -> None:
        """New credentials: the thread dials afresh on its next pass (any thread may call this)."""
        self._renew.set()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval()):
                try:
                    self._pass()
                except Exception:  # noqa: BLE001 -- the thread must outlive a bad pass; the next may do
                    self.failed_passes += 1
                    if self.failed_passes == 1 or self.failed_passes % 100 == 0:
                        log.exception("raft keep-alive pass failed (%d so far); going on", self.failed_passes)
        finally:
            for future in self._inflight:
                future.cancel()
            self._close_channels()

    def _pass(self) -> None:
        now = time.monotonic()
        if self._renew.is_set():
            self._renew.clear()
            self._close_channels()
        for addr in [a for a, used in self._last_used.items() if now - used > IDLE_CHANNEL]:
            self._close_channels(addr)
        self._inflight = [f for f in self._inflight if not f.done()]
        for message in self.source(now):
            self._send(message, now)

    def _close_channels(self, *addrs: str) -> None:
        for addr in addrs or list(self._channels):
            entry = self._channels.pop(addr, None)
            self._last_used.pop(addr, None)
            if entry is not None:
                entry[0].close()

    def _send(self, message: Message, now: float) -> None:
        addr = self.addr_of(message.to)
        if not addr:
            return
        entry = self._channels.get(addr)
        if entry is None:
            channel = self.channel_factory(addr)
            call = channel.unary_unary(
                PROCESS_RAFT_MESSAGE,
                request_serializer=_pass_bytes_through,
                response_deserializer=raft_pb2.ProcessRaftMessageResponse.FromString,
            )
            entry = self._channels[addr] = (channel, call)
        self._last_used[addr] = now
        framed = codec.frame(codec.encode_message(message).SerializeToString())
        # Not waited for: a dead peer must not delay the other's heartbeat; a lost one is what Raft expects.
        self._inflight.append(entry[1].future(framed, timeout=4 * self.interval()))
        self.sent += 1
