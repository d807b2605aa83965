"""How Raft messages travel between drivers: the Transport interface and an in-memory network for tests.

Theory of operation
-------------------
A driver owns one `Transport`. It hands it the messages of a Ready with `await send(messages)`,
which only queues or hands them off and returns at once: a slow or dead peer never holds up the
driver (the core's own flow control -- inflight limits, heartbeats, retries -- copes with loss).
What arrives for this node is delivered to the `MessageHandler` the driver bound with `bind()`:
`receive(message)` for a peer's message, `report_unreachable(node_id)` when a peer could not be
reached, `report_snapshot(node_id, ok)` after a SNAPSHOT message was (or could not be) delivered.
All three are called on the driver's event loop and must not block; the driver just queues them.

`InMemoryNetwork` connects `InMemoryTransport`s in one process and can drop messages at random,
cut links (partitions, in one or both directions) and delay delivery. The gRPC mutual-TLS transport
implements the same interface.
"""

from __future__ import annotations

import abc
import asyncio
import itertools
import logging
import random
from collections.abc import Sequence
from typing import Protocol

from .messages import Message, MessageType

log = logging.getLogger(__name__)


class MessageHandler(Protocol):
    """The receiving side of a transport: a driver. Called on the driver's event loop; must not block."""

    def receive(self, message: Message) -> None: ...

    def report_unreachable(self, node_id: int) -> None: ...

    def report_snapshot(self, node_id: int, ok: bool) -> None: ...


class Transport(abc.ABC):
    """Sends this node's messages and delivers the peers' messages to the bound handler."""

    @abc.abstractmethod
    def bind(self, node_id: int, handler: MessageHandler) -> None:
        """Say which node this transport speaks for and where its incoming messages go."""

    async def start(self) -> None:
        """Open connections or listeners, if the transport has any."""

    async def stop(self) -> None:
        """Stop delivering and sending; cancel and await everything the transport owns."""

    @abc.abstractmethod
    async def send(self, messages: Sequence[Message]) -> None:
        """Queue messages for delivery; returns without waiting for peers. Unreachable peers are reported."""


class InMemoryNetwork:
    """A set of in-process transports with controllable faults, for tests and benchmarks."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random(0)
        self.transports: dict[int, InMemoryTransport] = {}
        self.drop_rate = 0.0  # probability that any one message is lost
        self.delay = 0.0  # seconds added to every delivery
        self._cut: set[tuple[int, int]] = set()  # (from, to) links that lose everything
        self.delivered = 0
        self.dropped = 0

    def transport(self, node_id: int) -> InMemoryTransport:
        transport = InMemoryTransport(self)
        transport.node_id = node_id
        return transport

    def partition(self, *groups: Sequence[int]) -> None:
        """Cut every link between nodes of different groups (both directions); nodes not named are not cut."""
        for group in groups:
            for other in groups:
                if other is not group:
                    self._cut.update((a, b) for a in group for b in other)

    def isolate(self, node_id: int) -> None:
        others = [n for n in self.transports if n != node_id]
        self.partition([node_id], others)

    def cut(self, frm: int, to: int) -> None:
        """Lose messages from `frm` to `to` only (one direction)."""
        self._cut.add((frm, to))

    def heal(self) -> None:
        self._cut.clear()

    def link_is_cut(self, frm: int, to: int) -> bool:
        return (frm, to) in self._cut


class InMemoryTransport(Transport):
    """One node's endpoint on an `InMemoryNetwork`. Messages are passed as objects, not encoded."""

    def __init__(self, network: InMemoryNetwork) -> None:
        self.network = network
        self.node_id = 0
        self.handler: MessageHandler | None = None
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._timer_ids = itertools.count()
        self.running = False

    def bind(self, node_id: int, handler: MessageHandler) -> None:
        self.node_id = node_id
        self.handler = handler

    async def start(self) -> None:
        if self.handler is None:
            raise RuntimeError("bind() the transport to a handler before starting it")
        self.running = True
        self.network.transports[self.node_id] = self

    async def stop(self) -> None:
        self.running = False
        if self.network.transports.get(self.node_id) is self:
            del self.network.transports[self.node_id]
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    async def send(self, messages: Sequence[Message]) -> None:
        if not self.running:
            return
        network = self.network
        for message in messages:
            destination = network.transports.get(message.to)
            is_snapshot = message.type == MessageType.SNAPSHOT
            if destination is None or not destination.running or network.link_is_cut(self.node_id, message.to):
                network.dropped += 1
                self._report_failure(message.to, is_snapshot)
                continue
            if network.drop_rate and network.rng.random() < network.drop_rate:
                network.dropped += 1
                if is_snapshot:
                    self._report_failure(message.to, is_snapshot)
                continue
            if network.delay:
                timer_id = next(self._timer_ids)
                self._timers[timer_id] = asyncio.get_running_loop().call_later(
                    network.delay, self._deliver_later, timer_id, destination, message
                )
            else:
                destination._deliver(message)
                if is_snapshot:
                    self._report_snapshot(message.to, True)

    def _deliver_later(self, timer_id: int, destination: InMemoryTransport, message: Message) -> None:
        self._timers.pop(timer_id, None)
        if not self.running:
            return
        is_snapshot = message.type == MessageType.SNAPSHOT
        if destination.running and not self.network.link_is_cut(self.node_id, message.to):
            destination._deliver(message)
            if is_snapshot:
                self._report_snapshot(message.to, True)
        else:
            self.network.dropped += 1
            self._report_failure(message.to, is_snapshot)

    def _deliver(self, message: Message) -> None:
        self.network.delivered += 1
        if self.handler is not None:
            self.handler.receive(message)

    def _report_failure(self, node_id: int, is_snapshot: bool) -> None:
        if self.handler is None:
            return
        log.debug("node %x: peer %x unreachable", self.node_id, node_id)
        self.handler.report_unreachable(node_id)
        if is_snapshot:
            self.handler.report_snapshot(node_id, False)

    def _report_snapshot(self, node_id: int, ok: bool) -> None:
        if self.handler is not None:
            self.handler.report_snapshot(node_id, ok)
