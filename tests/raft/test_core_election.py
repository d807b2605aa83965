"""Elections, terms and commitment: the safety rules of the Raft paper, one scenario each."""

from __future__ import annotations

import pytest

from swarmpy.raft import errors
from swarmpy.raft.core import Config, RaftNode
from swarmpy.raft.messages import HardState, Message, MessageType, Role
from swarmpy.raft.storage import MemoryStorage

from .harness import Cluster

ELECTION = 10


def test_a_three_node_cluster_elects_one_leader_within_two_election_timeouts():
    c = Cluster(3)
    for tick in range(1, 2 * ELECTION + 5):
        c.tick()
        if c.leader():
            break
    # Randomized timeouts lie in [10, 20); pre-vote and vote then take no simulated time here.
    assert c.leader() and tick <= 2 * ELECTION
    assert sum(1 for n in c.nodes.values() if n.node.role is Role.LEADER) == 1


def test_figure8_leader_does_not_commit_an_entry_of_an_earlier_term_by_counting_replicas():
    # Raft paper, Figure 8, with pre-vote and CheckQuorum off as in the paper. max_size_per_msg=1
    # makes each append carry one entry, so S1 can replicate its old entry without its new no-op.
    c = Cluster(5, pre_vote=False, check_quorum=False, max_size_per_msg=1)
    c.elect(1)
    base = c[1].log.last_index()
    # (a) S1 replicates index base+1 only to S2.
    for other in (3, 4, 5):
        c.cut(1, other)
    c.propose(1, b"x-from-term-of-S1")
    old_term = c[1].term
    assert c[2].log.term_or_zero(base + 1) == old_term and c[3].log.last_index() == base
    # (b) S1 crashes; S5 wins with votes from S3, S4 and appends its no-op at base+1, alone.
    c.crash(1)
    c.isolate(5)
    c.cut_links -= {(5, 3), (3, 5), (5, 4), (4, 5)}
    c.filter = lambda m: not (m.frm == 5 and m.type == MessageType.APPEND)  # its no-op stays on S5
    c.elect(5)
    c.filter = None
    assert c[5].log.term_or_zero(base + 1) == c[5].term
    c.isolate(5)
    # (c) S1 restarts and is elected again (S2, S3, S4); its no-op must not reach anyone, but the
    # old-term entry reaches S3: now on a majority (S1, S2, S3), and still not committable.
    c.restart(1)
    c.heal()
    c.isolate(5)
    noop_index = base + 2
    # The no-op reaches S2 only (2 of 5: not committable). S3 gets the first append carrying it,
    # rejects it (S3 lacks base+1) and so receives base+1 on its own; later ones are dropped.
    c.filter = lambda m: not (
        m.type == MessageType.APPEND
        and any(e.index == noop_index for e in m.entries)
        and m.to != 2
        and (m.to != 3 or c[3].log.last_index() >= base + 1)
    )
    c.elect(1)
    assert c[3].log.term_or_zero(base + 1) == old_term  # on a majority now
    assert c[1].log.committed < base + 1, "Figure 8: committed an earlier term's entry by counting"
    # (d) S1 crashes again; S5 (its entry at base+1 has a later term) is elected and overwrites.
    c.crash(1)
    c.filter = None
    c.heal()
    c.tick()  # S5, a stale leader of its term, hears of the newer term and steps down
    assert c[5].role is Role.FOLLOWER
    c.elect(5)
    c.propose(5, b"y")
    for i in (2, 3, 4, 5):
        assert c.nodes[i].app == [b"y"], f"node {i} applied {c.nodes[i].app}"
        assert c[i].log.term_or_zero(base + 1) != old_term  # the uncommitted entry was overwritten


