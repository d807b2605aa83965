"""The vocabulary of the Raft core: log entries, messages, persistent state.

Plain frozen dataclasses, no I/O and no protobuf: the core is independent of how messages travel.
The gRPC transport converts them to and from `protos/swarmpy/raft.proto`; the in-memory transport and
the simulator pass them as they are.

A node id is a positive 64-bit integer chosen at random when a member is created and never reused;
it is independent of the member's network address (which lives in the ConfChange context).
`NONE` (0) means "no node".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

NONE = 0


class EntryType(enum.IntEnum):
    NORMAL = 0  # opaque application data (store actions), or empty: a new leader's no-op
    CONF_CHANGE = 1  # data is an encoded ConfChange


class MessageType(enum.IntEnum):
    APPEND = 1  # leader -> follower: entries after (log_term, index), and leader commit
    APPEND_RESPONSE = 2  # follower -> leader: index = last matching index, or reject + reject_hint
    VOTE = 3  # candidate -> all: (log_term, index) of its last entry
    VOTE_RESPONSE = 4
    PRE_VOTE = 5  # term is the term the candidate *would* use; receiver's term does not change
    PRE_VOTE_RESPONSE = 6
    HEARTBEAT = 7  # leader -> follower: commit (capped at the follower's match), context for ReadIndex
    HEARTBEAT_RESPONSE = 8
    SNAPSHOT = 9  # leader -> follower: install `snapshot`
    TIMEOUT_NOW = 10  # leader -> transfer target: start an election at once, ignoring lease/pre-vote
    SNAPSHOT_STATUS = 11  # local only (driver -> core): the snapshot to `frm` was sent (reject=failure)
    UNREACHABLE = 12  # local only (driver -> core): the transport could not reach `frm`


class ConfChangeType(enum.IntEnum):
    ADD_NODE = 0
    REMOVE_NODE = 1
    UPDATE_NODE = 2  # same id, new context (e.g. a changed address)
    # A non-voting member: it receives the log and snapshots but never votes, campaigns or counts toward
    # any quorum. ADD_NODE of a learner promotes it (as etcd's ConfChangeAddNode on a learner).
    ADD_LEARNER = 3


@dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int
    type: EntryType = EntryType.NORMAL
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class ConfChange:
    type: ConfChangeType
    node_id: int
    context: bytes = b""  # opaque to the core; swarmpy puts the member's address and node ID here

    # Encoding (the data of a CONF_CHANGE entry): version byte 1, type byte, node id as 8 bytes
    # big-endian, then the context as it is. Fixed-size header, so decoding cannot be ambiguous.
    def encode(self) -> bytes:
        return bytes((_CONF_CHANGE_VERSION, int(self.type))) + self.node_id.to_bytes(8, "big") + self.context

    @classmethod
    def decode(cls, data: bytes) -> ConfChange:
        """Inverse of encode(); raises ValueError on anything encode() could not have produced."""
        if len(data) < 10 or data[0] != _CONF_CHANGE_VERSION:
            raise ValueError("not an encoded ConfChange (too short or unknown version)")
        change_type = ConfChangeType(data[1])  # ValueError for an unknown type
        node_id = int.from_bytes(data[2:10], "big")
        if node_id == NONE:
            raise ValueError("encoded ConfChange names node 0")
        return cls(change_type, node_id, bytes(data[10:]))


_CONF_CHANGE_VERSION = 1


def encode_conf_change(change: ConfChange) -> bytes:
    return change.encode()


def decode_conf_change(data: bytes) -> ConfChange:
    return ConfChange.decode(data)


@dataclass(frozen=True, slots=True)
class ConfState:
    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()  # non-voting members, disjoint from voters


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    index: int = 0
    term: int = 0
    conf: ConfState = field(default_factory=ConfState)


@dataclass(frozen=True, slots=True)
class Snapshot:
    meta: SnapshotMeta = field(default_factory=SnapshotMeta)
    data: bytes = b""  # the application's state at meta.index, opaque to the core

    @property
    def empty(self) -> bool:
        return self.meta.index == 0


@dataclass(frozen=True, slots=True)
class HardState:
    term: int = 0
    vote: int = NONE
    commit: int = 0


@dataclass(frozen=True, slots=True)
class Message:
    type: MessageType
    to: int
    frm: int
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0
    snapshot: Snapshot | None = None
    context: bytes = b""  # ReadIndex request id on HEARTBEAT(_RESPONSE); b"transfer" on VOTE after TIMEOUT_NOW


@dataclass(frozen=True, slots=True)
class ReadState:
    """A linearizable read may be served once the applied index reaches `index`."""

    index: int
    request_ctx: bytes


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state a driver reacts to (start or stop leader-only loops); never persisted."""

    leader: int = NONE
    role: Role = Role.FOLLOWER


@dataclass(slots=True)
class Ready:
    """What the driver must do, in this order (see swarmpy/raft/__init__.py for the contract)."""

    soft_state: SoftState | None = None  # set when leader or role changed since the last Ready
    hard_state: HardState | None = None  # set when term, vote or commit changed: persist
    entries: list[Entry] = field(default_factory=list)  # persist (append; may overwrite a suffix)
    snapshot: Snapshot | None = None  # persist, then restore the application from it
    messages: list[Message] = field(default_factory=list)  # send only after the above is durable
    committed_entries: list[Entry] = field(default_factory=list)  # apply in order
    read_states: list[ReadState] = field(default_factory=list)

    def contains_updates(self) -> bool:
        return bool(
            self.soft_state
            or self.hard_state
            or self.entries
            or self.snapshot
            or self.messages
            or self.committed_entries
            or self.read_states
        )
