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


class KeepAliveSender:
    def __init__(
        self,
        source: Callable[[float], list[Message]],
        addr_of: Callable[[int], str | None],
        channel_factory: Callable[[str], grpc.Channel],
        interval: float,
        name: str = "raft-keepalive",
    ) -> None:
        self.source = source
        self.addr_of = addr_of
        self.channel_factory = channel_factory
        self.interval = interval
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._channels: dict[str, tuple[grpc.Channel, grpc.UnaryUnaryMultiCallable]] = {}
        self._inflight: list[grpc.Future] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (it wakes at once: the wait is on the stop event)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self._inflight = [f for f in self._inflight if not f.done()]
                for message in self.source(time.monotonic()):
                    self._send(message)
        finally:
            for future in self._inflight:
                future.cancel()
            for channel, _ in self._channels.values():
                channel.close()
            self._channels.clear()

    def _send(self, message: Message) -> None:
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
        framed = codec.frame(codec.encode_message(message).SerializeToString())
        # Not waited for: a dead peer must not delay the other's heartbeat; a lost one is what Raft expects.
        self._inflight.append(entry[1].future(framed, timeout=4 * self.interval))
        self.sent += 1
