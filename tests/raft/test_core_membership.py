"""Membership changes one server at a time, and leadership transfer."""

from __future__ import annotations

import pytest

from swarmpy.raft import errors
from swarmpy.raft.messages import ConfChange, ConfChangeType, MessageType, Role

from .harness import Cluster

ELECTION = 10


def add(node_id: int) -> ConfChange:
    return ConfChange(ConfChangeType.ADD_NODE, node_id, b"addr")


def learner(node_id: int) -> ConfChange:
    return ConfChange(ConfChangeType.ADD_LEARNER, node_id, b"addr")


def remove(node_id: int) -> ConfChange:
    return ConfChange(ConfChangeType.REMOVE_NODE, node_id)


def test_membership_change_commits_while_a_member_is_down_and_the_new_node_catches_up():
    c = Cluster(3)
    c.elect(1)
    c.propose(1, b"before")
    c.crash(3)
    c.add_node(4)
    c[1].propose_conf_change(learner(4))  # a new member joins as a learner ...
    c.stabilize()
    c[1].propose_conf_change(add(4))  # ... and is promoted once caught up
    c.stabilize()
    assert c[1].voters == {1, 2, 3, 4} and c[2].voters == {1, 2, 3, 4}
    assert c[4].voters == {1, 2, 3, 4} and c.nodes[4].app == [b"before"]
    c.propose(1, b"with-four")  # 1, 2 and 4 of four: a majority with 3 still down
    assert c.nodes[4].app == [b"before", b"with-four"]
    c.restart(3)
    c.tick(2)
    assert c[3].voters == {1, 2, 3, 4} and c.nodes[3].app == [b"before", b"with-four"]


def test_second_membership_change_is_refused_until_the_first_is_applied():
    c = Cluster(3)
    c.elect(1)
    c.isolate(1)  # the first change cannot commit
    c[1].propose_conf_change(learner(4))
    with pytest.raises(errors.ProposalDropped, match="one at a time"):
        c[1].propose_conf_change(learner(5))


def test_remove_is_refused_when_the_remaining_reachable_members_are_not_a_quorum():
    c = Cluster(3)
    c.elect(1)
    c.crash(3)
    c.tick(ELECTION)  # node 3 has not been heard from for an election timeout
    assert c[1].role is Role.LEADER
    with pytest.raises(errors.ConfChangeRefused) as exc:
        c[1].propose_conf_change(remove(2))
    text = str(exc.value)
    assert "would leave 1 reachable of 2 members" in text and "quorum of 2" in text and "3" in text
    # Removing the unreachable node is fine: 1 and 2 remain, both reachable.
    c[1].propose_conf_change(remove(3))
    c.stabilize()
    assert c[1].voters == {1, 2}


def test_removed_leader_steps_down_and_the_rest_elect_a_new_one():
    c = Cluster(3)
    c.elect(1)
    c[1].propose_conf_change(remove(1))
    c.stabilize()
    assert c[1].role is Role.FOLLOWER and c[1].voters == {2, 3}
    c.tick(3 * ELECTION)
    assert c.leader() in (2, 3)
    assert c[1].role is Role.FOLLOWER  # not in its own configuration: never campaigns


def test_messages_from_a_removed_node_are_ignored_and_counted():
    c = Cluster(3)
    c.elect(1)
    c.cut(1, 3)  # node 3 never hears of its removal
    c[1].propose_conf_change(remove(3))
    c.stabilize()
    assert c[2].voters == {1, 2} and c[3].voters == {1, 2, 3}
    before = c[2].stats.get("dropped_non_member", 0)
    c.tick(4 * ELECTION)  # node 3 never applied its removal (cut off) and keeps campaigning
    assert c[2].stats.get("dropped_non_member", 0) > before
    assert c.leader() == 1 and c[1].term == c[2].term


def test_leadership_transfer_to_a_lagging_follower_catches_it_up_first():
    c = Cluster(3)
    c.elect(1)
    c.cut(1, 3)
    for i in range(5):
        c.propose(1, f"v{i}".encode())
    assert c[3].log.last_index() < c[1].log.last_index()
    c.heal()
    c[1].transfer_leadership(3)
    with pytest.raises(errors.ProposalDropped, match="transfer"):
        c[1].propose(b"during-transfer")
    c.stabilize()
    assert c.leader() == 3 and c[1].role is Role.FOLLOWER
    assert c.nodes[3].app[:5] == [f"v{i}".encode() for i in range(5)]
    c.propose(3, b"new-leader")
    assert c.nodes[1].app[-1] == b"new-leader"


def test_leadership_transfer_is_abandoned_after_an_election_timeout():
    c = Cluster(3)
    c.elect(1)
    c.isolate(2)
    c[1].transfer_leadership(2)
    c.tick(ELECTION)
    assert c[1].role is Role.LEADER and c[1].lead_transferee == 0
    assert c[1].stats["transfer_aborted"] == 1
    c.propose(1, b"accepted-again")


def test_transfer_timeout_now_bypasses_the_followers_lease():
    c = Cluster(3)
    c.elect(1)
    c[1].transfer_leadership(2)
    c.stabilize()
    assert c.leader() == 2
    assert any(m.type == MessageType.TIMEOUT_NOW for m in c.delivered)


def test_update_node_keeps_membership_and_is_delivered_to_the_application():
    c = Cluster(3)
    c.elect(1)
    index = c[1].propose_conf_change(ConfChange(ConfChangeType.UPDATE_NODE, 2, b"new-address"))
    c.stabilize()
    assert c[1].voters == {1, 2, 3}
    entry = c[3].log.entries(index, index + 1)[0]
    assert ConfChange.decode(entry.data).context == b"new-address"


def test_add_of_an_existing_member_and_remove_of_a_stranger_are_refused():
    c = Cluster(3)
    c.elect(1)
    with pytest.raises(errors.ConfChangeRefused, match="already a member"):
        c[1].propose_conf_change(add(2))
    with pytest.raises(errors.ConfChangeRefused, match="not a member"):
        c[1].propose_conf_change(remove(9))


def test_add_node_of_a_node_that_is_not_a_learner_is_refused():
    # A voter must hold the log the moment it counts toward a majority: ADD_NODE only promotes a learner.
    c = Cluster(3)
    c.elect(1)
    last = c[1].log.last_index()
    with pytest.raises(errors.ConfChangeRefused, match="not a learner"):
        c[1].propose_conf_change(add(4))
    assert c[1].log.last_index() == last and c[1].voters == {1, 2, 3}
    c[1].propose_conf_change(learner(4))  # the refusal left no change pending
