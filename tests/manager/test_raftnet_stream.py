"""Snapshots larger than one gRPC message: a lagging follower catches up through StreamRaftMessage over
real mutual TLS, and streams that break the chunk protocol or lie about their sender are refused."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from swarmpy.api import objects_pb2, raft_pb2, raft_pb2_grpc
from swarmpy.manager.raftnet import MembersSenderCheck, encode_message
from swarmpy.manager.raftnet.codec import MalformedRaftMessage, SnapshotAssembler, snapshot_chunks
from swarmpy.raft.messages import ConfState, Message, MessageType, Snapshot, SnapshotMeta

from .raftnet_harness import NetCluster, channel_to, wait_until
from .test_raftnet_transport import Peer

pytestmark = pytest.mark.timeout(60)

KIB, MIB = 1024, 1024 * 1024


def snapshot_message(size: int, frm: int = 1, to: int = 2) -> Message:
    snap = Snapshot(SnapshotMeta(index=9, term=1, conf=ConfState(voters=(frm, to))), data=bytes(range(256)) * (size // 256))
    return Message(type=MessageType.SNAPSHOT, to=to, frm=frm, term=1, snapshot=snap)


# ---------------------------------------------------------------- the chunk protocol, without gRPC


def test_chunks_reassemble_into_the_same_message():
    message = snapshot_message(10 * KIB)
    chunks = list(snapshot_chunks(message, 3 * KIB))
    assert len(chunks) == 4 and chunks[0].HasField("header") and not chunks[1].HasField("header")
    assert chunks[0].header.snapshot.data == b"" and chunks[0].total_data_bytes == 10 * KIB
    assembler = SnapshotAssembler(max_data_bytes=10 * KIB)
    for chunk in chunks:
        assembler.add(chunk)
    assert assembler.message() == message


def test_the_assembler_refuses_streams_that_break_the_protocol():
    message = snapshot_message(8 * KIB)
    header, *rest = snapshot_chunks(message, 2 * KIB)

    def feed(*chunks, limit=1 * MIB):
        assembler = SnapshotAssembler(limit)
        for chunk in chunks:
            assembler.add(chunk)
        return assembler.message()

    with pytest.raises(MalformedRaftMessage, match="must start with the message header"):
        feed(*rest)
    with pytest.raises(MalformedRaftMessage, match="over this manager's limit of 4096 bytes"):
        feed(header, *rest, limit=4 * KIB)
    with pytest.raises(MalformedRaftMessage, match="a second message header"):
        feed(header, header)
    with pytest.raises(MalformedRaftMessage, match="ended after 6144 of the 8192 bytes"):
        feed(header, *rest[:-1])
    with pytest.raises(MalformedRaftMessage, match="more than the 8192 bytes"):
        feed(header, *rest, rest[0])
    with pytest.raises(MalformedRaftMessage, match="empty Raft message stream"):
        feed()
    heartbeat = raft_pb2.RaftMessageChunk(header=encode_message(Message(type=MessageType.HEARTBEAT, to=2, frm=1)))
    with pytest.raises(MalformedRaftMessage, match="only a SNAPSHOT may be streamed"):
        feed(heartbeat)


# ---------------------------------------------------------------- refusals over gRPC


async def stream(addr: str, caller: str, chunks: list[raft_pb2.RaftMessageChunk]) -> None:
    async with channel_to(addr, caller) as channel:
        await raft_pb2_grpc.RaftStub(channel).StreamRaftMessage(iter(chunks), timeout=5)


async def test_malformed_oversized_and_impersonating_streams_are_refused():
    members = [objects_pb2.RaftMember(raft_id=r, node_id=f"manager{r}", addr="127.0.0.1:1") for r in (1, 2, 3)]
    peer = await Peer(2, max_snapshot_bytes=64 * KIB, sender_check=MembersSenderCheck(lambda: members)).start()
    try:
        header, *rest = snapshot_chunks(snapshot_message(32 * KIB, frm=1), 8 * KIB)

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stream(peer.addr, "manager1", rest)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "must start with the message header" in refused.value.details()

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stream(peer.addr, "manager1", [header, *rest[:-1]])
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "ended after 24576 of the 32768 bytes" in refused.value.details()

        oversized, *more = snapshot_chunks(snapshot_message(128 * KIB, frm=1), 8 * KIB)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stream(peer.addr, "manager1", [oversized, *more])
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "131072-byte snapshot, over this manager's limit of 65536 bytes" in refused.value.details()

        # manager3's certificate, raft id 1 in the header: refused before the data is read.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stream(peer.addr, "manager3", [header, *rest])
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "manager manager3 sent a SNAPSHOT stream claiming raft id 1" in refused.value.details()

        assert peer.driver.received == []
        assert peer.servicer.stats.streams_refused == 3 and peer.servicer.stats.impersonations_refused == 1

        await stream(peer.addr, "manager1", [header, *rest])  # the same stream, from its real sender
        assert peer.driver.received == [snapshot_message(32 * KIB, frm=1)]
    finally:
        await peer.stop()


# ---------------------------------------------------------------- a real follower catching up


async def test_a_lagging_follower_catches_up_from_a_snapshot_larger_than_a_grpc_message(tmp_path):
    # The drivers admit large incoming messages as the manager configures them: a streamed snapshot is
    # bounded by the stream's own limit, single messages by gRPC's 4 MiB.
    cluster = NetCluster(tmp_path, snapshot_interval=20, log_entries_for_slow_followers=5, max_message_bytes=64 * MIB)
    await cluster.start()
    try:
        leader = await cluster.leader()
        lagging = next(m for m in cluster.running() if m is not leader)
        lagging_id = lagging.raft_id
        await lagging.stop()

        payload = b"x" * (100 * KIB)
        expected = [b"v%d-" % i + payload for i in range(60)]  # ~6 MiB of state
        for start in range(0, 60, 10):
            await asyncio.gather(*(leader.driver.propose(data) for data in expected[start:start + 10]))
        await wait_until(lambda: leader.driver.storage.first_index() > 30, what="the leader to compact its log")

        restarted = await cluster.restart(lagging_id)
        await wait_until(lambda: restarted.machine.applied == expected, timeout=20, what="the follower to catch up")
        assert restarted.driver.stats.snapshots_restored >= 1
        assert leader.transport.stats.snapshots_streamed >= 1
        assert leader.transport.stats.chunks_streamed >= 5  # more than 4 MiB in 1 MiB chunks
        assert leader.transport.stats.refused_too_large == 0
        assert restarted.driver.stats.oversized_messages_dropped == 0

        await leader.driver.propose(b"after")
        await wait_until(lambda: restarted.machine.applied[-1:] == [b"after"], what="the follower to follow new commits")
    finally:
        await cluster.stop()
