"""Raft drivers over the gRPC mutual-TLS transport: replication, failover, restart, join, leave, refusals."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from swarmpy.api import objects_pb2, raft_pb2, raft_pb2_grpc
from swarmpy.manager.raftnet import encode_message
from swarmpy.raft.errors import ConfChangeRefused
from swarmpy.raft.messages import ConfChange, ConfChangeType, Message, MessageType

from .raftnet_harness import TICK, NetCluster, NetManager, channel_to, wait_until

pytestmark = pytest.mark.timeout(60)

ELECTION_TIMEOUT = 10 * TICK


async def propose_many(manager: NetManager, first: int, count: int) -> None:
    await asyncio.gather(*(manager.driver.propose(b"v%d" % i) for i in range(first, first + count)))


async def test_replicates_fails_over_and_catches_up_a_restarted_manager(tmp_path):
    cluster = NetCluster(tmp_path)
    await cluster.start()
    try:
        leader = await cluster.leader()
        await propose_many(leader, 0, 100)
        expected = [b"v%d" % i for i in range(100)]
        await wait_until(lambda: all(m.machine.applied == expected for m in cluster.running()), what="3 replicas")

        # The leader goes away (server and driver): a new one is elected and commits continue.
        old_id = leader.raft_id
        leader_term = leader.driver.status().term
        stopped_at = time.monotonic()
        await leader.stop()
        new_leader = await cluster.leader(timeout=10 * ELECTION_TIMEOUT)
        elapsed = time.monotonic() - stopped_at
        assert new_leader.raft_id != old_id
        # A follower's randomized timeout is at most 2 election timeouts, plus a few ticks of pre-vote and
        # vote RPCs. The two survivors can split their votes once (both campaign in the same term), which
        # costs up to 2 more election timeouts: measured 0.37 s typically, 0.63 s after a split vote.
        one_round = 2 * ELECTION_TIMEOUT + 5 * TICK
        rounds = new_leader.driver.status().term - leader_term
        assert elapsed < rounds * one_round, f"failover took {elapsed:.3f} s over {rounds} election(s)"
        await propose_many(new_leader, 100, 20)

        # The old leader comes back from its data dir on its port and catches up.
        restarted = await cluster.restart(old_id)
        expected = [b"v%d" % i for i in range(120)]
        await wait_until(lambda: restarted.machine.applied == expected, what="the restarted manager to catch up")
        assert all(m.machine.applied == expected for m in cluster.running())
        assert not restarted.driver.is_leader
        assert all(m.transport.stats.refused_too_large == 0 for m in cluster.running())
    finally:
        await cluster.stop()


async def test_a_manager_joins_catches_up_by_snapshot_and_leaves(tmp_path):
    cluster = NetCluster(tmp_path, snapshot_interval=20, log_entries_for_slow_followers=5)
    await cluster.start()
    joiner = NetManager(0, "manager4", str(tmp_path / "m4"))
    try:
        leader = await cluster.leader()
        await propose_many(leader, 0, 60)
        # Compacted: a newcomer needs a snapshot. (The driver compacts just after answering proposals.)
        await wait_until(lambda: leader.driver.storage.first_index() > 1, what="the leader to compact its log")

        await joiner.start_server()
        # A follower refuses Join and says where the leader is.
        follower = next(m for m in cluster.running() if m is not leader)
        async with channel_to(follower.addr, joiner.node_id) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await raft_pb2_grpc.RaftStub(channel).Join(raft_pb2.RaftJoinRequest(addr=joiner.addr))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert leader.addr in refused.value.details()

        async with channel_to(leader.addr, joiner.node_id) as channel:
            answer = await raft_pb2_grpc.RaftStub(channel).Join(raft_pb2.RaftJoinRequest(addr=joiner.addr))
        assert answer.raft_id not in cluster.founders and answer.raft_id != 0
        assert {(m.raft_id, m.node_id) for m in answer.members} >= {(answer.raft_id, "manager4"), (1, "manager1")}
        # A newcomer is a learner (non-voting member) until it has caught up.
        assert leader.driver.status().voters == tuple(sorted(cluster.founders))
        assert leader.driver.status().learners == (answer.raft_id,)
        promote = ConfChange(ConfChangeType.ADD_NODE, answer.raft_id, next(m for m in answer.members if m.raft_id == answer.raft_id).SerializeToString())
        with pytest.raises(ConfChangeRefused, match="not caught up"):
            await leader.driver.propose_conf_change(promote)

        joiner.raft_id = answer.raft_id
        joiner.known_addrs = {m.raft_id: m.addr for m in answer.members}
        await joiner.start_driver((), snapshot_interval=20, log_entries_for_slow_followers=5)
        expected = [b"v%d" % i for i in range(60)]
        await wait_until(lambda: joiner.machine.applied == expected, what="the joiner to catch up")
        assert joiner.driver.stats.snapshots_restored >= 1
        await wait_until(lambda: leader.driver.status().progress[joiner.raft_id].match == leader.driver.status().last_index,
                         what="the leader to see the learner caught up")
        await leader.driver.propose_conf_change(promote)  # what the role manager does on a real manager
        assert leader.driver.status().voters == tuple(sorted((*cluster.founders, answer.raft_id)))
        await wait_until(lambda: joiner.raft_id in joiner.driver.status().voters, what="the joiner to see itself a voter")
        await propose_many(leader, 60, 10)
        await wait_until(lambda: joiner.machine.applied[-1:] == [b"v69"], what="the joiner to follow new commits")

        # Joining again with the same node id keeps the raft id.
        async with channel_to(leader.addr, joiner.node_id) as channel:
            again = await raft_pb2_grpc.RaftStub(channel).Join(raft_pb2.RaftJoinRequest(addr=joiner.addr))
        assert again.raft_id == joiner.raft_id

        # Another manager may not remove it; it may remove itself.
        async with channel_to(leader.addr, "manager2") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await raft_pb2_grpc.RaftStub(channel).Leave(raft_pb2.RaftLeaveRequest(raft_id=joiner.raft_id))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        async with channel_to(leader.addr, joiner.node_id) as channel:
            await raft_pb2_grpc.RaftStub(channel).Leave(raft_pb2.RaftLeaveRequest(raft_id=joiner.raft_id))
        assert joiner.raft_id not in leader.driver.status().voters
        assert joiner.raft_id not in leader.machine.members
        await propose_many(leader, 70, 5)  # the three left still commit
    finally:
        await joiner.stop()
        await cluster.stop()


async def test_refuses_workers_and_managers_claiming_another_raft_id(tmp_path):
    cluster = NetCluster(tmp_path)
    await cluster.start()
    try:
        leader = await cluster.leader()
        target = next(m for m in cluster.running() if m is not leader)
        heartbeat = Message(type=MessageType.HEARTBEAT, to=target.raft_id, frm=leader.raft_id, term=99)
        batch = raft_pb2.RaftMessageBatch(messages=[encode_message(heartbeat)])

        async with channel_to(target.addr, "worker9", objects_pb2.WORKER) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await raft_pb2_grpc.RaftStub(channel).ProcessRaftMessage(batch)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "worker" in refused.value.details()

        impostor = next(m for m in cluster.running() if m is not leader and m is not target)
        async with channel_to(target.addr, impostor.node_id) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await raft_pb2_grpc.RaftStub(channel).ProcessRaftMessage(batch)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert f"raft id {leader.raft_id:x}" in refused.value.details()
        assert target.servicer.stats.impersonations_refused == 1
        # The forged term-99 heartbeat never reached Raft: the leader is still the leader.
        assert leader.driver.is_leader and target.driver.status().term < 99

        # A malformed message is dropped and counted; the receiver keeps running.
        broken = raft_pb2.RaftMessageBatch(messages=[raft_pb2.RaftMessage(type=77, to=target.raft_id)])
        setattr(broken.messages[0], "from", impostor.raft_id)
        async with channel_to(target.addr, impostor.node_id) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await raft_pb2_grpc.RaftStub(channel).ProcessRaftMessage(broken)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "unknown Raft message type 77" in refused.value.details()
        assert target.servicer.stats.malformed_messages == 1
        await propose_many(leader, 0, 5)
    finally:
        await cluster.stop()
