"""ReadIndex: linearizable reads confirmed by a heartbeat round, without a log write."""

from __future__ import annotations

import pytest

from swarmpy.raft import errors
from swarmpy.raft.messages import MessageType

from .harness import Cluster


def test_read_index_is_served_at_the_commit_index_after_a_heartbeat_round_with_the_ctx():
    c = Cluster(3)
    c.elect(1)
    index = c.propose(1, b"x")
    c.delivered.clear()
    c[1].read_index(b"read-1")
    c.stabilize()
    assert [(r.index, r.request_ctx) for r in c.nodes[1].read_states] == [(index, b"read-1")]
    heartbeats = [m for m in c.delivered if m.type == MessageType.HEARTBEAT and m.context == b"read-1"]
    assert {m.to for m in heartbeats} == {2, 3}
    assert not [m for m in c.delivered if m.type == MessageType.APPEND and m.entries]  # no log write


def test_read_index_waits_for_a_majority_to_confirm_leadership():
    c = Cluster(3)
    c.elect(1)
    c.isolate(1)
    c[1].read_index(b"r")
    c.stabilize()
    assert c.nodes[1].read_states == []
    c.heal()
    c.tick()  # the next heartbeat repeats the pending read's ctx
    assert [r.request_ctx for r in c.nodes[1].read_states] == [b"r"]


def test_read_index_on_a_new_leader_waits_until_an_entry_of_its_term_commits():
    c = Cluster(3)
    c.elect(1)
    c.filter = lambda m: m.type != MessageType.APPEND_RESPONSE  # the no-op cannot commit yet
    c[1].transfer_leadership(2)
    c.stabilize()
    leader = c.leader()
    assert leader == 2
    c[leader].read_index(b"early")
    c.stabilize()
    assert c.nodes[leader].read_states == []
    c.filter = None
    c.tick(2)
    (read,) = c.nodes[leader].read_states
    assert read.request_ctx == b"early" and c[leader].log.term_or_zero(read.index) == c[leader].term


def test_read_index_on_a_follower_raises_not_leader():
    c = Cluster(3)
    c.elect(1)
    with pytest.raises(errors.NotLeader) as exc:
        c[2].read_index(b"r")
    assert exc.value.leader == 1


def test_single_node_serves_reads_at_once():
    c = Cluster(1)
    c.tick(25)
    c[1].read_index(b"solo")
    c.stabilize()
    assert [r.request_ctx for r in c.nodes[1].read_states] == [b"solo"]
