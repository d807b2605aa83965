"""Log replication: repair of divergent logs, batching, the inflight window, snapshots, proposals."""

from __future__ import annotations

import pytest

from swarmpy.raft import errors
from swarmpy.raft.core import Config, RaftNode
from swarmpy.raft.messages import Entry, Message, MessageType, Role
from swarmpy.raft.progress import ProgressState
from swarmpy.raft.storage import MemoryStorage

from .harness import Cluster


def test_divergent_follower_log_is_repaired_one_term_per_round_trip():
    c = Cluster(3)
    c.elect(1)
    c.propose(1, b"shared")
    # The leader is cut off and piles up 30 entries of its term that nobody else has.
    c.isolate(1)
    for i in range(30):
        c[1].propose(f"divergent-{i}".encode())
    c.stabilize()
    c.crash(1)  # (so it does not step down and rejoin on its own while the others move on)
    c.tick(25)  # the leases on node 1 expire; 2 or 3 is elected
    new_leader = c.leader()
    assert new_leader in (2, 3)
    after = [f"after-{i}".encode() for i in range(10)]
    for data in after:
        c.propose(new_leader, data)
    # A second change of leader (new term), so the leader's first probe to node 1 lands far past
    # where the logs diverge: without fast repair that would cost one rejection per entry.
    other = 5 - new_leader
    c[new_leader].transfer_leadership(other)
    c.stabilize()
    assert c.leader() == other
    new_leader = other
    c.restart(1)
    c.heal()
    c.delivered.clear()
    c.tick(3)
    rejections = [m for m in c.delivered if m.type == MessageType.APPEND_RESPONSE and m.reject and m.frm == 1]
    assert c.nodes[1].app == [b"shared"] + after
    assert c[1].log.last_index() == c[new_leader].log.last_index()
    # 10+ mismatching entries, all of one term on node 1: fast repair needs one or two rejections.
    assert 1 <= len(rejections) <= 2, rejections


def test_replication_batches_by_max_size_per_msg_and_stops_at_the_inflight_window():
    c = Cluster(3, max_size_per_msg=100, max_inflight_msgs=2)
    c.elect(1)
    c.filter = lambda m: m.type != MessageType.APPEND_RESPONSE  # nothing is acknowledged
    for i in range(10):
        c[1].propose(b"x" * 60)
    c.stabilize()
    appends_to_2 = [m for m in c.delivered if m.type == MessageType.APPEND and m.to == 2 and m.entries]
    assert all(sum(len(e.data) + 16 for e in m.entries) <= 100 or len(m.entries) == 1 for m in appends_to_2)
    pr = c[1]._progress[2]
    assert pr.state is ProgressState.REPLICATE and len(pr.inflights) == 2 and pr.is_paused()
    c.filter = None
    c.tick(3)
    assert c.nodes[2].app == [b"x" * 60] * 10


def test_lost_append_is_recovered_through_heartbeat_responses():
    c = Cluster(3)
    c.elect(1)
    c.filter = lambda m: not (m.type == MessageType.APPEND and m.to == 3)
    c.propose(1, b"lost-to-3")
    c.filter = None
    assert c.nodes[3].app == []
    c.tick(2)
    assert c.nodes[3].app == [b"lost-to-3"]


def test_snapshot_is_sent_installed_and_replication_resumes_after_it():
    c = Cluster(3, snapshot_every=5)
    c.elect(1)
    c.crash(3)
    for i in range(20):
        c.propose(1, f"v{i}".encode())
    leader_storage = c.nodes[1].storage
    assert leader_storage.first_index() > 2  # compacted: node 3 cannot catch up from the log
    c.restart(3)
    c.tick(2)
    assert c[1].stats["snapshots_sent"] >= 1 and c[3].stats["snapshots_installed"] == 1
    assert c.nodes[3].storage.snapshot().meta.index >= 15
    c.propose(1, b"after-snapshot")
    assert c.nodes[3].app == [f"v{i}".encode() for i in range(20)] + [b"after-snapshot"]
    assert c[1]._progress[3].state is ProgressState.REPLICATE


def test_failed_snapshot_send_is_retried_after_report_snapshot():
    c = Cluster(3, snapshot_every=5)
    c.elect(1)
    c.crash(3)
    for i in range(12):
        c.propose(1, f"v{i}".encode())
    c.restart(3)
    c.filter = lambda m: m.type != MessageType.SNAPSHOT  # the harness reports the failure
    c.tick(2)
    assert c[1].stats["snapshots_sent"] >= 1 and c.nodes[3].app == []
    c.filter = None
    c.tick(3)
    assert c.nodes[3].app == [f"v{i}".encode() for i in range(12)]


def test_proposal_too_large_error_names_the_size_and_the_limit():
    c = Cluster(1, max_proposal_bytes=1000)
    c.tick(25)
    assert c[1].role is Role.LEADER
    with pytest.raises(errors.ProposalTooLarge) as exc:
        c[1].propose(b"x" * 1001)
    assert "1001" in str(exc.value) and "1000" in str(exc.value)
    assert (exc.value.size, exc.value.limit) == (1001, 1000)


def test_propose_on_a_follower_raises_not_leader_naming_the_leader():
    c = Cluster(3)
    c.elect(2)
    with pytest.raises(errors.NotLeader) as exc:
        c[1].propose(b"x")
    assert exc.value.leader == 2


def test_propose_returns_the_index_the_entry_is_applied_at():
    c = Cluster(3)
    c.elect(1)
    index = c.propose(1, b"x")
    assert c[1].log.term_or_zero(index) == c[1].term and c.nodes[1].app_index == index


def test_single_node_commits_its_own_proposals_at_once():
    storage = MemoryStorage()
    node = RaftNode(Config(id=7, peers=(7,)), storage)
    for _ in range(3):
        for _ in range(25):
            node.tick()
        if node.has_ready():
            rd = node.ready()
            storage.append(rd.entries)
            if rd.hard_state:
                storage.set_hard_state(rd.hard_state)
            node.advance(rd)
    assert node.role is Role.LEADER
    index = node.propose(b"solo")
    rd = node.ready()
    assert [e.data for e in rd.committed_entries][-1] == b"solo" and rd.committed_entries[-1].index == index


def test_follower_never_commits_past_what_the_append_proves_matches():
    storage = MemoryStorage()
    node = RaftNode(Config(id=2, peers=(1, 2, 3)), storage)
    # Leader says commit=10 but vouches for entries only up to 4.
    entries = (Entry(term=2, index=4, data=b"a"),)
    node.step(Message(MessageType.APPEND, to=2, frm=1, term=2, index=3, log_term=1, entries=entries, commit=10))
    assert node.log.committed == 4
