"""Learners (non-voting members): replicated to, counted for nothing, promoted only once caught up."""

from __future__ import annotations

import pytest

from swarmpy.raft import errors
from swarmpy.raft.core import Config, RaftNode
from swarmpy.raft.messages import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Message,
    MessageType,
    Role,
    Snapshot,
    SnapshotMeta,
)
from swarmpy.raft.storage import MemoryStorage
from swarmpy.raft.wal import DiskStorage

from .harness import Cluster

ELECTION = 10


def learner(node_id: int) -> ConfChange:
    return ConfChange(ConfChangeType.ADD_LEARNER, node_id, b"addr")


def promote(node_id: int) -> ConfChange:
    return ConfChange(ConfChangeType.ADD_NODE, node_id, b"addr")


def remove(node_id: int) -> ConfChange:
    return ConfChange(ConfChangeType.REMOVE_NODE, node_id)


def cluster_with_learner(size: int = 3, **config: object) -> Cluster:
    c = Cluster(size, **config)
    c.elect(1)
    c.propose(1, b"before")
    c.add_node(4, **config)
    c[1].propose_conf_change(learner(4))
    c.stabilize()
    return c


def test_a_learner_receives_the_log_but_is_not_a_voter_anywhere():
    c = cluster_with_learner()
    for i in (1, 2, 3, 4):
        assert c[i].voters == {1, 2, 3} and c[i].learners == {4}
        assert c[i].conf_state() == ConfState(voters=(1, 2, 3), learners=(4,))
    assert c.nodes[4].app == [b"before"]
    c.propose(1, b"after")
    assert c.nodes[4].app == [b"before", b"after"]
    assert c[1].status().progress[4].match == c[1].log.last_index()


def test_a_learner_does_not_count_toward_the_commit_quorum():
    # Voters 1, 2 and a learner 3: with voter 2 gone, 1 and the learner are two of three nodes, but
    # only one of two voters, so nothing commits.
    c = Cluster(2)
    c.elect(1)
    c.add_node(3)
    c[1].propose_conf_change(learner(3))
    c.stabilize()
    assert c[1].learners == {3}
    c.crash(2)
    index = c[1].propose(b"needs-2")
    c.stabilize()
    assert c[1].status().progress[3].match >= index  # the learner stored it
    assert c[1].log.committed < index
    c.restart(2)
    c.tick(2)
    assert c[1].log.committed >= index


def test_a_learner_never_campaigns_and_its_vote_is_not_counted():
    c = cluster_with_learner()
    c.isolate(1)
    for _ in range(4 * ELECTION):
        c[4].tick()
    c.stabilize()
    assert c[4].role is Role.FOLLOWER and c[4].term == c[1].term  # never even pre-campaigned
    c[4].campaign()
    c.stabilize()
    assert c[4].role is Role.FOLLOWER


def test_vote_tally_ignores_a_learner_grant():
    c = cluster_with_learner()
    node = c[2]
    node._become_candidate()
    node._record_vote(2, True)
    assert node._record_vote(4, True).name == "PENDING"  # the learner's grant: still one of three
    assert node._record_vote(3, True).name == "WON"


def test_check_quorum_and_read_index_need_voters_not_learners():
    c = cluster_with_learner()
    c.crash(2)
    c.crash(3)
    c[1].read_index(b"read-1")
    c.stabilize()
    assert c.nodes[1].read_states == []  # the learner's heartbeat answer confirms nothing
    c.tick(ELECTION + 1)  # only the learner answers heartbeats
    assert c[1].role is Role.FOLLOWER


def test_promotion_of_a_caught_up_learner_makes_it_a_voter_everywhere():
    c = cluster_with_learner()
    c[1].propose_conf_change(promote(4))
    c.stabilize()
    for i in (1, 2, 3, 4):
        assert c[i].voters == {1, 2, 3, 4} and c[i].learners == set()
    c.crash(2)
    c.propose(1, b"with-four")  # 1, 3 and 4 of four voters
    assert c.nodes[4].app[-1] == b"with-four"
    c.restart(2)
    c[1].transfer_leadership(4)  # refused for a learner; the promoted one may lead
    c.stabilize()
    assert c[4].role is Role.LEADER