def test_stale_leader_returning_from_a_partition_steps_down_and_loses_its_uncommitted_entries():
    c = Cluster(5)
    c.elect(1)
    c.propose(1, b"committed")
    c.isolate(1)
    stale_index = c.propose(1, b"never-committed")  # only on the isolated old leader
    c.tick(2 * ELECTION)  # the other four elect a new leader (S1 steps down by CheckQuorum too)
    new_leader = c.leader()
    assert new_leader not in (0, 1)
    c.propose(new_leader, b"after")
    terms_before = {i: c[i].term for i in (2, 3, 4, 5)}
    c.heal()
    c.tick(3)
    # The returning node neither deposed the new leader nor raised anyone's term (pre-vote)...
    assert c.leader() == new_leader and {i: c[i].term for i in (2, 3, 4, 5)} == terms_before
    # ...and took the new leader's log, overwriting its own uncommitted entry.
    assert c[1].role is Role.FOLLOWER and c[1].leader == new_leader
    assert c.nodes[1].app == [b"committed", b"after"]
    assert c[1].log.term_or_zero(stale_index) == terms_before[2]


def test_isolated_follower_does_not_disrupt_the_cluster_when_it_returns():
    c = Cluster(3)
    c.elect(1)
    c.isolate(3)
    c.tick(5 * ELECTION)  # node 3 keeps pre-voting, never wins, never bumps its term
    assert c[3].term == c[1].term and c[3].role is Role.PRE_CANDIDATE
    c.heal()
    c.tick(2)
    assert c.leader() == 1 and c[3].leader == 1


def test_vote_and_term_survive_a_restart_so_a_node_never_votes_twice_in_a_term():
    storage = MemoryStorage()
    node = RaftNode(Config(id=1, peers=(1, 2, 3), pre_vote=False), storage)
    vote_for_2 = Message(MessageType.VOTE, to=1, frm=2, term=5, index=3, log_term=1)
    node.step(vote_for_2)
    rd = node.ready()
    storage.append(rd.entries)
    storage.set_hard_state(rd.hard_state)
    assert rd.hard_state == HardState(term=5, vote=2, commit=3)
    assert not rd.messages[0].reject
    # Crash after persisting; restart from storage alone.
    restarted = RaftNode(Config(id=1, peers=()), storage)
    assert (restarted.term, restarted.vote) == (5, 2)
    restarted.step(Message(MessageType.VOTE, to=1, frm=3, term=5, index=3, log_term=1))
    answer = restarted.ready().messages[0]
    assert answer.type == MessageType.VOTE_RESPONSE and answer.reject, "voted twice in term 5"


def test_restart_restores_membership_and_redelivers_committed_entries_after_applied():
    c = Cluster(3)
    c.elect(1)
    for i in range(5):
        c.propose(1, f"v{i}".encode())
    storage = c.nodes[2].storage
    hard_state = storage.hard_state
    node = RaftNode(Config(id=2, peers=(), applied=3), storage)
    assert node.voters == {1, 2, 3} and node.term == hard_state.term and node.log.committed == hard_state.commit
    rd = node.ready()
    assert [e.index for e in rd.committed_entries] == list(range(4, hard_state.commit + 1))


def test_four_node_cluster_with_two_down_elects_nobody_and_commits_nothing():
    c = Cluster(4)
    c.elect(1)
    committed = c[1].log.committed
    c.crash(3)
    c.crash(4)
    c.propose(1, b"needs-three-of-four")
    c.tick(3 * ELECTION)
    assert all(c[i].log.committed == committed for i in (1, 2))
    assert all(c.nodes[i].app == [] for i in (1, 2))
    assert c.leader() == 0  # CheckQuorum: two of four is not a majority
    with pytest.raises(errors.NotLeader):
        c[1].propose(b"x")


def test_check_quorum_leader_steps_down_within_one_election_timeout_and_serves_no_read_after():
    c = Cluster(3)
    c.elect(1)
    c.propose(1, b"x")
    c.isolate(1)
    c[1].read_index(b"before-step-down")  # cannot be confirmed: nobody answers the heartbeat
    for _ in range(ELECTION - 1):
        c.tick()
        assert c[1].role is Role.LEADER
    c.tick()
    assert c[1].role is Role.FOLLOWER and c[1].stats["check_quorum_step_down"] == 1
    with pytest.raises(errors.NotLeader):
        c[1].read_index(b"after-step-down")
    c.heal()
    c.tick(3 * ELECTION)
    assert [r.request_ctx for r in c.nodes[1].read_states] == []  # the pending read was never served


