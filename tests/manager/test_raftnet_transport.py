"""GrpcTransport against real mutual-TLS Raft servers: batching, snapshots, failures, re-resolving, limits."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from swarmpy.api import raft_pb2_grpc
from swarmpy.ca import tls
from swarmpy.ca.authz import AuthorizationInterceptor
from swarmpy.manager.raftnet import GrpcTransport, RaftServicer
from swarmpy.raft.messages import ConfState, Entry, Message, MessageType, Snapshot, SnapshotMeta

from .raftnet_harness import CLUSTER_ID, channel_to, node_certificate, root_ca, wait_until

pytestmark = pytest.mark.timeout(30)

KIB = 1024


class RecordingDriver:
    """Stands in for the RaftDriver behind a server: records what the servicer hands it."""

    running = True
    is_leader = False
    leader = 0

    def __init__(self, node_id: int) -> None:
        self.node_id = node_id
        self.received: list[Message] = []

    def receive(self, message: Message) -> None:
        self.received.append(message)


class SlowServicer(RaftServicer):
    def __init__(self, *args, delay: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.delay = delay

    async def ProcessRaftMessage(self, request, context):
        await asyncio.sleep(self.delay)
        return await super().ProcessRaftMessage(request, context)


class Reports:
    """The sending side's handler: what the transport reported."""

    def __init__(self) -> None:
        self.unreachable: list[int] = []
        self.snapshots: list[tuple[int, bool]] = []

    def receive(self, message: Message) -> None:
        raise AssertionError("the transport never delivers to its own node")

    def report_unreachable(self, node_id: int) -> None:
        self.unreachable.append(node_id)

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        self.snapshots.append((node_id, ok))


class Peer:
    """A manager's Raft server on 127.0.0.1 with a RecordingDriver behind it."""

    def __init__(self, raft_id: int, port: int = 0, delay: float = 0.0, **servicer_options) -> None:
        self.driver = RecordingDriver(raft_id)
        self.servicer_options = servicer_options
        self.port = port
        self.delay = delay
        self.batches = 0
        self.server: grpc.aio.Server | None = None
        self.servicer_class = SlowServicer

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> Peer:
        key, cert = node_certificate(f"manager{self.driver.node_id}")
        root = root_ca()[1]
        self.server = grpc.aio.server(
            interceptors=[AuthorizationInterceptor(CLUSTER_ID, lambda: root)], options=tls.server_options()
        )
        servicer = self.servicer_class(lambda: self.driver, lambda: [], delay=self.delay, **self.servicer_options)
        self.servicer = servicer
        raft_pb2_grpc.add_RaftServicer_to_server(servicer, self.server)
        self.port = self.server.add_secure_port(self.addr, tls.server_credentials(key, cert, root))
        await self.server.start()
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=None)


async def started_transport(addresses: dict[int, str], **options) -> tuple[GrpcTransport, Reports]:
    transport = GrpcTransport(addresses.get, lambda addr: channel_to(addr, "manager1"), **options)
    reports = Reports()
    transport.bind(1, reports)
    await transport.start()
    return transport, reports


def heartbeat(to: int, term: int = 1) -> Message:
    return Message(type=MessageType.HEARTBEAT, to=to, frm=1, term=term)


def append(to: int, size: int) -> Message:
    return Message(type=MessageType.APPEND, to=to, frm=1, term=1, entries=(Entry(term=1, index=1, data=b"x" * size),))


def snapshot(to: int, size: int = 10) -> Message:
    snap = Snapshot(SnapshotMeta(index=9, term=1, conf=ConfState(voters=(1, to))), data=b"s" * size)
    return Message(type=MessageType.SNAPSHOT, to=to, frm=1, term=1, snapshot=snap)


async def test_delivers_in_order_batching_what_queued_while_a_call_was_in_flight():
    peer = await Peer(2, delay=0.05).start()
    transport, reports = await started_transport({2: peer.addr})
    try:
        for term in range(1, 201):
            await transport.send([heartbeat(2, term)])
            if term % 50 == 0:
                await asyncio.sleep(0.01)
        await wait_until(lambda: transport.stats.messages_sent == 200, what="200 messages acknowledged")
        assert [m.term for m in peer.driver.received] == list(range(1, 201))
        assert transport.stats.batches_sent <= 10  # one call at a time; the rest queued into the next
        assert reports.unreachable == []
    finally:
        await transport.stop()
        await peer.stop()


