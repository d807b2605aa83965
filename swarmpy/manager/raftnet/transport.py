"""Raft messages between managers over gRPC mutual TLS: the `Transport` a manager's RaftDriver uses.

Theory of operation
-------------------
`send(messages)` runs on the driver's loop and must return at once, so it only encodes each message,
checks its size and appends it to the destination peer's queue. Each peer has one sender task, made
the first time something is sent to it and owned by the transport's TaskGroup (cancelled and awaited
by `stop()`). A sender takes whatever is queued for its peer and ships it as ONE ProcessRaftMessage
call, up to `max_message_bytes`; while that call is in flight, more messages queue up and go in the
next call. So a peer gets one RPC at a time, and the batch grows exactly when the link or the peer is
the bottleneck -- the same group commit the driver does with the disk. (Two calls in flight were
tried: the server then sometimes delivers them out of order, which makes the leader's appends get
rejected and retried, and bench/raft_grpc_bench.py showed no gain.)

Messages are serialized once, in `send()`, and a batch is the concatenation of the framed messages
(see codec.frame), sent through a multicallable whose request serializer passes bytes through. The
size of a batch is therefore known exactly before it is sent, and a message that cannot fit in any
batch is refused in `send()` with `MessageTooLarge`, logged and counted (it is not raised: an
exception would stop the driver).

Loss is normal and Raft copes with it (it retransmits appends, heartbeats every tick, retries
elections), so the transport never retries a message itself:
- A full queue drops its oldest message (a slow peer must not make memory grow); snapshots queue apart.
- A failed call (peer down, timeout, refused) drops its batch, reports `report_unreachable(peer)` so
  the leader stops streaming to it and probes instead, and `report_snapshot(peer, False)` if the batch
  was a snapshot. The sender then closes the channel (if the snapshot lane has not replaced it already)
  and waits (exponential backoff) before dialing again. What queued meanwhile is sent after the wait;
  stale messages are harmless to Raft. A call cut because the other lane closed the channel under it
  (grpc.aio cancels such calls) is a failed call like the others: only a cancellation of the lane's own
  task ends a lane.
- The peer's address is looked up (`resolve_addr`) before every call, so a member whose address
  changed is dialed at its new address; a peer with no known address counts as unreachable.

A SNAPSHOT message always travels alone, with a longer timeout, and `report_snapshot(peer, True)`
follows its successful delivery. It travels in a lane of its own -- a second sender per peer, on the same
channel -- so that the heartbeats queued meanwhile are not held behind it: a large snapshot can take
longer than an election timeout to stream, and a follower that hears no heartbeat that long campaigns.
Nothing else needs the order: a follower that is sent a snapshot gets no appends until it is installed
(raft.progress, SNAPSHOT state), and heartbeats, votes and their answers carry their own term and
commit. A snapshot queued while another is in flight to the same peer replaces any older one waiting
(the newer covers more; the older is reported failed). A snapshot larger than one gRPC message (4 MiB by default) -- a store
of some thousands of tasks -- streams instead: one StreamRaftMessage call whose chunks (codec.
snapshot_chunks, `snapshot_chunk_bytes` of data each) the peer reassembles; success and failure are
reported exactly as for a snapshot sent whole. Only a snapshot over `max_snapshot_bytes` is refused,
like any other message too large to send.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import grpc

from swarmpy.api import raft_pb2
from swarmpy.raft.errors import RaftError
from swarmpy.raft.messages import NONE, Message, MessageType
from swarmpy.raft.transport import MessageHandler, Transport

from . import codec

log = logging.getLogger(__name__)

MIB = 1 << 20
PROCESS_RAFT_MESSAGE = "/swarmpy.api.Raft/ProcessRaftMessage"
STREAM_RAFT_MESSAGE = "/swarmpy.api.Raft/StreamRaftMessage"
DEFAULT_SNAPSHOT_CHUNK_BYTES = 1 * MIB


class MessageTooLarge(RaftError):
    """A Raft message is larger than one gRPC message (or a snapshot than one stream) may be. This node's fault (its configuration or state)."""

    def __init__(self, message: Message, size: int, limit: int, what: str = "one Raft gRPC message") -> None:
        super().__init__(
            f"{message.type.name} from {message.frm:x} to {message.to:x} is {size} bytes encoded, "
            f"over the limit of {limit} bytes for {what}; not sent"
        )
        self.size = size
        self.limit = limit


@dataclass(slots=True)
class TransportStats:
    messages_sent: int = 0
    batches_sent: int = 0
    failed_batches: int = 0
    messages_lost_in_failed_batches: int = 0
    dropped_queue_full: int = 0
    refused_too_large: int = 0
    unresolved_addresses: int = 0
    snapshots_streamed: int = 0
    chunks_streamed: int = 0


