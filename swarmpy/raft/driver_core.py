"""The driver contract, implemented once: a sans-I/O core that turns Readies into effects.

Theory of operation
-------------------
`swarmpy/raft/__init__.py` writes the driver contract down (persist, then send, then apply, then
advance). `DriverCore` is the one implementation of it. It holds everything a driver decides -- the
proposals and reads waiting for an answer, the applied index, the leader as last seen, when to take a
snapshot -- but performs no I/O itself. `handle_ready(rd)` is a generator that applies the contract to
one Ready and *yields* each piece of I/O for its runner to perform, in order, before it goes on:

* `Persist(entries, hard_state, snapshot, deferred)`: `storage.save(...)`, durably, before anything
  after it (`deferred`: only the commit index changed, `save` does no I/O, see `DiskStorage.defers`);
* `Send(messages)`: hand them to the network; only ever after the Persist of the same Ready;
* `Pause()`: a chance to let others run between two batches of applied entries (nothing to do);
* `TakeSnapshot(index, conf, data)` then `Compact(index)`: log size management after advance.

Applying the committed entries to the state machine, answering proposals and reads, and `advance` are
done by the core itself between those effects. Two runners exist: the asyncio `RaftDriver`
(swarmpy/raft/driver.py), which runs Persist/TakeSnapshot/Compact in a worker thread and Send through
its transport; and the deterministic simulator (tests/raft/simulator.py), which runs them on the real
`DiskStorage` over a simulated disk and may crash the node before any effect or inside any storage call
-- so the simulator proves the very code production runs.

Waiters are any future-like object (`done()`, `set_result()`, `set_exception()`): asyncio futures in
the driver, plain objects in the simulator. A proposal's waiter is keyed by the (index, term) the core
gave it and resolves with an `ApplyResult` when that index is applied with that term; it fails with
`LeadershipLost` when a different entry is applied there, when this node stops leading, or when a
snapshot replaces the log. A read waits for a ReadState carrying its context, then for applied >= its
index, and resolves with that index.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from . import errors
from .core import RaftNode
from .messages import ConfChange, ConfState, Entry, EntryType, HardState, Message, Ready, Role, Snapshot, SoftState

log = logging.getLogger(__name__)

# Committed entries applied between two Pause effects (see handle_ready).
APPLY_YIELD_EVERY = 64


class Waiter(Protocol):
    """What the core answers: an asyncio.Future, or anything with the same three methods."""

    def done(self) -> bool: ...
    def set_result(self, result: Any) -> None: ...
    def set_exception(self, exception: BaseException) -> None: ...


class StateMachine(Protocol):
    """The application Raft replicates. Called in log order; must not block long."""

    def apply(self, index: int, data: bytes) -> Any:
        """Apply one committed entry; the return value is what the proposer's `propose()` returns."""
        ...

    def snapshot(self) -> bytes:
        """The whole state as of the last applied entry."""
        ...

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a snapshot's."""
        ...


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What `propose()` returns: where the entry landed, and what the state machine answered."""

    index: int
    term: int
    result: Any


@dataclass(slots=True)
class DriverStats:
    readies: int = 0
    persisted_batches: int = 0
    applied_entries: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    oversized_messages_dropped: int = 0
    snapshots_created: int = 0
    snapshots_restored: int = 0
    stalls: int = 0  # ticker wake-ups more than STALL_TICKS late (see RaftDriver._ticker)
    longest_stall: float = 0.0  # seconds


# ---------------------------------------------------------------- effects


@dataclass(slots=True)
class Persist:
    entries: Sequence[Entry]
    hard_state: HardState | None
    snapshot: Snapshot | None
    deferred: bool  # storage.save does no I/O (only the commit index changed)


@dataclass(slots=True)
class Send:
    messages: list[Message]


@dataclass(slots=True)
class Pause:
    pass


@dataclass(slots=True)
class TakeSnapshot:
    index: int
    conf: ConfState
    data: bytes


@dataclass(slots=True)
class Compact:
    index: int


Effect = Persist | Send | Pause | TakeSnapshot | Compact
_PAUSE = Pause()


@dataclass(slots=True)
class _PendingProposal:
    term: int
    waiter: Waiter


@dataclass(slots=True)
class _PendingRead:
    waiter: Waiter
    index: int = 0  # set when the ReadState arrives; 0 while waiting for it


LeadershipListener = Callable[[bool, int], None]  # (this node is leader, leader id or 0)


class DriverCore:
    """The driver's decisions for one node; see the module docstring. `storage` is only asked whether a
    save would be deferred and where its log starts: every write is an effect the runner performs."""

    def __init__(
        self,
        node: RaftNode,
        storage: Any,
        state_machine: StateMachine,
        snapshot_interval: int,
        log_entries_for_slow_followers: int,
        on_leadership_change: LeadershipListener | None = None,
        stats: DriverStats | None = None,
    ) -> None:
        self.node = node
        self.node_id = node.id
        self.storage = storage
        self.state_machine = state_machine
        self.snapshot_interval = snapshot_interval
        self.log_entries_for_slow_followers = log_entries_for_slow_followers
        self.on_leadership_change = on_leadership_change
        self.stats = stats or DriverStats()
        self.on_apply: Callable[[Entry], None] | None = None  # a tap for tests: every applied entry
        self.leader = 0
        self.role = Role.FOLLOWER
        snap = storage.snapshot()
        self.applied = self._snapshot_index = snap.meta.index
        self._proposals: dict[int, _PendingProposal] = {}
        self._reads: dict[bytes, _PendingRead] = {}

    @property
    def is_leader(self) -> bool:
        return self.role == Role.LEADER

    # ---------------------------------------------------------------- requests into the core

    def step(self, message: Message) -> None:
        try:
            self.node.step(message)
        except errors.MalformedMessage:
            log.warning("node %x: dropped a malformed %s from %x", self.node_id, message.type.name, message.frm)

    def propose(self, kind: str, payload: Any, waiter: Waiter) -> None:
        """`kind` is "propose" (bytes) or "propose_conf_change" (a ConfChange)."""
        if waiter.done():  # the caller gave up (cancelled) before the loop got to it
            return
        node = self.node
        try:
            index = node.propose(payload) if kind == "propose" else node.propose_conf_change(payload)
        except errors.RaftError as exc:
            waiter.set_exception(exc)
            return
        self._proposals[index] = _PendingProposal(term=node.term, waiter=waiter)

    def transfer(self, target: int, waiter: Waiter) -> None:
        if waiter.done():
            return
        try:
            self.node.transfer_leadership(target)
        except errors.RaftError as exc:
            waiter.set_exception(exc)
        else:
            waiter.set_result(None)

    def register_read(self, context: bytes, waiter: Waiter) -> None:
        self._reads[context] = _PendingRead(waiter)

    def forget_read(self, context: bytes) -> None:
        self._reads.pop(context, None)

    def read(self, context: bytes) -> None:
        pending = self._reads.get(context)
        if pending is None or pending.waiter.done():
            return
        try:
            self.node.read_index(context)
        except errors.RaftError as exc:
            pending.waiter.set_exception(exc)

    # ---------------------------------------------------------------- the contract

    def handle_ready(self, rd: Ready) -> Iterator[Effect]:
        """Apply the contract to one Ready; yields each piece of I/O for the runner, in order."""
        node = self.node
        self.stats.readies += 1
        if rd.soft_state is not None:
            self._on_soft_state(rd.soft_state)
        # 1. Persist: snapshot, entries, hard state -- one save (one fsync).
        if rd.snapshot is not None or rd.entries or rd.hard_state is not None:
            deferred = self.storage.defers(rd.entries, rd.hard_state, rd.snapshot)
            yield Persist(rd.entries, rd.hard_state, rd.snapshot, deferred)
            if not deferred:
                self.stats.persisted_batches += 1
        # 2. Only then send.
        if rd.messages:
            self.stats.messages_sent += len(rd.messages)
            yield Send(rd.messages)
        # 3. Restore, apply, answer reads.
        if rd.snapshot is not None and not rd.snapshot.empty:
            self._restore(rd.snapshot)
        answers = []
        committed = rd.committed_entries
        for position, entry in enumerate(committed, 1):
            if (answer := self._apply(entry)) is not None:
                answers.append(answer)
            if position % APPLY_YIELD_EVERY == 0 and position < len(committed):
                # A leader that commits a thousand proposals at once would otherwise apply them in one
                # synchronous stretch (~0.3 s): reads, heartbeats and control calls wait that long. Each
                # entry is applied whole, and the core already takes messages between Ready and Advance.
                yield _PAUSE
        for read_state in rd.read_states:
            pending = self._reads.get(read_state.request_ctx)
            if pending is not None:
                pending.index = read_state.index
        self._answer_reads()
        # 4. Advance. (A conf change takes effect in the core here, so proposers are answered after it.)
        node.advance(rd)
        for pending, entry, result in answers:
            self._answer_proposal(pending, entry, result)
        # 5. Log size management.
        if self.snapshot_interval and self.applied - self._snapshot_index >= self.snapshot_interval:
            index = self.applied
            conf = node.conf_state()
            yield TakeSnapshot(index, conf, self.state_machine.snapshot())
            self._snapshot_index = index
            self.stats.snapshots_created += 1
            compact_to = index - self.log_entries_for_slow_followers
            if compact_to >= self.storage.first_index():
                yield Compact(compact_to)
            log.info("node %x: snapshot at %d, log compacted to %d", self.node_id, index, max(compact_to, 0))

    def _on_soft_state(self, soft: SoftState) -> None:
        was_leader = self.is_leader
        changed = (soft.leader, soft.role) != (self.leader, self.role)
        self.leader, self.role = soft.leader, soft.role
        if was_leader and not self.is_leader:
            log.info("node %x: lost leadership (leader now %x)", self.node_id, soft.leader)
            self.fail_proposals(errors.LeadershipLost(f"node {self.node_id:x} is now {soft.role.value}"))
            self.fail_reads(errors.LeadershipLost(f"node {self.node_id:x} is now {soft.role.value}"))
        elif self.is_leader and not was_leader:
            log.info("node %x: became leader", self.node_id)
        if changed and not self.is_leader:
            # A read still waiting for its ReadState may have been forwarded to a leader that is gone.
            for pending in self._reads.values():
                if not pending.index and not pending.waiter.done():
                    pending.waiter.set_exception(errors.LeadershipLost("the leader changed before the read was confirmed"))
        if changed and self.on_leadership_change is not None:
            self.on_leadership_change(self.is_leader, self.leader)

    def _restore(self, snap: Snapshot) -> None:
        log.info("node %x: restoring the state machine from a snapshot at %d", self.node_id, snap.meta.index)
        self.state_machine.restore(snap.data)
        self.stats.snapshots_restored += 1
        self.applied = self._snapshot_index = snap.meta.index
        for index in [i for i in self._proposals if i <= snap.meta.index]:
            pending = self._proposals.pop(index)
            if not pending.waiter.done():
                pending.waiter.set_exception(errors.LeadershipLost("the log was replaced by a snapshot"))

    def _apply(self, entry: Entry) -> tuple[_PendingProposal, Entry, Any] | None:
        """Apply one committed entry; return the proposal waiting on its index (answered after advance)."""
        if entry.index <= self.applied:
            return None
        result: Any = None
        if entry.type == EntryType.CONF_CHANGE:
            observer = getattr(self.state_machine, "on_conf_change", None)
            if observer is not None and entry.data:
                observer(entry.index, ConfChange.decode(entry.data))
        elif entry.data:
            result = self.state_machine.apply(entry.index, entry.data)
        # else: a new leader's empty entry
        self.applied = entry.index
        self.stats.applied_entries += 1
        if self.on_apply is not None:
            self.on_apply(entry)
        pending = self._proposals.pop(entry.index, None)
        return (pending, entry, result) if pending is not None else None

    def _answer_proposal(self, pending: _PendingProposal, entry: Entry, result: Any) -> None:
        if not pending.waiter.done():
            if pending.term == entry.term:
                if entry.type == EntryType.CONF_CHANGE:
                    result = self.node.conf_state()
                pending.waiter.set_result(ApplyResult(index=entry.index, term=entry.term, result=result))
            else:
                pending.waiter.set_exception(
                    errors.LeadershipLost(f"entry {entry.index} was overwritten by one of term {entry.term}")
                )

    def _answer_reads(self) -> None:
        for pending in self._reads.values():
            if pending.index and pending.index <= self.applied and not pending.waiter.done():
                pending.waiter.set_result(pending.index)

    # ---------------------------------------------------------------- failing what waits

    def fail_proposals(self, error: errors.RaftError) -> None:
        proposals, self._proposals = self._proposals, {}
        for pending in proposals.values():
            if not pending.waiter.done():
                pending.waiter.set_exception(error)

    def fail_reads(self, error: errors.RaftError) -> None:
        for pending in self._reads.values():
            if not pending.waiter.done():
                pending.waiter.set_exception(error)
