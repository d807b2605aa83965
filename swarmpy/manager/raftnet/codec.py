"""Raft messages on the wire: `swarmpy.raft.messages.Message` <-> `raft_pb2.RaftMessage`.

Theory of operation
-------------------
The Raft core speaks frozen dataclasses; managers speak protobuf. `encode_message` is total: every
Message the core produces has a protobuf form. `decode_message` is the trust boundary: what arrives
was written by another process, so it checks everything the dataclass types promise (a known message
type, non-zero sender and recipient, known entry types, a snapshot where one is needed) and raises
`MalformedRaftMessage` -- the sender's fault -- instead of handing the core something it cannot
interpret. Protobuf already bounds every integer field to its declared width, so a uint64 id is never
out of the 64-bit range; zero is the one id value it cannot rule out.

The two message types the driver makes for itself (SNAPSHOT_STATUS, UNREACHABLE) never travel: a peer
sending one is malformed.

`frame` turns one serialized message into the bytes it adds to a serialized `RaftMessageBatch`, so the
transport can assemble batches from already-serialized messages and know their size exactly without
serializing twice.

A SNAPSHOT too large for one gRPC message streams as `RaftMessageChunk`s (`snapshot_chunks`): the first
carries the message with its snapshot data left out plus the data's total size, and every chunk carries
the next piece of the data. `SnapshotAssembler` is the receiving side's trust boundary for a stream: it
refuses a stream that does not start with a SNAPSHOT header, announces more than its limit, sends a
second header, or brings more or less data than announced -- each the sender's fault.
"""

from __future__ import annotations

from collections.abc import Iterator

from swarmpy.api import raft_pb2
from swarmpy.raft.errors import MalformedMessage
from swarmpy.raft.messages import (
    NONE,
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    Snapshot,
    SnapshotMeta,
)

# Only the local driver produces these; they are reports to the core, not messages between nodes.
LOCAL_ONLY_TYPES = frozenset({MessageType.SNAPSHOT_STATUS, MessageType.UNREACHABLE})

_KNOWN_MESSAGE_TYPES = frozenset(int(t) for t in MessageType)
_KNOWN_ENTRY_TYPES = frozenset(int(t) for t in EntryType)

# The largest snapshot a StreamRaftMessage may carry, by default (swarmkit sets no bound; one keeps a
# confused or hostile manager from exhausting another's memory).
DEFAULT_MAX_SNAPSHOT_BYTES = 1 << 30

# RaftMessageBatch.messages is field 1, length-delimited: tag byte 0x0A, then a varint length.
BATCH_FIELD_TAG = b"\x0a"


class MalformedRaftMessage(MalformedMessage):
    """A peer sent a RaftMessage this node cannot interpret. The sending peer's fault; the message is dropped."""


class SnapshotTooLarge(MalformedRaftMessage):
    """A peer announced a streamed snapshot larger than this node accepts. The sender's fault (or a limit set too low)."""


def encode_entry(entry: Entry) -> raft_pb2.RaftEntry:
    return raft_pb2.RaftEntry(term=entry.term, index=entry.index, type=int(entry.type), data=entry.data)


def encode_message(message: Message) -> raft_pb2.RaftMessage:
    encoded = raft_pb2.RaftMessage(
        type=int(message.type),
        to=message.to,
        term=message.term,
        log_term=message.log_term,
        index=message.index,
        commit=message.commit,
        reject=message.reject,
        reject_hint=message.reject_hint,
        context=message.context,
    )
    # `from` is a Python keyword, so it cannot be a constructor argument.
    setattr(encoded, "from", message.frm)
    if message.entries:
        encoded.entries.extend(encode_entry(entry) for entry in message.entries)
    if message.snapshot is not None:
        snapshot = message.snapshot
        encoded.snapshot.index = snapshot.meta.index
        encoded.snapshot.term = snapshot.meta.term
        encoded.snapshot.voters.extend(snapshot.meta.conf.voters)
        encoded.snapshot.learners.extend(snapshot.meta.conf.learners)
        encoded.snapshot.data = snapshot.data
    return encoded


def decode_message(encoded: raft_pb2.RaftMessage) -> Message:
    """The Message a peer sent, or MalformedRaftMessage saying what is wrong with it."""
    if encoded.type not in _KNOWN_MESSAGE_TYPES:
        raise MalformedRaftMessage(f"unknown Raft message type {encoded.type}")
    message_type = MessageType(encoded.type)
    sender = getattr(encoded, "from")
    if message_type in LOCAL_ONLY_TYPES:
        raise MalformedRaftMessage(f"{message_type.name} from node {sender:x} is local to a node and never sent")
    if sender == NONE or encoded.to == NONE:
        raise MalformedRaftMessage(
            f"{message_type.name} names node 0 as its sender ({sender:x}) or recipient ({encoded.to:x})"
        )
    entries = tuple(_decode_entry(e, message_type, sender) for e in encoded.entries)
    snapshot = None
    if encoded.HasField("snapshot"):
        snapshot = _decode_snapshot(encoded.snapshot, message_type, sender)
    elif message_type is MessageType.SNAPSHOT:
        raise MalformedRaftMessage(f"SNAPSHOT from node {sender:x} carries no snapshot")
    return Message(
        type=message_type,
        to=encoded.to,
        frm=sender,
        term=encoded.term,
        log_term=encoded.log_term,
        index=encoded.index,
        entries=entries,
        commit=encoded.commit,
        reject=encoded.reject,
        reject_hint=encoded.reject_hint,
        snapshot=snapshot,
        context=encoded.context,
    )


