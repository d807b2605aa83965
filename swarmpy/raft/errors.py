"""Typed Raft errors: the class says whose fault it was."""

from __future__ import annotations


class RaftError(Exception):
    """Base of every error the Raft package raises on purpose."""


class ProposalTooLarge(RaftError):
    """The caller proposed more bytes than one message may carry."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"proposal of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class NotLeader(RaftError):
    """This node cannot take the request; `leader` is the current leader's id if known (0 if not)."""

    def __init__(self, leader: int = 0) -> None:
        hint = f"; the leader is node {leader:x}" if leader else "; no leader is known"
        super().__init__(f"this node is not the Raft leader{hint}")
        self.leader = leader


class LeadershipLost(RaftError):
    """A proposal was accepted by this node as leader but leadership was lost before it was applied.

    The proposal may or may not commit later; the caller must not assume either.
    """

    def __init__(self, detail: str = "") -> None:
        super().__init__("leadership was lost before the proposal was applied" + (f": {detail}" if detail else ""))


class ProposalDropped(RaftError):
    """The core refused the proposal (e.g. a leadership transfer is in progress, or a conf change is pending)."""


class ConfChangeRefused(RaftError):
    """A membership change would break a safety rule (e.g. removing a member would lose quorum)."""


class Compacted(RaftError):
    """The requested log index is at or before the last snapshot."""


class Unavailable(RaftError):
    """The requested log index is beyond the last index in storage."""


class StorageCorrupted(RaftError):
    """Durable state is damaged somewhere other than a torn final record; the node must not start."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(f"{path}: corrupted at byte offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


class MalformedMessage(RaftError):
    """A peer sent a message the core cannot interpret; it is dropped and counted, never applied."""


class SnapshotOutOfDate(RaftError):
    """A snapshot was offered that is not newer than the one already stored."""


class TransferRefused(RaftError):
    """A leadership transfer cannot start (e.g. the target is not a voter)."""
