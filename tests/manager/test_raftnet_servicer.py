"""MembersSenderCheck: a certificate's node id may speak only for its own raft id; unknown pairs pass."""

from __future__ import annotations

from swarmpy.api import objects_pb2
from swarmpy.manager.raftnet import MembersSenderCheck, random_raft_id


def check(*members: tuple[int, str]) -> MembersSenderCheck:
    recorded = [objects_pb2.RaftMember(raft_id=r, node_id=n, addr="127.0.0.1:1") for r, n in members]
    return MembersSenderCheck(lambda: recorded)


def test_a_member_may_send_as_itself():
    assert check((1, "a"), (2, "b"))("a", 1)


def test_a_member_may_not_send_as_another_raft_id():
    assert not check((1, "a"), (2, "b"))("a", 2)  # a's certificate, b's raft id
    assert not check((1, "a"))("a", 9)  # a is registered as 1, claims an unknown id


def test_a_raft_id_belonging_to_another_node_is_refused_even_for_unknown_callers():
    assert not check((1, "a"))("intruder", 1)


def test_pairs_nobody_recorded_yet_pass():
    # A manager that just joined knows no members until the leader's snapshot arrives.
    assert check()("a", 1)
    assert check((1, "a"))("c", 3)


def test_random_raft_ids_are_non_zero_and_fit_in_63_bits():
    ids = {random_raft_id() for _ in range(100)}
    assert len(ids) == 100 and all(0 < i < 2**63 for i in ids)
