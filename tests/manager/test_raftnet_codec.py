"""codec: every field survives the round trip; what a peer could get wrong is refused with MalformedRaftMessage."""

from __future__ import annotations

import pytest

from swarmpy.api import raft_pb2
from swarmpy.manager.raftnet import codec
from swarmpy.manager.raftnet.codec import MalformedRaftMessage, decode_message, encode_message
from swarmpy.raft.errors import MalformedMessage
from swarmpy.raft.messages import ConfState, Entry, EntryType, Message, MessageType, Snapshot, SnapshotMeta

MAX_U64 = 2**64 - 1


def test_round_trip_keeps_every_field():
    message = Message(
        type=MessageType.APPEND,
        to=MAX_U64,
        frm=0x1234_5678_9ABC,
        term=7,
        log_term=6,
        index=41,
        entries=(
            Entry(term=6, index=42, type=EntryType.NORMAL, data=b"\x00payload\xff"),
            Entry(term=7, index=43, type=EntryType.CONF_CHANGE, data=b"cc"),
            Entry(term=7, index=44),
        ),
        commit=40,
        reject=True,
        reject_hint=39,
        context=b"r17",
    )
    assert decode_message(raft_pb2.RaftMessage.FromString(encode_message(message).SerializeToString())) == message


def test_round_trip_of_a_snapshot_and_of_no_snapshot():
    snapshot = Snapshot(SnapshotMeta(index=100, term=3, conf=ConfState(voters=(1, 5, MAX_U64), learners=(9,))), data=b"state")
    message = Message(type=MessageType.SNAPSHOT, to=2, frm=1, term=3, snapshot=snapshot)
    assert decode_message(encode_message(message)) == message
    heartbeat = Message(type=MessageType.HEARTBEAT, to=2, frm=1, term=3)
    decoded = decode_message(encode_message(heartbeat))
    assert decoded == heartbeat and decoded.snapshot is None and decoded.entries == ()


def _encoded(**fields) -> raft_pb2.RaftMessage:
    sender = fields.pop("frm", 1)
    encoded = raft_pb2.RaftMessage(**{"type": int(MessageType.HEARTBEAT), "to": 2, "term": 1, **fields})
    setattr(encoded, "from", sender)
    return encoded


@pytest.mark.parametrize(
    "encoded, complaint",
    [
        (_encoded(type=0), "unknown Raft message type 0"),
        (_encoded(type=99), "unknown Raft message type 99"),
        (_encoded(type=int(MessageType.UNREACHABLE)), "local to a node"),
        (_encoded(type=int(MessageType.SNAPSHOT_STATUS)), "local to a node"),
        (_encoded(frm=0), "node 0"),
        (_encoded(to=0), "node 0"),
        (_encoded(type=int(MessageType.APPEND), entries=[raft_pb2.RaftEntry(term=1, index=1, type=5)]), "unknown type 5"),
        (_encoded(type=int(MessageType.SNAPSHOT)), "carries no snapshot"),
        (_encoded(type=int(MessageType.SNAPSHOT), snapshot=raft_pb2.RaftSnapshot(index=0, voters=[1])), "is empty"),
        (_encoded(type=int(MessageType.SNAPSHOT), snapshot=raft_pb2.RaftSnapshot(index=5, voters=[1, 0])), "node 0 as a member"),
        (_encoded(type=int(MessageType.SNAPSHOT), snapshot=raft_pb2.RaftSnapshot(index=5, voters=[1], learners=[0])),
         "node 0 as a member"),
    ],
)
def test_malformed_messages_are_refused_with_a_typed_error(encoded, complaint):
    with pytest.raises(MalformedRaftMessage, match=complaint) as refused:
        decode_message(encoded)
    assert isinstance(refused.value, MalformedMessage)  # the Raft package's "a peer sent garbage"


def test_framed_messages_concatenate_into_a_serialized_batch():
    messages = [
        encode_message(Message(type=MessageType.HEARTBEAT, to=2, frm=1, term=1)),
        encode_message(Message(type=MessageType.APPEND, to=2, frm=1, term=1, entries=(Entry(1, 1, data=b"x" * 300),))),
    ]
    serialized = [m.SerializeToString() for m in messages]
    framed = b"".join(codec.frame(s) for s in serialized)
    assert framed == raft_pb2.RaftMessageBatch(messages=messages).SerializeToString()
    assert len(codec.frame(b"x" * 127)) == 127 + 1 + 1 and len(codec.frame(b"x" * 300)) == 300 + 1 + 2
