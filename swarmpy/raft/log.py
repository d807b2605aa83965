"""The Raft log as the core sees it: what storage holds, plus what the driver has not persisted yet.

    storage (stable)                      unstable (handed out in Ready, not yet advanced)
    [snapshot] first_index .. last_index  [snapshot?] offset .. offset+len(entries)-1

The unstable part holds entries appended since the last `advance()` (a leader's proposals, a
follower's accepted appends) and possibly a snapshot received from the leader. When both exist, the
unstable entries follow the unstable snapshot. Entries in the unstable part win over storage: an
append that conflicts with a suffix replaces it here first and in storage when the driver persists it.

`committed` is the highest index known to be committed; `applied` the highest the application has
applied (what the driver acknowledged in `advance`). Invariant: applied <= committed <= last_index().
A node that crashes loses the unstable part, which is fine: nothing in it was promised to anyone,
because the contract sends no message before the Ready that produced it is persisted.
"""

from __future__ import annotations

from .errors import Compacted, Unavailable
from .messages import Entry, Snapshot
from .storage import Storage, limit_size


class Unstable:
    __slots__ = ("snapshot", "entries", "offset")

    def __init__(self, offset: int) -> None:
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        self.offset = offset  # index of entries[0] (or where it would be)

    def maybe_first_index(self) -> int | None:
        return self.snapshot.meta.index + 1 if self.snapshot is not None else None

    def maybe_last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.meta.index
        return None

    def maybe_term(self, index: int) -> int | None:
        if index < self.offset:
            if self.snapshot is not None and self.snapshot.meta.index == index:
                return self.snapshot.meta.term
            return None
        last = self.maybe_last_index()
        if last is None or index > last:
            return None
        return self.entries[index - self.offset].term

    def stable_to(self, index: int, term: int) -> None:
        # Only if the entry is still the one that was persisted: a conflicting append may have
        # replaced it between ready() and advance().
        known = self.maybe_term(index)
        if known == term and index >= self.offset:
            del self.entries[: index + 1 - self.offset]
            self.offset = index + 1

    def stable_snapshot_to(self, index: int) -> None:
        if self.snapshot is not None and self.snapshot.meta.index == index:
            self.snapshot = None

    def restore(self, snapshot: Snapshot) -> None:
        self.offset = snapshot.meta.index + 1
        self.entries = []
        self.snapshot = snapshot

    def truncate_and_append(self, entries: list[Entry]) -> None:
        after = entries[0].index
        if after == self.offset + len(self.entries):
            self.entries.extend(entries)
        elif after <= self.offset:
            # Replaces everything unstable (and, once persisted, a suffix of storage).
            self.offset = after
            self.entries = list(entries)
        else:
            del self.entries[after - self.offset :]
            self.entries.extend(entries)


