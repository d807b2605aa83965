"""The pieces under the core: majority arithmetic, MemoryStorage, the ConfChange encoding."""

from __future__ import annotations

import pytest

from swarmpy.raft import errors
from swarmpy.raft.messages import ConfChange, ConfChangeType, ConfState, Entry
from swarmpy.raft.quorum import VoteResult, committed_index, has_quorum, quorum, vote_result
from swarmpy.raft.storage import MemoryStorage


@pytest.mark.parametrize("voters,need", [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (7, 4)])
def test_quorum_is_a_strict_majority(voters, need):
    assert quorum(voters) == need


def test_committed_index_is_the_highest_index_on_a_majority():
    assert committed_index({1, 2, 3}, {1: 5, 2: 3, 3: 1}) == 3
    assert committed_index({1, 2, 3, 4}, {1: 5, 2: 5}) == 0  # two of four is not a majority
    assert committed_index({1, 2, 3, 4}, {1: 5, 2: 5, 3: 4}) == 4


def test_vote_result_counts_only_voters():
    assert vote_result({1, 2, 3}, {1: True, 9: True}) is VoteResult.PENDING
    assert vote_result({1, 2, 3}, {1: True, 2: True}) is VoteResult.WON
    assert vote_result({1, 2, 3}, {1: True, 2: False, 3: False}) is VoteResult.LOST
    assert has_quorum({1, 2, 3, 4}, {1, 2, 9}) is False


def test_memory_storage_append_truncates_a_conflicting_suffix():
    s = MemoryStorage()
    s.append([Entry(1, 1), Entry(1, 2), Entry(1, 3)])
    s.append([Entry(2, 2, data=b"new")])
    assert s.last_index() == 2 and s.term(2) == 2
    with pytest.raises(ValueError, match="gap"):
        s.append([Entry(2, 5)])


def test_memory_storage_snapshot_and_compaction():
    s = MemoryStorage()
    s.append([Entry(1, i) for i in range(1, 11)])
    with pytest.raises(ValueError, match="past the snapshot"):
        s.compact(5)
    s.create_snapshot(7, ConfState((1, 2, 3)), b"state")
    s.compact(5)
    assert s.first_index() == 6 and s.term(5) == 1
    with pytest.raises(errors.Compacted):
        s.entries(5, 8)
    with pytest.raises(errors.Unavailable):
        s.entries(6, 12)
    assert [e.index for e in s.entries(6, 11, max_bytes=1)] == [6]  # at least one entry
    with pytest.raises(errors.SnapshotOutOfDate):
        s.create_snapshot(6, ConfState((1,)), b"")


def test_conf_change_encoding_round_trips_and_rejects_garbage():
    change = ConfChange(ConfChangeType.UPDATE_NODE, 2**64 - 1, b"10.0.0.1:4242")
    assert ConfChange.decode(change.encode()) == change
    for garbage in (b"", b"\x02" + bytes(9), b"\x01\x09" + bytes(8), b"\x01\x00" + bytes(8)):
        with pytest.raises(ValueError):
            ConfChange.decode(garbage)
