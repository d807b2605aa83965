"""Majority arithmetic, kept apart so it can be read (and tested) on its own.

Every decision that needs "enough servers agree" goes through here: committing (the highest index a
majority of voters have stored), winning an election, and CheckQuorum (did a majority talk to the
leader lately). A configuration is a set of voter ids; swarmpy changes it one server at a time, so
there is never a joint configuration to reason about.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping


class VoteResult(enum.Enum):
    PENDING = "pending"  # neither a majority of grants nor of rejections yet
    WON = "won"
    LOST = "lost"


def quorum(voter_count: int) -> int:
    """Servers needed for a majority of `voter_count` voters (1 of 1, 2 of 3, 3 of 4, 3 of 5)."""
    return voter_count // 2 + 1


def committed_index(voters: Collection[int], match: Mapping[int, int]) -> int:
    """The highest index stored by a majority of `voters` (voters absent from `match` count as 0).

    Sorting the match indexes in descending order, the quorum-th one is stored on at least a quorum
    of voters. An empty configuration commits nothing.
    """
    if not voters:
        return 0
    stored = sorted((match.get(v, 0) for v in voters), reverse=True)
    return stored[quorum(len(voters)) - 1]


def vote_result(voters: Collection[int], votes: Mapping[int, bool]) -> VoteResult:
    """Tally of granted (True) and rejected (False) votes; votes from non-voters do not count."""
    if not voters:
        return VoteResult.LOST
    need = quorum(len(voters))
    granted = sum(1 for v in voters if votes.get(v) is True)
    rejected = sum(1 for v in voters if votes.get(v) is False)
    if granted >= need:
        return VoteResult.WON
    missing = len(voters) - granted - rejected
    if granted + missing >= need:
        return VoteResult.PENDING
    return VoteResult.LOST


def has_quorum(voters: Collection[int], agreeing: Iterable[int]) -> bool:
    """Whether the voters among `agreeing` form a majority of `voters`."""
    if not voters:
        return False
    voter_set = set(voters)
    return len(voter_set.intersection(agreeing)) >= quorum(len(voter_set))
