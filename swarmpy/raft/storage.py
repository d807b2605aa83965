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

from .messages import ConfState, Entry, HardState, Snapshot


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