def test_node_heard_from_leader_recently_ignores_vote_requests_but_not_transfer_votes():
    c = Cluster(3)
    c.elect(1)
    term = c[2].term
    c[2].step(Message(MessageType.VOTE, to=2, frm=3, term=term + 1, index=100, log_term=term))
    assert c[2].term == term and c[2].stats["ignored_vote_in_lease"] == 1
    c[2].step(Message(MessageType.VOTE, to=2, frm=3, term=term + 1, index=100, log_term=term, context=b"transfer"))
    assert c[2].term == term + 1 and c[2].vote == 3


def _follower_with_a_longer_log(pre_vote: bool = False) -> RaftNode:
    """Node 1 of (1, 2, 3), follower in term 1 with its founding entries 1..3 applied, no leader known."""
    storage = MemoryStorage()
    node = RaftNode(Config(id=1, peers=(1, 2, 3), pre_vote=pre_vote, check_quorum=False), storage)
    node.step(Message(MessageType.APPEND, to=1, frm=2, term=1, index=3, log_term=1, commit=3))
    rd = node.ready()
    storage.append(rd.entries)
    storage.set_hard_state(rd.hard_state)
    node.advance(rd)  # the founding members applied
    node._leader = 0  # the leader of term 1 is gone
    return node


def test_a_newer_term_heard_from_no_leader_does_not_restart_the_election_clock():
    # Figure 2: only hearing from a current leader or granting a vote restarts the timer. A candidate
    # whose log is behind (it can never win) asks again and again in ever newer terms; if each refused
    # request restarted our clock, we -- who could win -- would never time out (simulator seeds 7726,
    # 10059 and 14631 found no leader elected after healing).
    node = _follower_with_a_longer_log()
    timeout = node._randomized_election_timeout
    for _ in range(timeout - 2):
        node.tick()
    elapsed = node._election_elapsed
    node.step(Message(MessageType.VOTE, to=1, frm=3, term=7, index=0, log_term=0))  # behind: refused
    assert node.term == 7 and node.role is Role.FOLLOWER and node.vote == 0
    assert node._election_elapsed == elapsed and node._randomized_election_timeout == timeout
    node.step(Message(MessageType.VOTE_RESPONSE, to=1, frm=2, term=8, reject=True))  # a response, newer term
    assert node.term == 8 and node._election_elapsed == elapsed
    node.tick()
    node.tick()
    assert node.role is Role.CANDIDATE and node.term == 9  # campaigned on its own clock


def test_granting_a_vote_or_hearing_the_leader_of_a_newer_term_still_restarts_the_clock():
    node = _follower_with_a_longer_log()
    for _ in range(5):
        node.tick()
    node.step(Message(MessageType.VOTE, to=1, frm=3, term=7, index=3, log_term=1))  # as up to date: granted
    assert node.vote == 3 and node._election_elapsed == 0
    for _ in range(5):
        node.tick()
    node.step(Message(MessageType.HEARTBEAT, to=1, frm=2, term=9, commit=3))
    assert node.leader == 2 and node._election_elapsed == 0


def test_a_leader_deposed_by_a_newer_term_starts_a_fresh_election_clock():
    c = Cluster(3, pre_vote=False)
    c.elect(1)
    c.tick(3 * ELECTION)  # a leader's clock counts on while it leads
    c[1].step(Message(MessageType.APPEND_RESPONSE, to=1, frm=2, term=c[1].term + 1, reject=True))
    assert c[1].role is Role.FOLLOWER and c[1]._election_elapsed == 0  # it does not campaign at once
