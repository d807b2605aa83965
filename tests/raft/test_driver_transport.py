"""InMemoryNetwork/InMemoryTransport: delivery, drops, partitions, delays, unreachable and snapshot reports."""

from __future__ import annotations

import asyncio
import random

from swarmpy.raft.messages import Message, MessageType, Snapshot, SnapshotMeta
from swarmpy.raft.transport import InMemoryNetwork


class Recorder:
    def __init__(self) -> None:
        self.received: list[Message] = []
        self.unreachable: list[int] = []
        self.snapshots: list[tuple[int, bool]] = []

    def receive(self, message: Message) -> None:
        self.received.append(message)

    def report_unreachable(self, node_id: int) -> None:
        self.unreachable.append(node_id)

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        self.snapshots.append((node_id, ok))


async def make_network(ids=(1, 2, 3)):
    network = InMemoryNetwork(random.Random(3))
    recorders, transports = {}, {}
    for node_id in ids:
        recorders[node_id] = Recorder()
        transports[node_id] = network.transport(node_id)
        transports[node_id].bind(node_id, recorders[node_id])
        await transports[node_id].start()
    return network, transports, recorders


def heartbeat(frm: int, to: int) -> Message:
    return Message(type=MessageType.HEARTBEAT, to=to, frm=frm, term=1)


async def test_delivers_to_the_addressee():
    network, transports, recorders = await make_network()
    await transports[1].send([heartbeat(1, 2), heartbeat(1, 3)])
    assert [m.to for m in recorders[2].received] == [2]
    assert [m.to for m in recorders[3].received] == [3]
    assert network.delivered == 2


async def test_partition_loses_messages_and_reports_unreachable_then_heals():
    network, transports, recorders = await make_network()
    network.partition([1], [2, 3])
    await transports[1].send([heartbeat(1, 2)])
    await transports[2].send([heartbeat(2, 3), heartbeat(2, 1)])
    assert recorders[2].received == [] and len(recorders[3].received) == 1
    assert recorders[1].unreachable == [2] and recorders[2].unreachable == [1]
    network.heal()
    await transports[1].send([heartbeat(1, 2)])
    assert len(recorders[2].received) == 1


async def test_one_way_cut_and_stopped_peer():
    network, transports, recorders = await make_network()
    network.cut(1, 2)
    await transports[2].send([heartbeat(2, 1)])
    await transports[1].send([heartbeat(1, 2)])
    assert len(recorders[1].received) == 1 and recorders[2].received == []
    await transports[3].stop()
    await transports[1].send([heartbeat(1, 3)])
    assert recorders[3].received == [] and 3 in recorders[1].unreachable


async def test_random_drops_and_snapshot_reports():
    network, transports, recorders = await make_network()
    network.drop_rate = 0.5
    await transports[1].send([heartbeat(1, 2) for _ in range(200)])
    assert 50 < len(recorders[2].received) < 150
    network.drop_rate = 0.0
    snapshot = Message(type=MessageType.SNAPSHOT, to=2, frm=1, snapshot=Snapshot(meta=SnapshotMeta(index=5, term=1)))
    await transports[1].send([snapshot])
    assert recorders[1].snapshots == [(2, True)]
    network.isolate(2)
    await transports[1].send([snapshot])
    assert recorders[1].snapshots[-1] == (2, False)


async def test_delay_delivers_later_and_stop_cancels_pending_deliveries():
    network, transports, recorders = await make_network()
    network.delay = 0.02
    await transports[1].send([heartbeat(1, 2)])
    assert recorders[2].received == []
    await asyncio.sleep(0.05)
    assert len(recorders[2].received) == 1
    await transports[1].send([heartbeat(1, 2)])
    await transports[1].stop()
    await asyncio.sleep(0.05)
    assert len(recorders[2].received) == 1