def _decode_entry(encoded: raft_pb2.RaftEntry, message_type: MessageType, sender: int) -> Entry:
    if encoded.type not in _KNOWN_ENTRY_TYPES:
        raise MalformedRaftMessage(
            f"{message_type.name} from node {sender:x}: entry {encoded.index} has unknown type {encoded.type}"
        )
    return Entry(term=encoded.term, index=encoded.index, type=EntryType(encoded.type), data=encoded.data)


def _decode_snapshot(encoded: raft_pb2.RaftSnapshot, message_type: MessageType, sender: int) -> Snapshot:
    if NONE in encoded.voters or NONE in encoded.learners:
        raise MalformedRaftMessage(f"{message_type.name} from node {sender:x}: snapshot lists node 0 as a member")
    if message_type is MessageType.SNAPSHOT and (encoded.index == 0 or not encoded.voters):
        raise MalformedRaftMessage(
            f"SNAPSHOT from node {sender:x} is empty (index {encoded.index}, {len(encoded.voters)} voters)"
        )
    meta = SnapshotMeta(index=encoded.index, term=encoded.term, conf=ConfState(voters=tuple(encoded.voters), learners=tuple(encoded.learners)))
    return Snapshot(meta=meta, data=encoded.data)


def frame(serialized: bytes) -> bytes:
    """One serialized RaftMessage as it appears inside a serialized RaftMessageBatch.

    Concatenating framed messages gives exactly `RaftMessageBatch(messages=[...]).SerializeToString()`.
    """
    return BATCH_FIELD_TAG + _varint(len(serialized)) + serialized


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def snapshot_chunks(message: Message, chunk_bytes: int) -> Iterator[raft_pb2.RaftMessageChunk]:
    """`message` (a SNAPSHOT) as the chunks of one StreamRaftMessage call, at most `chunk_bytes` of data each."""
    assert message.snapshot is not None and chunk_bytes > 0
    data = message.snapshot.data
    header = encode_message(message)
    header.snapshot.data = b""
    yield raft_pb2.RaftMessageChunk(header=header, total_data_bytes=len(data), data=data[:chunk_bytes])
    for start in range(chunk_bytes, len(data), chunk_bytes):
        yield raft_pb2.RaftMessageChunk(data=data[start:start + chunk_bytes])


class SnapshotAssembler:
    """Reassembles one StreamRaftMessage stream, refusing (MalformedRaftMessage) what breaks the protocol."""

    def __init__(self, max_data_bytes: int) -> None:
        self.max_data_bytes = max_data_bytes
        self.header: raft_pb2.RaftMessage | None = None
        self.total = 0
        self.received = 0
        self._pieces: list[bytes] = []

    @property
    def sender(self) -> int:
        """The raft id the header claims (0 before the header arrived)."""
        return getattr(self.header, "from") if self.header is not None else NONE

    def add(self, chunk: raft_pb2.RaftMessageChunk) -> None:
        if self.header is None:
            self._begin(chunk)
        elif chunk.HasField("header"):
            raise MalformedRaftMessage(f"a second message header in the stream from node {self.sender:x}")
        self.received += len(chunk.data)
        if self.received > self.total:
            raise MalformedRaftMessage(
                f"the stream from node {self.sender:x} brought more than the {self.total} bytes of snapshot "
                "data it announced"
            )
        if chunk.data:
            self._pieces.append(chunk.data)

    def _begin(self, chunk: raft_pb2.RaftMessageChunk) -> None:
        if not chunk.HasField("header"):
            raise MalformedRaftMessage("a Raft message stream must start with the message header; this one did not")
        header = chunk.header
        sender = getattr(header, "from")
        if header.type != MessageType.SNAPSHOT or not header.HasField("snapshot"):
            raise MalformedRaftMessage(
                f"only a SNAPSHOT may be streamed; node {sender:x} streamed message type {header.type}"
            )
        if chunk.total_data_bytes > self.max_data_bytes:
            raise SnapshotTooLarge(
                f"node {sender:x} announced a {chunk.total_data_bytes}-byte snapshot, over this manager's "
                f"limit of {self.max_data_bytes} bytes"
            )
        self.header = header
        self.total = chunk.total_data_bytes

    def message(self) -> Message:
        """The whole message, once the stream ended; MalformedRaftMessage if it ended early."""
        if self.header is None:
            raise MalformedRaftMessage("an empty Raft message stream (no header, no data)")
        if self.received != self.total:
            raise MalformedRaftMessage(
                f"the stream from node {self.sender:x} ended after {self.received} of the {self.total} bytes "
                "of snapshot data it announced"
            )
        self.header.snapshot.data = b"".join(self._pieces)
        self._pieces.clear()
        return decode_message(self.header)