async def test_snapshot_travels_alone_and_is_reported_delivered():
    peer = await Peer(2).start()
    transport, reports = await started_transport({2: peer.addr})
    try:
        await transport.send([heartbeat(2), snapshot(2), heartbeat(2, 2)])
        await wait_until(lambda: transport.stats.messages_sent == 3, what="3 messages acknowledged")
        received = peer.driver.received
        assert sorted(m.type for m in received) == [MessageType.HEARTBEAT, MessageType.HEARTBEAT, MessageType.SNAPSHOT]
        assert [m.term for m in received if m.type == MessageType.HEARTBEAT] == [1, 2]
        assert next(m for m in received if m.type == MessageType.SNAPSHOT).snapshot.data == b"s" * 10
        assert transport.stats.batches_sent == 2  # the heartbeats together, the snapshot in a call of its own
        assert reports.snapshots == [(2, True)]
    finally:
        await transport.stop()
        await peer.stop()


class StalledStreamServicer(SlowServicer):
    """A follower slow to take a streamed snapshot: each chunk waits until `release` is set."""

    def __init__(self, *args, release: asyncio.Event, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.release = release

    async def StreamRaftMessage(self, request_iterator, context):
        async def slowly():
            async for chunk in request_iterator:
                await self.release.wait()
                yield chunk

        return await super().StreamRaftMessage(slowly(), context)


async def stalled_stream_peer() -> tuple[asyncio.Event, Peer, GrpcTransport, Reports]:
    """Peer 2 stalling streamed snapshots until the event is set, and a transport to it that streams any
    snapshot over 64 KiB."""
    release = asyncio.Event()
    peer = Peer(2)
    peer.servicer_class = lambda *args, **kwargs: StalledStreamServicer(*args, release=release, **kwargs)
    await peer.start()
    transport, reports = await started_transport({2: peer.addr}, max_message_bytes=64 * KIB, snapshot_chunk_bytes=16 * KIB)
    return release, peer, transport, reports


async def test_heartbeats_are_not_held_behind_a_snapshot_being_streamed_to_the_same_peer():
    release, peer, transport, reports = await stalled_stream_peer()
    try:
        await transport.send([snapshot(2, 100 * KIB)])
        for term in range(1, 6):
            await transport.send([heartbeat(2, term)])
            await asyncio.sleep(0.05)
        await wait_until(lambda: len(peer.driver.received) == 5, what="the heartbeats, while the snapshot is stalled")
        assert [m.type for m in peer.driver.received] == [MessageType.HEARTBEAT] * 5
        assert reports.snapshots == []
        release.set()
        await wait_until(lambda: reports.snapshots == [(2, True)], what="the snapshot delivered once released")
        assert peer.driver.received[-1].type == MessageType.SNAPSHOT
    finally:
        release.set()
        await transport.stop()
        await peer.stop()


async def test_unreachable_peer_is_reported_and_its_new_address_is_used_on_reconnect():
    down = await Peer(2).start()
    await down.stop()  # a port nothing listens on
    addresses = {2: down.addr}
    transport, reports = await started_transport(addresses, backoff_initial=0.01, backoff_max=0.05)
    try:
        await transport.send([heartbeat(2), snapshot(2)])
        await wait_until(lambda: (2, False) in reports.snapshots, what="the failed snapshot report")
        assert 2 in reports.unreachable and transport.stats.failed_batches >= 1

        moved = await Peer(2).start()  # the member came back at another address
        addresses[2] = moved.addr
        await transport.send([heartbeat(2, 5)])
        await wait_until(lambda: [m.term for m in moved.driver.received][-1:] == [5], what="delivery at the new address")
        await moved.stop()
    finally:
        await transport.stop()


async def test_a_channel_replaced_under_the_other_lanes_call_fails_that_call_and_both_lanes_go_on():
    # grpc.aio cancels the calls of a channel closed under them. Here the heartbeat lane replaces the
    # channel (renewed credentials) while the snapshot lane's call is in flight: that snapshot must be
    # reported failed and the lane live on (it used to die of the CancelledError, silently, and no
    # snapshot ever reached the peer again; CI saw it as a snapshot failure never reported).
    peer = await Peer(2, delay=0.5).start()
    transport, reports = await started_transport({2: peer.addr})
    try:
        await transport.send([snapshot(2)])
        await asyncio.sleep(0.2)  # the snapshot's call is now waiting on the slow peer
        transport.renew_channels()
        await transport.send([heartbeat(2, 3)])
        await wait_until(lambda: (2, False) in reports.snapshots, what="the cut snapshot reported failed")
        await wait_until(lambda: any(m.term == 3 for m in peer.driver.received), what="the heartbeat on the new channel")
        await transport.send([snapshot(2)])
        await wait_until(lambda: (2, True) in reports.snapshots, what="the next snapshot delivered by the same lane")
        failed = transport.stats.failed_batches
        await transport.send([heartbeat(2, 4)])
        await asyncio.sleep(0.2)  # the heartbeat's call is now waiting on the slow peer
        transport.renew_channels()  # and the other way round: the snapshot lane replaces the channel under it
        await transport.send([snapshot(2)])
        await wait_until(lambda: reports.snapshots.count((2, True)) == 2, what="the third snapshot")
        await wait_until(lambda: transport.stats.failed_batches > failed, what="the cut heartbeat call counted failed")
        await transport.send([heartbeat(2, 5)])
        await wait_until(lambda: any(m.term == 5 for m in peer.driver.received), what="a heartbeat after the heartbeat lane's call was cut")
    finally:
        await transport.stop()
        await peer.stop()


async def test_a_heartbeat_timing_out_on_a_slow_peer_leaves_the_snapshot_on_the_same_channel_alone():
    # A follower slow to answer (busy taking a large snapshot, say) lets a heartbeat's 2 s deadline pass on
    # a connection that works. Dropping the channel for that cut the snapshot streaming on it, which Raft
    # then sent again, to be cut again: the follower never caught up.
    peer = await Peer(2, delay=0.6).start()
    transport, reports = await started_transport({2: peer.addr}, rpc_timeout=0.2)
    try:
        await transport.send([snapshot(2)])
        await asyncio.sleep(0.1)  # the snapshot's call is waiting on the slow peer
        await transport.send([heartbeat(2, 3)])
        await wait_until(lambda: transport.stats.failed_batches >= 1, what="the heartbeat's deadline")
        await wait_until(lambda: reports.snapshots, what="the snapshot's outcome")
        assert reports.snapshots == [(2, True)], "a deadline on a working connection must not cut the other lane"
        peer.servicer.delay = 0.0  # the follower caught up
        await transport.send([heartbeat(2, 4)])
        await wait_until(lambda: any(m.term == 4 for m in peer.driver.received), what="the next heartbeat")
    finally:
        await transport.stop()
        await peer.stop()


async def test_peer_without_an_address_is_unreachable():
    transport, reports = await started_transport({})
    try:
        await transport.send([heartbeat(7), snapshot(7)])
        await wait_until(lambda: (7, False) in reports.snapshots, what="the failed snapshot report")
        assert 7 in reports.unreachable and transport.stats.unresolved_addresses >= 1
    finally:
        await transport.stop()


async def test_a_full_queue_drops_the_oldest_messages_but_keeps_snapshots():
    peer = await Peer(2, delay=0.2).start()
    transport, reports = await started_transport({2: peer.addr}, max_queued_messages=4)
    try:
        await transport.send([heartbeat(2, 1)])
        await asyncio.sleep(0.05)  # the first call is now in flight for 0.2 s
        await transport.send([snapshot(2)] + [heartbeat(2, term) for term in range(2, 12)])
        assert transport.stats.dropped_queue_full == 6  # heartbeats 2..7; the snapshot has its own lane
        await wait_until(lambda: transport.stats.messages_sent == 6, what="what was kept")
        received = peer.driver.received
        assert [m.term for m in received if m.type == MessageType.HEARTBEAT] == [1, 8, 9, 10, 11]  # the newest survived
        assert sum(m.type == MessageType.SNAPSHOT for m in received) == 1
        assert reports.snapshots == [(2, True)]
    finally:
        await transport.stop()
        await peer.stop()


async def test_a_newer_snapshot_replaces_one_still_waiting_for_the_same_peer():
    release, peer, transport, reports = await stalled_stream_peer()
    try:
        await transport.send([snapshot(2, 100 * KIB)])
        await asyncio.sleep(0.1)  # the first is being streamed (stalled)
        await transport.send([snapshot(2, 100 * KIB + 1)])
        await transport.send([snapshot(2, 100 * KIB + 2)])
        assert reports.snapshots == [(2, False)]  # the second, superseded by the third before it left
        release.set()
        await wait_until(lambda: len(reports.snapshots) == 3, what="both sent snapshots reported")
        sizes = [len(m.snapshot.data) for m in peer.driver.received if m.type == MessageType.SNAPSHOT]
        assert sizes == [100 * KIB, 100 * KIB + 2]
    finally:
        release.set()
        await transport.stop()
        await peer.stop()


async def test_oversized_messages_are_refused_with_their_size_and_the_limit(caplog):
    peer = await Peer(2).start()
    transport, reports = await started_transport(
        {2: peer.addr}, max_message_bytes=64 * KIB, snapshot_chunk_bytes=16 * KIB, max_snapshot_bytes=200 * KIB
    )
    try:
        await transport.send([append(2, 100 * KIB), snapshot(2, 300 * KIB), heartbeat(2)])
        await wait_until(lambda: len(peer.driver.received) == 1, what="the heartbeat")
        assert peer.driver.received[0].type == MessageType.HEARTBEAT
        assert transport.stats.refused_too_large == 2
        refusal = str(transport.last_refusal)
        assert "SNAPSHOT from 1 to 2 is 307200" in refusal and "over the limit of 204800 bytes for a streamed snapshot" in refusal
        assert any("APPEND from 1 to 2 is 102" in r.getMessage() and "over the limit of 65536 bytes" in r.getMessage()
                   for r in caplog.records)
        assert reports.unreachable.count(2) == 2 and reports.snapshots == [(2, False)]
    finally:
        await transport.stop()
        await peer.stop()


async def test_a_snapshot_too_large_for_one_message_streams_in_chunks_beside_other_messages():
    peer = await Peer(2).start()
    transport, reports = await started_transport({2: peer.addr}, max_message_bytes=64 * KIB, snapshot_chunk_bytes=16 * KIB)
    try:
        big = snapshot(2, 100 * KIB + 7)
        await transport.send([heartbeat(2, 1), big, heartbeat(2, 2)])
        await wait_until(lambda: len(peer.driver.received) == 3 and reports.snapshots, what="3 messages")
        received = peer.driver.received
        assert [m.term for m in received if m.type == MessageType.HEARTBEAT] == [1, 2]
        assert [m for m in received if m.type == MessageType.SNAPSHOT] == [big]
        assert transport.stats.snapshots_streamed == 1 and transport.stats.chunks_streamed == 7
        assert reports.snapshots == [(2, True)] and reports.unreachable == []
    finally:
        await transport.stop()
        await peer.stop()


async def test_a_refused_stream_is_reported_as_a_failed_snapshot():
    peer = await Peer(2, max_snapshot_bytes=50 * KIB).start()
    transport, reports = await started_transport({2: peer.addr}, max_message_bytes=64 * KIB, snapshot_chunk_bytes=16 * KIB)
    try:
        await transport.send([snapshot(2, 100 * KIB)])
        await wait_until(lambda: reports.snapshots == [(2, False)], what="the failed snapshot report")
        assert peer.driver.received == [] and reports.unreachable == [2]
        assert peer.servicer.stats.streams_refused == 1
    finally:
        await transport.stop()
        await peer.stop()


def test_snapshot_chunks_must_fit_in_a_message():
    with pytest.raises(ValueError, match="do not fit"):
        GrpcTransport({}.get, lambda addr: None, max_message_bytes=64 * KIB, snapshot_chunk_bytes=64 * KIB)


async def test_the_receiving_server_enforces_its_own_limit():
    peer = await Peer(2).start()  # 4 MiB, as every manager's server
    transport, reports = await started_transport({2: peer.addr}, max_message_bytes=8 * 1024 * KIB)
    try:
        await transport.send([append(2, 5 * 1024 * KIB)])
        await wait_until(lambda: reports.unreachable == [2], what="the refused call to be reported")
        assert peer.driver.received == [] and transport.stats.failed_batches == 1
    finally:
        await transport.stop()
        await peer.stop()


async def test_stop_cancels_the_senders_and_later_sends_are_ignored():
    peer = await Peer(2, delay=5).start()
    transport, reports = await started_transport({2: peer.addr})
    await transport.send([heartbeat(2)])
    await asyncio.sleep(0.05)
    sender = transport._peers[2].task
    await asyncio.wait_for(transport.stop(), 2)  # does not wait for the 5 s call
    assert sender.done()
    await transport.send([heartbeat(2)])
    assert transport.queued(2) == 0
    await peer.stop()