def test_promotion_of_a_learner_far_behind_is_refused():
    c = Cluster(3, max_learner_lag=5)
    c.elect(1)
    c.add_node(4, max_learner_lag=5)
    c.isolate(4)
    c[1].propose_conf_change(learner(4))
    c.stabilize()
    for i in range(20):
        c[1].propose(b"p%d" % i)
    c.stabilize()
    with pytest.raises(errors.ConfChangeRefused, match=r"learner 4 is not caught up: .* entries behind") as exc:
        c[1].propose_conf_change(promote(4))
    assert "at most 5 allowed" in str(exc.value)
    assert c[1].learners == {4} and c[1].voters == {1, 2, 3}
    c.heal()
    c.tick(2)
    c[1].propose_conf_change(promote(4))
    c.stabilize()
    assert c[1].voters == {1, 2, 3, 4}


def test_promotion_of_a_silent_learner_is_refused():
    c = cluster_with_learner()
    c.crash(4)
    c.tick(ELECTION)
    with pytest.raises(errors.ConfChangeRefused, match="not heard from"):
        c[1].propose_conf_change(promote(4))


def test_learner_changes_go_one_at_a_time_and_are_checked():
    c = cluster_with_learner()
    with pytest.raises(errors.ConfChangeRefused, match="already a learner"):
        c[1].propose_conf_change(learner(4))
    with pytest.raises(errors.ConfChangeRefused, match="already a voting member"):
        c[1].propose_conf_change(learner(2))
    with pytest.raises(errors.TransferRefused, match="learner"):
        c[1].transfer_leadership(4)
    c.isolate(1)
    c[1].propose_conf_change(promote(4))
    with pytest.raises(errors.ProposalDropped, match="one at a time"):
        c[1].propose_conf_change(learner(5))


def test_removing_a_learner_needs_no_quorum_check_and_stops_replication():
    c = cluster_with_learner()
    c.crash(3)
    c.tick(ELECTION)  # 3 unreachable: removing a voter now would be refused, a learner is fine
    c[1].propose_conf_change(remove(4))
    c.stabilize()
    assert c[1].learners == set() and 4 not in c[1].status().progress
    assert c[2].learners == set()
    c.propose(1, b"without-learner")
    assert b"without-learner" not in c.nodes[4].app


def test_learners_survive_a_restart_and_a_snapshot(tmp_path):
    storage = MemoryStorage()
    c = cluster_with_learner(snapshot_every=1)
    c.propose(1, b"x")
    for i in (1, 4):
        c.crash(i)
        c.restart(i)
        assert c[i].learners == {4} and c[i].voters == {1, 2, 3}
    # A snapshot carries the learners to a node that restores from it.
    meta = SnapshotMeta(index=7, term=2, conf=ConfState(voters=(1, 2, 3), learners=(4,)))
    storage.apply_snapshot(Snapshot(meta=meta, data=b""))
    node = RaftNode(Config(id=4, applied=7), storage)
    assert node.learners == {4} and node.voters == {1, 2, 3}
    disk = DiskStorage(str(tmp_path / "d"))
    disk.apply_snapshot(Snapshot(meta=meta, data=b"state"))
    disk.close()
    reopened = DiskStorage(str(tmp_path / "d"))
    assert reopened.initial_state()[1] == ConfState(voters=(1, 2, 3), learners=(4,))
    reopened.close()


def test_a_snapshot_naming_a_node_as_both_voter_and_learner_is_dropped():
    c = cluster_with_learner()
    node = c[2]
    snap = Snapshot(SnapshotMeta(index=50, term=node.term, conf=ConfState((1, 2, 3), (3,))))
    node.step(Message(MessageType.SNAPSHOT, to=2, frm=1, term=node.term, snapshot=snap))
    assert node.stats.get("dropped_malformed") == 1 and "twice" in node.last_drop_reason
