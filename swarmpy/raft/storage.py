"""The storage the core reads its stable log from, and an in-memory implementation.

The core reads; the driver writes (see the contract in swarmpy/raft/__init__.py). A durable
implementation lives in `wal.py` and offers the same read methods.

Index conventions (as etcd's): the log holds entries (first_index() .. last_index()]. The entry at
first_index()-1 is represented by the snapshot (its index and term are snapshot.meta.index/term), so
`term(first_index() - 1)` is always answerable. After a fresh start with no snapshot the log is empty,
first_index() == 1 and last_index() == 0.
"""

from __future__ import annotations

from typing import Protocol

from .errors import Compacted, SnapshotOutOfDate, Unavailable
from .messages import ConfState, Entry, HardState, Snapshot, SnapshotMeta


class Storage(Protocol):
    def initial_state(self) -> tuple[HardState, ConfState]:
        """The persisted hard state and the membership as of the snapshot plus applied conf changes."""
        ...

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries [lo, hi). At least one entry is returned even if it exceeds max_bytes.

        Raises errors.Compacted if lo <= snapshot index, errors.Unavailable if hi > last_index()+1.
        """
        ...

    def term(self, index: int) -> int:
        """Term of the entry at index; valid for first_index()-1 .. last_index(). Raises Compacted/Unavailable."""
        ...

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...

    def snapshot(self) -> Snapshot:
        """The most recent snapshot (an empty Snapshot if none)."""
        ...


ENTRY_OVERHEAD_BYTES = 16  # term, index and type, roughly as they travel; counts toward max_size_per_msg


def entry_size(entry: Entry) -> int:
    """The size an entry counts for when batching against a byte limit."""
    return len(entry.data) + ENTRY_OVERHEAD_BYTES


def limit_size(entries: list[Entry], max_bytes: int | None) -> list[Entry]:
    """The longest prefix of `entries` within `max_bytes`, but never fewer than one entry."""
    if max_bytes is None or not entries:
        return entries
    total = entry_size(entries[0])
    for n in range(1, len(entries)):
        total += entry_size(entries[n])
        if total > max_bytes:
            return entries[:n]
    return entries


class MemoryStorage:
    """Storage kept in memory: the simulator's "disk", and the model the durable WAL must behave like.

    Internally `_ents[0]` is a placeholder standing for the entry at the snapshot's index (its term is
    the snapshot's term), so `term(first_index() - 1)` is always answerable and offsets are simple.

    Reads (`Storage`) are what the core uses; the write methods are the driver's, called in the
    order the contract in swarmpy/raft/__init__.py gives: apply_snapshot, append, set_hard_state.
    `create_snapshot` and `compact` are the driver's log-size management: snapshot the applied state,
    then drop entries up to (at most) the snapshot's index.
    """

    def __init__(self) -> None:
        self._hard_state = HardState()
        self._snapshot = Snapshot()
        self._ents: list[Entry] = [Entry(term=0, index=0)]

    # -- reads (the Storage protocol) ---------------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        # Membership changes applied after the snapshot are in the log; the core replays them.
        return self._hard_state, self._snapshot.meta.conf

    def first_index(self) -> int:
        return self._ents[0].index + 1

    def last_index(self) -> int:
        return self._ents[0].index + len(self._ents) - 1

    def term(self, index: int) -> int:
        offset = self._ents[0].index
        if index < offset:
            raise Compacted(f"index {index} is compacted (log starts after {offset})")
        if index - offset >= len(self._ents):
            raise Unavailable(f"index {index} is beyond the last index {self.last_index()}")
        return self._ents[index - offset].term

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        offset = self._ents[0].index
        if lo <= offset:
            raise Compacted(f"index {lo} is compacted (log starts after {offset})")
        if hi > self.last_index() + 1:
            raise Unavailable(f"entries up to {hi - 1} requested, the last index is {self.last_index()}")
        if lo >= hi:
            return []
        return limit_size(self._ents[lo - offset : hi - offset], max_bytes)

    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def hard_state(self) -> HardState:
        return self._hard_state

    # -- writes (the driver's) ----------------------------------------------------------------

    def set_hard_state(self, hard_state: HardState) -> None:
        self._hard_state = hard_state

    def save(
        self, entries: list[Entry] | tuple[Entry, ...] = (), hard_state: HardState | None = None,
        snapshot: Snapshot | None = None,
    ) -> None:
        """One Ready's writes, in the contract's order (DiskStorage.save's signature, for DriverCore)."""
        if snapshot is not None and not snapshot.empty:
            self.apply_snapshot(snapshot)
        if entries:
            self.append(entries)
        if hard_state is not None:
            self.set_hard_state(hard_state)

    def defers(self, entries: object, hard_state: object, snapshot: object) -> bool:
        return False  # nothing here is durable anyway; every save is "written"

    def append(self, entries: list[Entry] | tuple[Entry, ...]) -> None:
        """Append `entries`, first truncating any existing suffix they overwrite.

        Entries at or before the snapshot are already covered by it and skipped. A gap between the
        last stored entry and the first new one is a driver bug and raises ValueError.
        """
        if not entries:
            return
        entries = list(entries)
        first = self.first_index()
        if entries[-1].index < first:
            return
        if entries[0].index < first:
            entries = entries[first - entries[0].index :]
        position = entries[0].index - self._ents[0].index
        if position > len(self._ents):
            raise ValueError(
                f"append would leave a gap: last stored index {self.last_index()}, first new index {entries[0].index}"
            )
        del self._ents[position:]
        self._ents.extend(entries)

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """Replace the log with `snapshot` (a follower catching up). An older snapshot is refused."""
        if snapshot.meta.index <= self._snapshot.meta.index:
            raise SnapshotOutOfDate(
                f"snapshot at index {snapshot.meta.index} is not newer than the stored one at {self._snapshot.meta.index}"
            )
        self._snapshot = snapshot
        self._ents = [Entry(term=snapshot.meta.term, index=snapshot.meta.index)]

    def create_snapshot(self, index: int, conf: ConfState, data: bytes) -> Snapshot:
        """Record the application's state `data` as of applied index `index` (with membership `conf`)."""
        if index <= self._snapshot.meta.index:
            raise SnapshotOutOfDate(
                f"snapshot at index {index} is not newer than the stored one at {self._snapshot.meta.index}"
            )
        if index > self.last_index():
            raise Unavailable(f"cannot snapshot at {index}: the last index is {self.last_index()}")
        meta = SnapshotMeta(index=index, term=self.term(index), conf=conf)
        self._snapshot = Snapshot(meta=meta, data=data)
        return self._snapshot

    def compact(self, index: int) -> None:
        """Drop entries up to and including `index`, which must not be past the snapshot.

        Compacting past the snapshot would leave a follower that needs those entries with nothing to
        catch up from (the snapshot it would be sent is older than the log's start).
        """
        offset = self._ents[0].index
        if index <= offset:
            raise Compacted(f"index {index} is already compacted (log starts after {offset})")
        if index > self._snapshot.meta.index:
            raise ValueError(f"cannot compact to {index}: past the snapshot at {self._snapshot.meta.index}")
        kept = self._ents[index - offset :]
        self._ents = [Entry(term=kept[0].term, index=index)] + kept[1:]
