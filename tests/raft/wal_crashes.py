"""DiskStorage under power cuts on a simulated disk with a page cache (tests/raft/simdisk.py).

Each seed runs a random workload of Readies (entries, conflicting suffixes, term and vote changes),
local snapshots with compaction, and received snapshots, with a crash armed at a random operation --
inside a write, before an fdatasync, between a snapshot and its checkpoint, during segment rotation.
After each crash the storage is reopened from what the disk kept and must (a) open without error: a
crash is never corruption, and (b) hold either the state before the interrupted call or the state
after it -- never less than what was acknowledged. Run on demand: `python -m tests.raft.wal_crashes
--seeds 100000`; tests/raft/test_wal_crashes.py runs a CI budget.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
from dataclasses import dataclass, field

from swarmpy.raft.messages import ConfState, Entry, HardState, Snapshot, SnapshotMeta
from swarmpy.raft.wal import DiskStorage

from .simdisk import SimFiles, SimulatedCrash

FOLDER = "/sim/raft"


@dataclass
class Model:
    """What has been acknowledged: term, vote and the log (index -> (term, data)) above `floor`."""

    term: int = 0
    vote: int = 0
    entries: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    floor: int = 0  # a received snapshot's index: nothing at or below it is in the log
    floor_term: int = 0

    def copy(self) -> Model:
        return Model(self.term, self.vote, dict(self.entries), self.floor, self.floor_term)

    @property
    def last(self) -> int:
        return max(self.entries, default=self.floor)


def _log_matches(storage: DiskStorage, model: Model) -> bool:
    if storage.last_index() != model.last or storage.first_index() <= model.floor:
        return False
    for entry in storage.entries(storage.first_index(), storage.last_index() + 1):
        if model.entries.get(entry.index) != (entry.term, entry.data):
            return False
    base = storage.first_index() - 1
    expected = model.floor_term if base == model.floor else model.entries.get(base, (None,))[0]
    return storage.term(base) == expected


def check_recovered(storage: DiskStorage, before: Model, after: Model) -> str | None:
    """None if the recovered state is the one before or after the interrupted call, else why not."""
    hard = storage.initial_state()[0]
    if (hard.term, hard.vote) not in ((before.term, before.vote), (after.term, after.vote)):
        return f"term/vote {hard.term}/{hard.vote}, acknowledged {before.term}/{before.vote}"
    # A received snapshot is written before its checkpoint: the log may be the new one with the old vote.
    if not (_log_matches(storage, before) or _log_matches(storage, after)):
        return f"log {storage.first_index()}..{storage.last_index()} matches neither {before.last} nor {after.last}"
    return None


@dataclass
class Tally:
    crashes: int = 0
    unsynced: int = 0  # crashes that found written-but-unsynced data or folder changes
    lost_interrupted: int = 0  # recovered the state before the interrupted call (its write lost or torn)
    kept_interrupted: int = 0  # recovered the state after it (the write landed whole before the power cut)


def run_seed(seed: int, tally: Tally, operations: int = 40, disk_class: type[SimFiles] = SimFiles) -> None:
    """One seed, counted into `tally`. Raises AssertionError naming the seed on a loss or false corruption."""
    rng = random.Random(seed)
    disk = disk_class(rng)
    storage = DiskStorage(FOLDER, files=disk)
    model = Model()
    disk.crash_after(rng.randint(1, 60))
    for _ in range(operations):
        before = model.copy()
        after = model.copy()
        try:
            _random_call(rng, storage, after)
            model = after
        except SimulatedCrash as crash:
            disk.crash()
            try:
                storage = DiskStorage(FOLDER, files=disk)
            except Exception as exc:
                raise AssertionError(f"seed {seed}: reopen after a crash ({crash}) failed: {exc!r}") from exc
            problem = check_recovered(storage, before, after)
            if problem:
                raise AssertionError(f"seed {seed}: after a crash ({crash}): {problem}")
            # Continue from what the disk kept (whichever of the two states it is).
            landed = _log_matches(storage, after) and (storage.initial_state()[0].term, storage.initial_state()[0].vote) == (after.term, after.vote)
            if landed:
                tally.kept_interrupted += 1
            else:
                tally.lost_interrupted += 1
            model = after if _log_matches(storage, after) else before
            hard = storage.initial_state()[0]
            model.term, model.vote = hard.term, hard.vote
            disk.crash_after(rng.randint(1, 60))
    tally.crashes += disk.crashes
    tally.unsynced += disk.crashes_with_unsynced_state


def _random_call(rng: random.Random, storage: DiskStorage, model: Model) -> None:
    """One storage call, applied to `model` first (the state it must leave if it returns)."""
    choice = rng.random()
    last = storage.last_index()
    if choice < 0.6:
        start = last + 1
        lowest = max(storage.first_index(), storage.snapshot().meta.index + 1)  # a snapshot covers committed entries
        if last >= lowest and rng.random() < 0.25:
            start = rng.randint(lowest, last)  # a conflicting (uncommitted) suffix is replaced
        term = model.term + (rng.random() < 0.2)
        entries = [
            Entry(term=max(term, 1), index=i, data=rng.randbytes(rng.choice((3, 40, 700))))
            for i in range(start, start + rng.randint(1, 6))
        ]
        hard = HardState(term=max(term, 1), vote=rng.choice((model.vote, 1, 2, 3)), commit=0)
        for index in [i for i in model.entries if i >= start]:
            del model.entries[index]
        model.entries.update({e.index: (e.term, e.data) for e in entries})
        model.term, model.vote = hard.term, hard.vote
        storage.save(entries=entries, hard_state=hard)
    elif choice < 0.7:
        model.term, model.vote = model.term + 1, rng.choice((0, 1, 2))
        storage.save(hard_state=HardState(model.term, model.vote, 0))
    elif choice < 0.9 and last >= storage.first_index():
        index = rng.randint(storage.first_index(), last)
        if index > storage.snapshot().meta.index:
            storage.create_snapshot(index, ConfState((1, 2, 3)), b"app@%d" % index)
            storage.compact(rng.randint(storage.first_index(), index))  # the log's content stays the same
    else:
        index = last + rng.randint(1, 50)
        term = max(model.term, 1)
        snap = Snapshot(SnapshotMeta(index=index, term=term, conf=ConfState((1, 2, 3))), data=b"received@%d" % index)
        model.entries.clear()
        model.floor, model.floor_term = index, term
        storage.save(snapshot=snap)


def run(first: int, count: int, disk_class: type[SimFiles] = SimFiles) -> Tally:
    tally = Tally()
    for seed in range(first, first + count):
        run_seed(seed, tally, disk_class=disk_class)
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--first", type=int, default=0)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # every recovery logs; thousands of them say nothing here
    try:
        tally = run(args.first, args.seeds)
    except AssertionError as exc:
        print(f"FAILED: {exc}\nreplay: python -m tests.raft.wal_crashes --first {str(exc).split()[1][:-1]} --seeds 1")
        sys.exit(1)
    print(
        f"{args.seeds} seeds: {tally.crashes} crashes, {tally.unsynced} found written-but-unsynced state; "
        f"the interrupted call was lost or torn in {tally.lost_interrupted}, landed whole in {tally.kept_interrupted}; "
        "no acknowledged state lost, no crash taken for corruption"
    )


if __name__ == "__main__":
    main()