class RaftLog:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.unstable = Unstable(storage.last_index() + 1)
        first = storage.first_index()
        # Everything up to the snapshot is committed and applied by definition.
        self.committed = first - 1
        self.applied = first - 1

    def __repr__(self) -> str:
        return (
            f"RaftLog(committed={self.committed}, applied={self.applied}, "
            f"unstable.offset={self.unstable.offset}, unstable.len={len(self.unstable.entries)})"
        )

    # -- bounds and terms -------------------------------------------------------------------

    def first_index(self) -> int:
        first = self.unstable.maybe_first_index()
        return first if first is not None else self.storage.first_index()

    def last_index(self) -> int:
        last = self.unstable.maybe_last_index()
        return last if last is not None else self.storage.last_index()

    def term(self, index: int) -> int:
        """Term of the entry at `index`. Raises Compacted or Unavailable outside the log."""
        dummy = self.first_index() - 1
        if index < dummy:
            raise Compacted(f"index {index} is compacted (log starts after {dummy})")
        if index > self.last_index():
            raise Unavailable(f"index {index} is beyond the last index {self.last_index()}")
        term = self.unstable.maybe_term(index)
        if term is not None:
            return term
        return self.storage.term(index)

    def term_or_zero(self, index: int) -> int:
        """Term at `index`, or 0 when unknown (compacted or beyond the log): never matches a real term."""
        try:
            return self.term(index)
        except (Compacted, Unavailable):
            return 0

    def last_term(self) -> int:
        return self.term(self.last_index())

    def match_term(self, index: int, term: int) -> bool:
        # Term 0 is "unknown" from term_or_zero: it must never match an entry that exists or not.
        return term > 0 and self.term_or_zero(index) == term if index > 0 else term == 0

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Raft's election restriction: is a log ending at (last_index, last_term) at least as up to date?"""
        my_term = self.last_term()
        return last_term > my_term or (last_term == my_term and last_index >= self.last_index())

    # -- reading entries --------------------------------------------------------------------

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries [lo, hi), from storage and then the unstable tail. Raises Compacted/Unavailable."""
        if lo >= hi:
            return []
        first = self.first_index()
        if lo < first:
            raise Compacted(f"index {lo} is compacted (log starts at {first})")
        if hi > self.last_index() + 1:
            raise Unavailable(f"entries up to {hi - 1} requested, the last index is {self.last_index()}")
        result: list[Entry] = []
        offset = self.unstable.offset
        if lo < offset:
            result = list(self.storage.entries(lo, min(hi, offset), max_bytes))
            if len(result) < min(hi, offset) - lo:
                return result  # the byte limit was reached inside storage
        if hi > offset:
            start = max(lo, offset)
            result.extend(self.unstable.entries[start - offset : hi - offset])
        return limit_size(result, max_bytes)

    def entries_from(self, lo: int, max_bytes: int | None = None) -> list[Entry]:
        return self.entries(lo, self.last_index() + 1, max_bytes)

    def snapshot(self) -> Snapshot:
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()

    def unstable_entries(self) -> list[Entry]:
        return list(self.unstable.entries)

    def has_next_committed_entries(self) -> bool:
        return self.committed > max(self.applied, self.first_index() - 1)

    def next_committed_entries(self, max_bytes: int | None = None) -> list[Entry]:
        """Committed entries not yet applied (after any snapshot the application will restore from)."""
        lo = max(self.applied + 1, self.first_index())
        if self.committed < lo:
            return []
        return self.entries(lo, self.committed + 1, max_bytes)

    # -- changing the log -------------------------------------------------------------------

    def append(self, entries: list[Entry]) -> int:
        """Append entries that follow on from (or overwrite part of) the log. Returns the last index."""
        if not entries:
            return self.last_index()
        after = entries[0].index - 1
        if after < self.committed:
            raise ValueError(f"append after {after} would overwrite committed entries up to {self.committed}")
        self.unstable.truncate_and_append(entries)
        return self.last_index()

    def find_conflict(self, entries: tuple[Entry, ...] | list[Entry]) -> int:
        """Index of the first entry that is new or disagrees with the log (0 if all already match)."""
        for entry in entries:
            if not self.match_term(entry.index, entry.term):
                return entry.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest index <= `index` whose term is <= `term`, and that term.

        Used for fast log repair: the follower answers a rejected append with this hint, and the
        leader skips over every entry of the follower's log from terms the leader does not share,
        one round trip per term instead of one per entry. Stops at the compaction point.
        """
        index = min(index, self.last_index())
        first = self.first_index()
        while index >= first - 1:
            t = self.term_or_zero(index)
            if t <= term:
                return index, t
            index -= 1
        return first - 1, 0

    def maybe_append(
        self, index: int, log_term: int, committed: int, entries: tuple[Entry, ...]
    ) -> int | None:
        """Follower side of AppendEntries: if our log has (index, log_term), take `entries`.

        Returns the index of the last entry the message vouches for, or None if the logs diverge
        before it. Commit advances only as far as this message proves our log matches the leader's.
        """
        if not self.match_term(index, log_term):
            return None
        last_new = index + len(entries)
        conflict = self.find_conflict(entries)
        if conflict:
            if conflict <= self.committed:
                raise ValueError(f"entry {conflict} conflicts with committed entry (commit {self.committed})")
            self.append(list(entries[conflict - index - 1 :]))
        self.commit_to(min(committed, last_new))
        return last_new

    def commit_to(self, index: int) -> None:
        # Never decreases, and never past what we hold (a leader caps heartbeat commits at our match).
        if index > self.committed:
            self.committed = min(index, self.last_index())

    def maybe_commit(self, index: int, term: int) -> bool:
        """Leader: commit up to `index` if that entry is from `term` (the current one; Figure 8)."""
        if index > self.committed and self.term_or_zero(index) == term:
            self.commit_to(index)
            return True
        return False

    def applied_to(self, index: int) -> None:
        if index > self.committed or index < self.applied:
            raise ValueError(f"applied index {index} outside [{self.applied}, {self.committed}]")
        self.applied = index

    def stable_to(self, index: int, term: int) -> None:
        self.unstable.stable_to(index, term)

    def stable_snapshot_to(self, index: int) -> None:
        self.unstable.stable_snapshot_to(index)

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the log with `snapshot` (a follower too far behind, or diverged before it)."""
        self.committed = snapshot.meta.index
        self.unstable.restore(snapshot)