@dataclass(slots=True)
class _Outgoing:
    is_snapshot: bool
    framed: bytes  # empty for a streamed message
    streamed: Message | None = None  # a SNAPSHOT too large for one call, sent by StreamRaftMessage


@dataclass(slots=True)
class _Peer:
    raft_id: int
    queue: collections.deque[_Outgoing] = field(default_factory=collections.deque)  # never a snapshot
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    snapshot: _Outgoing | None = None  # the next snapshot to send, in the snapshot lane
    snapshot_ready: asyncio.Event = field(default_factory=asyncio.Event)
    snapshot_task: asyncio.Task[None] | None = None
    dialing: asyncio.Lock = field(default_factory=asyncio.Lock)  # both lanes share the channel: one dials
    addr: str | None = None
    channel: grpc.aio.Channel | None = None
    call: grpc.aio.UnaryUnaryMultiCallable | None = None
    stream_call: grpc.aio.StreamUnaryMultiCallable | None = None
    generation: int = 0  # of the transport's channels this peer's channel was made in
    failed_channel: grpc.aio.Channel | None = None  # the channel to drop after the sender lane's failed call


def _pass_bytes_through(request: bytes) -> bytes:
    return request


class GrpcTransport(Transport):
    """Sends this manager's Raft messages to the other managers' Raft service. See the module docstring."""

    def __init__(
        self,
        resolve_addr: Callable[[int], str | None],
        channel_factory: Callable[[str], grpc.aio.Channel],
        max_message_bytes: int = 4 * MIB,
        *,
        rpc_timeout: float = 2.0,
        snapshot_timeout: float = 30.0,
        max_queued_messages: int = 4096,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
        max_snapshot_bytes: int = codec.DEFAULT_MAX_SNAPSHOT_BYTES,
        snapshot_chunk_bytes: int = DEFAULT_SNAPSHOT_CHUNK_BYTES,
    ) -> None:
        if not 0 < snapshot_chunk_bytes < max_message_bytes:
            raise ValueError(
                f"snapshot chunks of {snapshot_chunk_bytes} bytes do not fit in Raft gRPC messages of "
                f"{max_message_bytes} bytes (a chunk needs room for its header too)"
            )
        self.resolve_addr = resolve_addr
        self.channel_factory = channel_factory
        self.max_message_bytes = max_message_bytes
        self.rpc_timeout = rpc_timeout
        self.snapshot_timeout = snapshot_timeout
        self.max_queued_messages = max_queued_messages
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_snapshot_bytes = max_snapshot_bytes
        self.snapshot_chunk_bytes = snapshot_chunk_bytes
        self.stats = TransportStats()
        self.last_refusal: MessageTooLarge | None = None
        self.node_id = NONE
        self.handler: MessageHandler | None = None
        self._peers: dict[int, _Peer] = {}
        self._channel_generation = 0
        self._group: asyncio.TaskGroup | None = None
        self._runner: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- lifecycle

    def bind(self, node_id: int, handler: MessageHandler) -> None:
        self.node_id = node_id
        self.handler = handler

    async def start(self) -> None:
        if self.handler is None:
            raise RuntimeError("bind() the transport to a handler before starting it")
        if self._runner is not None:
            return
        started = asyncio.Event()
        self._runner = asyncio.create_task(self._own_senders(started), name=f"raft-transport-{self.node_id:x}")
        await started.wait()

    async def _own_senders(self, started: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            started.set()
            await asyncio.Future()  # until stop() cancels us, and with us every sender

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        self._group = None
        if runner is not None:
            runner.cancel()
            try:
                await runner
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
        peers, self._peers = self._peers, {}
        for peer in peers.values():
            await self._disconnect(peer)

    # ---------------------------------------------------------------- the driver's side

    async def send(self, messages: Sequence[Message]) -> None:
        if self._group is None:
            return
        for message in messages:
            if message.to == NONE or message.to == self.node_id:
                continue
            self._enqueue(message)

    def _enqueue(self, message: Message) -> None:
        is_snapshot = message.type == MessageType.SNAPSHOT
        # A snapshot whose data alone fills a message streams without being serialized whole first (this
        # runs on the driver's loop, and the snapshot may be large).
        must_stream = is_snapshot and message.snapshot is not None and len(message.snapshot.data) >= self.max_message_bytes
        framed = b"" if must_stream else codec.frame(codec.encode_message(message).SerializeToString())
        outgoing = _Outgoing(is_snapshot, framed)
        if must_stream or len(framed) > self.max_message_bytes:
            if not is_snapshot:
                self._refuse(MessageTooLarge(message, len(framed), self.max_message_bytes), message.to, False)
                return
            assert message.snapshot is not None
            if len(message.snapshot.data) > self.max_snapshot_bytes:
                too_large = MessageTooLarge(message, len(message.snapshot.data), self.max_snapshot_bytes, "a streamed snapshot")
                self._refuse(too_large, message.to, True)
                return
            outgoing = _Outgoing(True, b"", streamed=message)
        peer = self._peer(message.to)
        if is_snapshot:
            if peer.snapshot is not None:  # superseded before it left: Raft hears it failed and moves on
                self.stats.dropped_queue_full += 1
                self._report_failure(message.to, True)
            peer.snapshot = outgoing
            peer.snapshot_ready.set()
            return
        queue = peer.queue
        if len(queue) >= self.max_queued_messages:
            queue.popleft()
            self.stats.dropped_queue_full += 1
        queue.append(outgoing)
        peer.ready.set()

    def _refuse(self, error: MessageTooLarge, peer_id: int, is_snapshot: bool) -> None:
        self.stats.refused_too_large += 1
        self.last_refusal = error
        log.error("node %x: %s", self.node_id, error)
        self._report_failure(peer_id, is_snapshot)

    def _peer(self, raft_id: int) -> _Peer:
        peer = self._peers.get(raft_id)
        if peer is None:
            peer = self._peers[raft_id] = _Peer(raft_id)
        if peer.task is None and self._group is not None:
            peer.task = self._group.create_task(self._send_loop(peer), name=f"raft-send-{self.node_id:x}-{raft_id:x}")
            peer.snapshot_task = self._group.create_task(
                self._snapshot_loop(peer), name=f"raft-snapshot-{self.node_id:x}-{raft_id:x}"
            )
        return peer

    def dialed_addr(self, raft_id: int) -> str | None:
        """The address `raft_id` was last dialed at (thread-safe: one dict read; for raftnet.keepalive)."""
        peer = self._peers.get(raft_id)
        return peer.addr if peer is not None else None

    def queued(self, raft_id: int) -> int:
        """Messages waiting for `raft_id`, a snapshot waiting in its lane included (for tests and status)."""
        peer = self._peers.get(raft_id)
        return len(peer.queue) + (peer.snapshot is not None) if peer is not None else 0

    # ---------------------------------------------------------------- one sender per peer

    async def _send_loop(self, peer: _Peer) -> None:
        backoff = self.backoff_initial
        while True:
            await peer.ready.wait()
            peer.ready.clear()
            while peer.queue:
                if await self._send_one_batch(peer):
                    backoff = self.backoff_initial
                else:
                    # Only the channel that failed: the snapshot lane may have dialed a new one meanwhile.
                    if peer.failed_channel is not None and peer.failed_channel is peer.channel:
                        await self._disconnect(peer)
                    peer.failed_channel = None
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.backoff_max)

    async def _snapshot_loop(self, peer: _Peer) -> None:
        """The snapshot lane: one snapshot at a time, beside the sender of everything else."""
        while True:
            await peer.snapshot_ready.wait()
            peer.snapshot_ready.clear()
            outgoing, peer.snapshot = peer.snapshot, None
            if outgoing is not None:
                await self._send_batch(peer, [outgoing])  # a failure is reported; Raft sends a new one

    async def _connected(self, peer: _Peer) -> bool:
        """Whether `peer` has a channel to its current address (dialed now if needed)."""
        addr = self.resolve_addr(peer.raft_id)
        if not addr:
            self.stats.unresolved_addresses += 1
            log.debug("node %x: no address known for peer %x", self.node_id, peer.raft_id)
            return False
        async with peer.dialing:
            if addr != peer.addr or peer.call is None or peer.generation != self._channel_generation:
                await self._disconnect(peer)
                self._connect(peer, addr)
        return True

    async def _send_one_batch(self, peer: _Peer) -> bool:
        """Ship what is queued for `peer` in one call; False (after reporting it) if that failed."""
        return await self._send_batch(peer, self._take_batch(peer))

    async def _send_batch(self, peer: _Peer, batch: list[_Outgoing]) -> bool:
        is_snapshot = batch[0].is_snapshot
        if not await self._connected(peer):
            self._report_failure(peer.raft_id, is_snapshot)
            return False
        streamed = batch[0].streamed
        assert peer.call is not None and peer.stream_call is not None
        channel = peer.channel
        slow = False
        try:
            if streamed is not None:
                await self._stream(peer, streamed)
            else:
                await peer.call(
                    b"".join(o.framed for o in batch),
                    timeout=self.snapshot_timeout if is_snapshot else self.rpc_timeout,
                )
        except asyncio.CancelledError:
            # grpc.aio cancels the calls of a channel that is closed under them: the other lane (a new
            # address, renewed credentials, a failed call's reconnect) replaced it. Only a cancellation
            # of this task ends the lane; the call's is a failed batch like any other, or the lane would
            # die silently and never send to this peer again.
            current = asyncio.current_task()
            if current is None or current.cancelling():
                raise
            why = "the channel was closed under the call (replaced by the other lane)"
        except grpc.aio.AioRpcError as exc:
            why = f"{exc.code().name}: {exc.details()}"
            # A deadline is a slow peer on a connection that works (one busy taking a snapshot, say): the
            # channel stays, or the snapshot on it would be cut and sent again, round after round.
            slow = exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        except Exception as exc:  # a channel bug must not kill the sender: report it and reconnect
            log.exception("node %x: unexpected error sending to peer %x", self.node_id, peer.raft_id)
            why = repr(exc)
        else:
            self.stats.batches_sent += 1
            self.stats.messages_sent += len(batch)
            if is_snapshot and self.handler is not None:
                self.handler.report_snapshot(peer.raft_id, True)
            return True
        if not is_snapshot and not slow:
            peer.failed_channel = channel
        self._record_failure(peer, batch, why)
        return False

    async def _stream(self, peer: _Peer, message: Message) -> None:
        """One StreamRaftMessage call carrying `message` in chunks; raises what the call raised."""
        assert peer.stream_call is not None and message.snapshot is not None
        chunks = 0

        def counted() -> Iterator[raft_pb2.RaftMessageChunk]:
            nonlocal chunks
            for chunk in codec.snapshot_chunks(message, self.snapshot_chunk_bytes):
                chunks += 1
                yield chunk

        # A large snapshot takes a while on a slow link: allow at least 10 MiB/s before giving up.
        timeout = max(self.snapshot_timeout, len(message.snapshot.data) / (10 * MIB))
        await peer.stream_call(counted(), timeout=timeout)
        self.stats.snapshots_streamed += 1
        self.stats.chunks_streamed += chunks
        log.info("node %x: streamed a %d-byte snapshot to peer %x in %d chunks",
                 self.node_id, len(message.snapshot.data), peer.raft_id, chunks)

    def _take_batch(self, peer: _Peer) -> list[_Outgoing]:
        """The oldest queued messages that fit in one call (snapshots are in their own lane)."""
        queue = peer.queue
        first = queue.popleft()
        batch = [first]
        size = len(first.framed)
        while queue and size + len(queue[0].framed) <= self.max_message_bytes:
            outgoing = queue.popleft()
            size += len(outgoing.framed)
            batch.append(outgoing)
        return batch

    def _record_failure(self, peer: _Peer, batch: list[_Outgoing], why: str) -> None:
        self.stats.failed_batches += 1
        self.stats.messages_lost_in_failed_batches += len(batch)
        log.debug("node %x: sending %d messages to peer %x at %s failed: %s",
                  self.node_id, len(batch), peer.raft_id, peer.addr, why)
        self._report_failure(peer.raft_id, batch[0].is_snapshot)

    def _report_failure(self, peer_id: int, is_snapshot: bool) -> None:
        if self.handler is None:
            return
        self.handler.report_unreachable(peer_id)
        if is_snapshot:
            self.handler.report_snapshot(peer_id, False)

    def renew_channels(self) -> None:
        """New credentials (a renewed certificate): each peer's next send dials afresh with them. A
        channel keeps the certificate it was made with, and after a CA rotation the old one is refused."""
        self._channel_generation += 1

    def _connect(self, peer: _Peer, addr: str) -> None:
        channel = self.channel_factory(addr)
        peer.generation = self._channel_generation
        peer.addr = addr
        peer.channel = channel
        peer.call = channel.unary_unary(
            PROCESS_RAFT_MESSAGE,
            request_serializer=_pass_bytes_through,
            response_deserializer=raft_pb2.ProcessRaftMessageResponse.FromString,
        )
        peer.stream_call = channel.stream_unary(
            STREAM_RAFT_MESSAGE,
            request_serializer=raft_pb2.RaftMessageChunk.SerializeToString,
            response_deserializer=raft_pb2.ProcessRaftMessageResponse.FromString,
        )

    async def _disconnect(self, peer: _Peer) -> None:
        channel, peer.channel, peer.call, peer.stream_call = peer.channel, None, None, None
        if channel is not None:
            await channel.close()
