"""Deterministic simulation of a swarmpy Raft cluster under chaos, checking Raft's safety properties.

    python -m tests.raft.simulator --seeds 1000 [--start 0] [--steps 300] [--verbose]

Each seed fixes everything: cluster size (3 or 5), whether membership changes happen, the network's
loss/duplication/delay rates, and every random choice after that. Every node runs the production driver
contract -- the real `DriverCore` (swarmpy/raft/driver_core.py) that `RaftDriver` runs -- over the real
`DiskStorage` WAL on a simulated disk with a page cache (tests/raft/simdisk.py): writes not yet fsync'd
are lost, torn or kept at random on a crash, folder operations survive only in journal order.

1. Chaos, `steps` ticks: messages are lost, delayed (reordered), duplicated, and now and then held for
   up to LONG_DELAY_TICKS; partitions form and heal, and one-way cuts leave a node able to send but not
   receive (or the reverse); each node's clock runs at its own rate (drift) and processes pause for one
   to four election timeouts (no ticks, no messages: a leader stalls past its lease), and a paused
   leader may be asked for a read the moment it resumes; nodes crash between Readies, just before any
   effect of a Ready (persist, send, snapshot, compact) or inside a storage call (mid-write, before an
   fdatasync, during segment rotation and snapshot install), losing everything not fsync'd, and restart
   from what the disk kept. Clients propose unique payloads and read through ReadIndex, leadership is
   transferred, members are added and removed (now and then two changes asked for at once), and
   learners join, catch up (the leader refuses to promote one that is behind), are promoted or removed,
   crashing like anyone in between. Nodes snapshot and compact their logs, so slow followers (and
   learners) are caught up by snapshot.
2. Liveness: every node is restarted and resumed, every cut heals (no loss, no duplication, at most one
   tick of delay; clocks keep their drift), and a leader must be elected and commit and apply a new
   proposal within LIVENESS_BOUND_TICKS (with pre-vote, the default; twice that without).

Checked after every tick (or as it happens, where that is cheaper and exact):
- election safety: at most one leader per term; a leader is a voter of its own configuration, elected by
  grants (VOTE_RESPONSEs sent to it in its term) from a majority of its voters: learners' grants count
  for nothing;
- log matching: entries with the same (index, term) carry the same data and follow an entry with the
  same term (checked inductively on every persisted entry, which implies identical prefixes);
- leader completeness: a new leader's log holds every entry any node has applied that was committed in an
  earlier term (committed "in" the term of the node that applied it, at the latest: a bound, exact for the
  leader; a leader of an older term elected late, on a vote held back by a pause, need not hold what a
  newer leader committed since);
- state machine safety: no two nodes apply different entries at the same index;
- acknowledged writes: a proposal the DriverCore answered (what `RaftDriver.propose()` returns) was
  applied at its index, and is never lost nor applied twice -- at the end every live node's application
  state equals the committed log's payloads, in order;
- linearizable reads: a read is served (the DriverCore answers it) from the node's application state at
  that moment, which must hold every write acknowledged before the read began;
- the protocol's rules, on what leaders write and voters answer: a leader moves its commit index only
  onto an entry of its own term (Figure 8), and only onto one that a majority of its voters (not
  counting learners) hold in their storage; appends a membership change only once an entry of its term
  is committed and no earlier change is uncommitted (dissertation 4.1 and its errata); a voter that
  heard from its leader within an election timeout of its own clock grants no (pre-)vote for a newer
  term except to a leadership transfer (lease, 4.2.3); a voter grants one vote per term, across crashes
  (5.2), seen on the VOTE_RESPONSEs it sends.

A failure raises SimulationFailure whose message names the seed and the command that replays it.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from dataclasses import dataclass, field

from swarmpy.raft import errors
from swarmpy.raft.driver_core import ApplyResult
from swarmpy.raft.core import TRANSFER_CONTEXT
from swarmpy.raft.messages import ConfChange, ConfChangeType, Entry, EntryType, Message, MessageType, Role

from .harness import SimNode
from .simdisk import SimFiles


class Waiter:
    """What the DriverCore answers (asyncio.Future's three methods), calling back on a result."""

    __slots__ = ("on_result", "is_done")

    def __init__(self, on_result: Callable[[Any], None]) -> None:
        self.on_result = on_result
        self.is_done = False

    def done(self) -> bool:
        return self.is_done

    def set_result(self, result: Any) -> None:
        self.is_done = True
        self.on_result(result)

    def set_exception(self, exception: BaseException) -> None:
        self.is_done = True

ELECTION_TICK = 10
HEARTBEAT_TICK = 1
MAX_DELAY_TICKS = 3  # during chaos; 0..this many ticks, which also reorders messages
LONG_DELAY_TICKS = 3 * ELECTION_TICK  # a message stuck in a queue: arrives long after it was sent
PAUSE_TICKS = (ELECTION_TICK, 4 * ELECTION_TICK)  # a stopped process (GC, SIGSTOP, swapping): past its lease

# The liveness bound, after everything heals (delivery within one tick, no loss):
#   - up to ELECTION_TICK for a stale leader to step down (CheckQuorum) or for followers' leases on
#     a leader that is gone to expire, since a lease makes them ignore vote requests;
#   - then an election: a randomized timeout below 2 * ELECTION_TICK, plus pre-vote and vote
#     rounds of one tick each way; a split vote costs another randomized timeout, and each retry
#     is independently likely to succeed, so we allow three elections;
#   - committed-but-unapplied membership changes must be applied before a node may campaign, and a
#     restarted follower may need a snapshot and log repair: a few ticks of round trips;
#   - the new leader's no-op and the probe proposal then need two more round trips.
# 1 + 3 * 2 election timeouts + slack = 8 * ELECTION_TICK of global time, also with clock drift (a clock
# at 0.7 stretches the timeouts it counts by 1/0.7; the slack covers that). Observed (before drift): worst 47 ticks over seeds
# 1000..10999 (300 chaos ticks each); the command line prints the worst case of every run.
LIVENESS_BOUND_TICKS = 8 * ELECTION_TICK
# With pre-vote off (swarmkit's setting; DriverConfig.pre_vote=False) a node whose log lags keeps timing
# out first, bumping the term and resetting everyone's timer while it cannot win (bench/RESULTS.md saw
# failovers of up to 9.9 election timeouts that way): twice the bound. Observed: worst 122 ticks (seed 351).
LIVENESS_BOUND_TICKS_WITHOUT_PRE_VOTE = 16 * ELECTION_TICK


def liveness_bound(params: Params) -> int:
    return LIVENESS_BOUND_TICKS if params.pre_vote else LIVENESS_BOUND_TICKS_WITHOUT_PRE_VOTE


class SimulationFailure(AssertionError):
    pass


@dataclass
class Params:
    size: int
    membership_changes: bool
    loss: float
    duplication: float
    max_delay: int
    crash_rate: float
    restart_rate: float
    partition_rate: float
    propose_rate: float
    read_rate: float
    transfer_rate: float
    conf_change_rate: float
    crash_mid_ready_rate: float  # per effect of a Ready: the power goes out just before it
    storage_crash_rate: float  # per Ready: the power goes out inside one of its storage operations
    crash_after_promise_rate: float  # per Ready that granted a vote or acknowledged entries: crash right after
    snapshot_every: int
    keep_after_compaction: int
    eager_ready: float  # chance a node takes its Ready right after one message, not after the tick's batch
    pre_vote: bool  # DriverConfig.pre_vote: on by default, off as in swarmkit; off, split votes are common
    clock_drift: float  # each node's clock runs at a rate drawn from [1 - drift, 1 + drift]
    pause_rate: float  # per node and tick: the process stops (no ticks, no messages) for a while
    one_way_rate: float  # per tick: cut (or restore) one direction of a node's links
    long_delay: float  # chance that a message is held for up to LONG_DELAY_TICKS

    @classmethod
    def from_rng(cls, rng: random.Random) -> Params:
        return cls(
            size=rng.choice((3, 5)),
            membership_changes=rng.random() < 0.35,
            loss=rng.choice((0.0, 0.02, 0.1, 0.25)),
            duplication=rng.choice((0.0, 0.02, 0.1)),
            max_delay=rng.randint(0, MAX_DELAY_TICKS),
            crash_rate=rng.choice((0.0, 0.005, 0.02)),
            restart_rate=rng.choice((0.05, 0.2)),
            partition_rate=rng.choice((0.0, 0.01, 0.04)),
            propose_rate=rng.choice((0.2, 0.5, 1.0)),
            read_rate=rng.choice((0.0, 0.1, 0.3)),
            transfer_rate=rng.choice((0.0, 0.005, 0.02)),
            conf_change_rate=rng.choice((0.01, 0.04)),
            crash_mid_ready_rate=rng.choice((0.0, 0.001, 0.003)),
            storage_crash_rate=rng.choice((0.0, 0.002, 0.005)),
            crash_after_promise_rate=rng.choice((0.0, 0.02, 0.1)),
            snapshot_every=rng.choice((0, 5, 20)),
            keep_after_compaction=rng.choice((0, 3)),
            eager_ready=rng.choice((0.0, 0.3, 1.0)),
            pre_vote=rng.random() < 0.5,
            clock_drift=rng.choice((0.0, 0.1, 0.3)),
            pause_rate=rng.choice((0.0, 0.002, 0.01)),
            one_way_rate=rng.choice((0.0, 0.0, 0.02)),
            long_delay=rng.choice((0.0, 0.0, 0.01)),
        )


@dataclass(order=True)
class _InFlight:
    deliver_at: int
    seq: int
    msg: Message = field(compare=False)


class Simulation:
    def __init__(self, seed: int, steps: int = 300, verbose: bool = False) -> None:
        self.seed = seed
        self.steps = steps
        self.verbose = verbose
        self.rng = random.Random(seed)
        self.params = Params.from_rng(self.rng)
        self.now = 0
        self.seq = 0
        self.network: list[_InFlight] = []
        self.partition: dict[int, int] | None = None  # node -> side; None when whole
        self.one_way_cuts: set[tuple[int, int]] = set()  # (from, to) links that lose every message
        self.paused_until: dict[int, int] = {}  # node -> global tick it resumes at
        self.clock_rate: dict[int, float] = {}  # node -> local ticks per global tick
        self.clock_credit: dict[int, float] = {}
        self.local_ticks: dict[int, int] = {}  # node -> ticks its own clock counted (this incarnation)
        self.heard_leader_at: dict[int, int] = {}  # node -> local tick it last heard its known leader
        self.nodes: dict[int, SimNode] = {}
        self.next_id = 1
        self.payload_counter = 0
        # invariant bookkeeping
        self.leader_of_term: dict[int, int] = {}
        self.entry_at: dict[tuple[int, int], tuple[int, bytes, int | None]] = {}  # (index, term) -> (type, data, prev term)
        self.applied_at: dict[int, tuple[int, int, bytes]] = {}  # index -> (term, type, data)
        self.committed_by: dict[int, int] = {}  # index -> the lowest term of a node that applied it
        self.acked: dict[bytes, int] = {}  # payload -> index, for every proposal the DriverCore answered
        self.max_acked_index = 0
        self.last_acked_payload: bytes | None = None  # the one acknowledged at max_acked_index
        self.vote_granted: dict[tuple[int, int], int] = {}  # (voter, term) -> candidate
        self.leader_commit: dict[int, tuple[tuple[int, int], int]] = {}  # node -> ((incarnation, term), commit)
        self.quorum_checked: dict[int, tuple[tuple[int, int], int]] = {}  # the same, for _check_commit_quorum
        self.was_leader: dict[int, tuple[int, int]] = {}  # node -> (incarnation, term) it last led in
        self.stats = {"elections": 0, "crashes": 0, "snapshots_installed": 0, "conf_changes": 0, "reads": 0, "reads_served": 0, "acked": 0, "crashes_mid_ready": 0, "crashes_after_promise": 0, "learners_added": 0, "learners_promoted": 0, "learners_removed": 0, "promotions_refused": 0, "bad_adds_refused": 0}
        founders = tuple(range(1, self.params.size + 1))
        for _ in founders:
            self._new_node(founders)

    # -- setup ----------------------------------------------------------------------------------

    def _new_node(self, founders: tuple[int, ...] = ()) -> SimNode:
        node_id = self.next_id
        self.next_id += 1
        node = SimNode(
            node_id,
            founders,
            seed=self.seed,
            disk=SimFiles(random.Random(self.seed * 7_919 + node_id)),
            snapshot_every=self.params.snapshot_every,
            keep_after_compaction=self.params.keep_after_compaction,
            election_tick=ELECTION_TICK,
            heartbeat_tick=HEARTBEAT_TICK,
            max_size_per_msg=256,  # small, so batching and multi-message catch-up happen
            max_inflight_msgs=rng_inflight(self.rng),
            pre_vote=self.params.pre_vote,
            max_learner_lag=self.rng.choice((0, 4, 64)),
        )
        drift = self.params.clock_drift
        self.clock_rate[node_id] = 1.0 + self.rng.uniform(-drift, drift) if drift else 1.0
        node.on_persist_entries = self._check_persisted_entries
        node.on_apply = self._check_applied_entry
        self.nodes[node_id] = node
        return node

    # -- failure reporting ----------------------------------------------------------------------

    def fail(self, what: str) -> None:
        raise SimulationFailure(
            f"seed {self.seed}, tick {self.now}: {what}\n"
            f"  params: {self.params}\n"
            f"  replay: python -m tests.raft.simulator --seeds 1 --start {self.seed} --steps {self.steps} --verbose"
        )

    def log(self, text: str) -> None:
        if self.verbose:
            print(f"[{self.now:5d}] {text}")

    # -- invariants checked as things happen ----------------------------------------------------

    def _check_persisted_entries(self, sim_node: SimNode, entries: list[Entry]) -> None:
        storage = sim_node.storage
        node = sim_node.node
        if node.role is Role.LEADER:
            for entry in entries:
                if entry.type is EntryType.CONF_CHANGE and entry.term == node.term:
                    self._check_membership_rules(sim_node, entry)
        for entry in entries:
            try:
                prev_term: int | None = storage.term(entry.index - 1)
            except errors.RaftError:
                prev_term = None
            key = (entry.index, entry.term)
            value = (int(entry.type), entry.data, prev_term)
            known = self.entry_at.get(key)
            if known is None:
                self.entry_at[key] = value
                continue
            if known[0] != value[0] or known[1] != value[1]:
                self.fail(f"log matching: node {sim_node.id} has a different entry at {key}: {value} vs {known}")
            if known[2] is not None and prev_term is not None and known[2] != prev_term:
                self.fail(f"log matching: node {sim_node.id} entry {key} follows term {prev_term}, elsewhere {known[2]}")

    def _check_applied_entry(self, sim_node: SimNode, entry: Entry) -> None:
        value = (entry.term, int(entry.type), entry.data)
        # The node learnt of the commit from a leader of its term or an earlier one: committed by then.
        self.committed_by[entry.index] = min(self.committed_by.get(entry.index, sim_node.node.term), sim_node.node.term)
        known = self.applied_at.get(entry.index)
        if known is None:
            self.applied_at[entry.index] = value
        elif known != value:
            self.fail(f"state machine safety: node {sim_node.id} applied {value} at {entry.index}, another applied {known}")
        if entry.type is EntryType.NORMAL and entry.data:
            if sim_node.app.count(entry.data) > 1:
                self.fail(f"payload {entry.data!r} applied twice on node {sim_node.id}")

    def _check_membership_rules(self, sim_node: SimNode, change: Entry) -> None:
        """The dissertation's rules for single-server changes (4.1 and the 2015 errata), on what a leader
        writes: a new configuration entry only once one of the leader's own term is committed, and
        never while an earlier membership change is still uncommitted."""
        log = sim_node.node.log
        committed = log.committed
        if log.term_or_zero(committed) != change.term:
            self.fail(f"membership: leader {sim_node.id} appended a change at {change.index} in term {change.term} "
                      f"before committing an entry of its term (commit {committed}, of term {log.term_or_zero(committed)})")
        earlier = [e.index for e in log.entries(committed + 1, change.index)
                   if e.type is EntryType.CONF_CHANGE] if change.index > committed + 1 else []
        if earlier:
            self.fail(f"membership: leader {sim_node.id} appended a change at {change.index} while the change at "
                      f"{earlier[0]} is not committed (commit {committed})")

    def _check_commit_rule(self, sim_node: SimNode) -> None:
        """Raft 5.4.2 (Figure 8): a leader moves its commit index only onto an entry of its own term."""
        node = sim_node.node
        commit = node.log.committed
        key = (sim_node.incarnation, node.term)
        seen = self.leader_commit.get(sim_node.id)
        self.leader_commit[sim_node.id] = (key, commit)
        if seen is not None and seen[0] == key and commit > seen[1] and node.log.term_or_zero(commit) != node.term:
            self.fail(f"commit rule: leader {sim_node.id} (term {node.term}) advanced its commit to {commit}, "
                      f"an entry of term {node.log.term_or_zero(commit)}, by counting replicas of an older term")

    def _check_commit_quorum(self, sim_node: SimNode, voters_before: frozenset[int]) -> None:
        """What a leader commits is in the storage of a majority of its voters; a learner's copy counts for
        nothing (its acknowledgements must not commit anything). The voters are those before the Ready
        (commit moved in step or tick) or after it (a REMOVE applied in advance() shrinks the majority)."""
        node = sim_node.node
        commit = node.log.committed
        key = (sim_node.incarnation, node.term)
        seen = self.quorum_checked.get(sim_node.id)
        self.quorum_checked[sim_node.id] = (key, commit)
        if seen is None or seen[0] != key or commit <= seen[1]:
            return
        term = node.log.term_or_zero(commit)
        for voters in (voters_before, node.voters):
            holders = [v for v in sorted(voters) if v in self.nodes and _stores(self.nodes[v], commit, term)]
            if len(holders) >= len(voters) // 2 + 1:
                return
        self.fail(f"commit quorum: leader {sim_node.id} (term {node.term}) committed {commit} (term {term}), which "
                  f"only voters {holders} of {sorted(voters)} store (before this Ready {sorted(voters_before)}; "
                  f"learners {sorted(node.learners)})")

    def _acknowledged(self, sim_node: SimNode, payload: bytes, result: ApplyResult) -> None:
        """The DriverCore answered a proposal: what RaftDriver.propose() returns to its caller."""
        if self.applied_at.get(result.index) != (result.term, int(EntryType.NORMAL), payload):
            self.fail(f"node {sim_node.id} acknowledged {payload!r} at {result.index}, where "
                      f"{self.applied_at.get(result.index)} was applied")
        self.acked[payload] = result.index
        self.stats["acked"] += 1
        if result.index > self.max_acked_index:
            self.max_acked_index, self.last_acked_payload = result.index, payload

    def _read_served(self, sim_node: SimNode, ctx: bytes, floor: int, floor_payload: bytes | None, index: int) -> None:
        """The DriverCore answered a read: the node's application state now is what the read returns. It
        must hold every write acknowledged before the read began."""
        self.stats["reads_served"] += 1
        if index < floor or (floor_payload is not None and floor_payload not in sim_node.state.seen):
            self.fail(
                f"linearizable read: node {sim_node.id} served read {ctx!r} at index {index} (applied "
                f"{sim_node.app_index}) without the write {floor_payload!r} acknowledged at {floor} before it began"
            )

    def _check_new_leader(self, sim_node: SimNode) -> None:
        node = sim_node.node
        term = node.term
        holder = self.leader_of_term.setdefault(term, sim_node.id)
        if holder != sim_node.id:
            self.fail(f"election safety: nodes {holder} and {sim_node.id} both lead term {term}")
        if self.was_leader.get(sim_node.id) == (sim_node.incarnation, term):
            return
        self.was_leader[sim_node.id] = (sim_node.incarnation, term)
        voters = node.voters
        if sim_node.id not in voters:
            self.fail(f"election: node {sim_node.id} leads term {term} but is not a voter of its configuration "
                      f"(voters {sorted(voters)}, learners {sorted(node.learners)})")
        granted = {sim_node.id} | {v for (v, t), c in self.vote_granted.items() if t == term and c == sim_node.id}
        if len(granted & voters) < len(voters) // 2 + 1:
            self.fail(f"election: node {sim_node.id} leads term {term} with grants from {sorted(granted)} only, not "
                      f"a majority of its voters {sorted(voters)} (learners {sorted(node.learners)})")
        self.stats["elections"] += 1
        self.log(f"node {sim_node.id} leads term {term}")
        snapshot_index = node.log.first_index() - 1
        for index, (applied_term, _, _) in self.applied_at.items():
            if index < snapshot_index or self.committed_by[index] >= term:
                continue
            if node.log.term_or_zero(index) != applied_term:
                self.fail(
                    f"leader completeness: new leader {sim_node.id} (term {term}) has term "
                    f"{node.log.term_or_zero(index)} at {index}, where term {applied_term} was applied"
                )

    # -- the network ----------------------------------------------------------------------------

    def _connected(self, a: int, b: int) -> bool:
        if (a, b) in self.one_way_cuts:
            return False
        return self.partition is None or self.partition.get(a, 0) == self.partition.get(b, 0)

    def _paused(self, node_id: int) -> bool:
        return node_id in self.paused_until  # until _resume, at the first chaos step at or after its time

    def _send_all(self, messages: Iterable[Message], chaos: bool) -> None:
        for m in messages:
            copies = 1
            if chaos and self.rng.random() < self.params.loss:
                copies = 0
            elif chaos and self.rng.random() < self.params.duplication:
                copies = 2
            if copies == 0 and m.type == MessageType.SNAPSHOT:
                self._report_snapshot(m, ok=False)
            for _ in range(copies):
                delay = self.rng.randint(0, self.params.max_delay) if chaos else self.rng.randint(0, 1)
                if chaos and self.params.long_delay and self.rng.random() < self.params.long_delay:
                    delay = self.rng.randint(self.params.max_delay, LONG_DELAY_TICKS)
                self.seq += 1
                self.network.append(_InFlight(self.now + delay, self.seq, m))

    def _report_snapshot(self, m: Message, ok: bool) -> None:
        sender = self.nodes[m.frm]
        if sender.up:
            sender.node.report_snapshot(m.to, ok)

    def _deliver_due(self, chaos: bool) -> None:
        for _ in range(100):
            due = [f for f in self.network if f.deliver_at <= self.now and not self._paused(f.msg.to)]
            if not due:
                self._process_readies(chaos)
                due = [f for f in self.network if f.deliver_at <= self.now and not self._paused(f.msg.to)]
                if not due:
                    return
            held = set(map(id, due))
            self.network = [f for f in self.network if id(f) not in held]
            self.rng.shuffle(due)  # reordering among messages due together
            for flight in due:
                m = flight.msg
                dest = self.nodes.get(m.to)
                if dest is None or not dest.up or not self._connected(m.frm, m.to):
                    if m.type == MessageType.SNAPSHOT:
                        self._report_snapshot(m, ok=False)
                    elif self.nodes[m.frm].up:
                        self.nodes[m.frm].node.report_unreachable(m.to)
                    continue
                self._step_checking_lease(dest, m)
                if m.type == MessageType.SNAPSHOT:
                    self._report_snapshot(m, ok=True)
                if chaos and self.rng.random() < self.params.eager_ready:
                    # Messages due in the same tick arrive at different moments: the driver may take a
                    # Ready (persist, send, maybe crash) between two of them.
                    self._process_node_readies(dest, chaos)
            self._process_readies(chaos)
        self.fail("messages kept arriving within one tick (livelock in the simulated network)")

    def _step_checking_lease(self, dest: SimNode, m: Message) -> None:
        """Deliver `m`, checking the leader lease (thesis 4.2.3) from the outside: a server that heard from
        its leader within an election timeout of its own clock grants no vote or pre-vote, except to a
        leadership transfer -- otherwise a server that cannot hear the leader deposes a healthy one."""
        node = dest.node
        in_lease = False
        # (A request in the node's own term cannot elect anyone new: the node has a vote or a leader there.)
        if m.type in (MessageType.VOTE, MessageType.PRE_VOTE) and m.context != TRANSFER_CONTEXT and m.term > node.term:
            heard = self.heard_leader_at.get(dest.id)
            in_lease = node.role is Role.LEADER or (
                node.role is Role.FOLLOWER and node.leader != 0 and heard is not None
                and self.local_ticks.get(dest.id, 0) - heard < ELECTION_TICK
            )
            sent_before = len(node.msgs)
        leader_before = node.leader
        node.step(m)
        if (m.type in (MessageType.APPEND, MessageType.HEARTBEAT, MessageType.SNAPSHOT) and node.leader == m.frm
                and m.term == node.term):  # (a stale message from an earlier term renews no lease)
            self.heard_leader_at[dest.id] = self.local_ticks.get(dest.id, 0)
        if in_lease:
            granted = [r for r in node.msgs[sent_before:] if r.to == m.frm and not r.reject
                       and r.type in (MessageType.VOTE_RESPONSE, MessageType.PRE_VOTE_RESPONSE)]
            if granted:
                self.fail(f"leader lease: node {dest.id} granted a {m.type.name} to {m.frm} (term {m.term}) while "
                          f"it heard from its leader {leader_before} within an election timeout")

    def _process_readies(self, chaos: bool) -> None:
        for sim_node in list(self.nodes.values()):
            self._process_node_readies(sim_node, chaos)

    def _process_node_readies(self, sim_node: SimNode, chaos: bool) -> None:
        p = self.params
        crash_before = self._crash_point if chaos and p.crash_mid_ready_rate else None
        if self._paused(sim_node.id):
            return
        while sim_node.up and sim_node.node.has_ready():
            arm = chaos and self.rng.random() < p.storage_crash_rate
            if arm:  # the power goes out inside one of the next few storage operations
                sim_node.disk.crash_after(self.rng.randint(1, 4))
            voters_before = sim_node.node.voters
            rd = sim_node.process_ready(crash_before)
            sim_node.disk.crash_after(None)
            if rd is None:
                break
            self._check_votes(sim_node, rd.messages)
            self._send_all(rd.messages, chaos)  # those that left before a crash, too
            if sim_node.crashed_mid_ready:
                self.stats["crashes"] += 1
                self.stats["crashes_mid_ready"] += 1
                self.log(f"node {sim_node.id} crashed inside a Ready")
                break
            if chaos and p.crash_after_promise_rate and any(_is_promise(m) for m in rd.messages) \
                    and self.rng.random() < p.crash_after_promise_rate:
                # The worst moment to lose memory: a vote or an append ack just left. What it promised must be
                # on disk, or the restarted node may promise the opposite.
                sim_node.crash()
                self.stats["crashes"] += 1
                self.stats["crashes_after_promise"] += 1
                self.log(f"node {sim_node.id} crashed right after promising")
                if self.rng.random() < 0.5:
                    self._restart(sim_node)  # a supervisor restarts it at once; the requests due now still reach it
                break
            if sim_node.node.role is Role.LEADER:
                self._check_new_leader(sim_node)
                self._check_commit_rule(sim_node)
                self._check_commit_quorum(sim_node, voters_before)
            if rd.snapshot is not None:
                self.stats["snapshots_installed"] += 1

    def _check_votes(self, sim_node: SimNode, messages: list[Message]) -> None:
        """One vote per term (5.2), across crashes: a granted VOTE_RESPONSE is a promise the disk keeps."""
        for m in messages:
            if m.type is MessageType.VOTE_RESPONSE and not m.reject:
                promised = self.vote_granted.setdefault((sim_node.id, m.term), m.to)
                if promised != m.to:
                    self.fail(f"one vote per term: node {sim_node.id} (incarnation {sim_node.incarnation}) voted for "
                              f"{m.to} in term {m.term}, after voting for {promised}")

    def _crash_point(self, effect: object) -> bool:
        return self.rng.random() < self.params.crash_mid_ready_rate

    # -- chaos ----------------------------------------------------------------------------------

    def _up_nodes(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.up]

    def _leaders(self, include_paused: bool = False) -> list[SimNode]:
        """Nodes that believe they lead; clients reach only those that are not paused."""
        return [n for n in self._up_nodes() if n.node.role is Role.LEADER and (include_paused or not self._paused(n.id))]

    def _chaos_events(self) -> None:
        p, rng = self.params, self.rng
        for sim_node in list(self.nodes.values()):
            if sim_node.up and rng.random() < p.crash_rate:
                sim_node.crash()
                self.stats["crashes"] += 1
                self.log(f"node {sim_node.id} crashed")
            elif not sim_node.up and rng.random() < p.restart_rate:
                self._restart(sim_node)
            elif sim_node.up and self.paused_until.get(sim_node.id, self.now + 1) <= self.now:
                self._resume(sim_node)
            elif sim_node.up and not self._paused(sim_node.id) and rng.random() < p.pause_rate:
                self.paused_until[sim_node.id] = self.now + rng.randint(*PAUSE_TICKS)
                self.log(f"node {sim_node.id} paused until tick {self.paused_until[sim_node.id]}")
        if rng.random() < p.one_way_rate:
            if self.one_way_cuts and rng.random() < 0.5:
                self.one_way_cuts.clear()
                self.log("one-way cuts healed")
            else:
                victim = rng.choice(sorted(self.nodes))
                outgoing = rng.random() < 0.5
                for other in self.nodes:
                    if other != victim:
                        self.one_way_cuts.add((victim, other) if outgoing else (other, victim))
                self.log(f"node {victim} can no longer {'send' if outgoing else 'receive'} (one-way cut)")
        if rng.random() < p.partition_rate:
            if self.partition is None:
                self.partition = {i: rng.randint(0, 1) for i in self.nodes}
                self.log(f"partition {self.partition}")
            else:
                self.partition = None
                self.log("partition healed")
        leaders = self._leaders()
        if rng.random() < p.propose_rate:
            target = rng.choice(leaders) if leaders and rng.random() < 0.9 else rng.choice(list(self.nodes.values()))
            self._propose(target)
        if leaders and rng.random() < p.read_rate:
            self._read(rng.choice(leaders))
        if leaders and rng.random() < p.transfer_rate:
            leader = rng.choice(leaders)
            target = rng.choice(sorted(leader.node.voters))
            try:
                leader.node.transfer_leadership(target)
                self.log(f"node {leader.id} transfers leadership to {target}")
            except errors.RaftError:
                pass
        if p.membership_changes and leaders and rng.random() < p.conf_change_rate:
            leader = rng.choice(leaders)
            self._conf_change(leader)
            if rng.random() < 0.3:
                self._conf_change(leader)  # an operator adding two managers at once: the second must wait

    def _resume(self, sim_node: SimNode) -> None:
        """A paused process runs again. Its clock jumps, its socket buffers are full of news -- but a
        client's request may be taken first: a node that still believes it leads must not serve a read
        from its stale state (ReadIndex confirms leadership with a heartbeat round first)."""
        del self.paused_until[sim_node.id]
        self.log(f"node {sim_node.id} resumed")
        if sim_node.node.role is Role.LEADER and self.rng.random() < 0.8:
            self._read(sim_node)
            self._process_node_readies(sim_node, chaos=True)

    def _restart(self, sim_node: SimNode) -> None:
        self.paused_until.pop(sim_node.id, None)
        self.local_ticks[sim_node.id] = 0
        self.heard_leader_at.pop(sim_node.id, None)
        sim_node.start()
        self.log(f"node {sim_node.id} restarted (incarnation {sim_node.incarnation})")

    def _propose(self, sim_node: SimNode) -> int | None:
        if not sim_node.up:
            return None
        self.payload_counter += 1
        payload = f"s{self.seed}/p{self.payload_counter}".encode()
        waiter = Waiter(lambda result: self._acknowledged(sim_node, payload, result))
        sim_node.core.propose("propose", payload, waiter)
        return None if waiter.is_done else payload  # refused at once (not leader, dropped)

    def _read(self, sim_node: SimNode) -> None:
        self.payload_counter += 1
        ctx = f"r{self.payload_counter}".encode()
        floor, floor_payload = self.max_acked_index, self.last_acked_payload
        self.stats["reads"] += 1
        waiter = Waiter(lambda index: self._read_served(sim_node, ctx, floor, floor_payload, index))
        sim_node.core.register_read(ctx, waiter)
        sim_node.core.read(ctx)

    def _conf_change(self, leader: SimNode) -> None:
        voters = sorted(leader.node.voters)
        learners = sorted(leader.node.learners)
        rng = self.rng
        roll = rng.random()
        if learners and roll < 0.45:
            # Promote a learner, as the manager's join does once it caught up -- or too early (refused).
            change = ConfChange(ConfChangeType.ADD_NODE, rng.choice(learners))
        elif learners and roll < 0.55:
            change = ConfChange(ConfChangeType.REMOVE_NODE, rng.choice(learners))  # a join given up
        elif len(voters) > 3 and (len(voters) >= 6 or rng.random() < 0.5):
            change = ConfChange(ConfChangeType.REMOVE_NODE, rng.choice(voters))
        elif rng.random() < 0.15:
            change = ConfChange(ConfChangeType.UPDATE_NODE, rng.choice(voters + learners), b"addr-" + str(self.now).encode())
        elif len(learners) < 3 and rng.random() < 0.7:
            change = ConfChange(ConfChangeType.ADD_LEARNER, self.next_id)  # a new node starts as a learner
        else:
            # Straight in as a voter, as an operator might try: the core must refuse it (a new member
            # joins as a learner), or a voter with an empty log would count toward majorities.
            change = ConfChange(ConfChangeType.ADD_NODE, self.next_id)
        try:
            index = leader.node.propose_conf_change(change)
        except errors.ConfChangeRefused as exc:
            if change.type is ConfChangeType.ADD_NODE and change.node_id not in learners:
                self.stats["bad_adds_refused"] += 1
            if change.type is ConfChangeType.ADD_NODE and change.node_id in learners:
                self.stats["promotions_refused"] += 1
                self.log(f"node {leader.id}: promotion of {change.node_id} refused: {exc}")
            return
        except (errors.ProposalDropped, errors.NotLeader):
            return
        if change.type is ConfChangeType.ADD_NODE and change.node_id not in learners:
            self.fail(f"membership: leader {leader.id} accepted ADD_NODE of {change.node_id} at {index}, "
                      f"which is not a learner (learners {learners}, voters {voters})")
        self.stats["conf_changes"] += 1
        self.log(f"node {leader.id} proposes {change.type.name} {change.node_id} at {index}")
        if change.node_id in learners:
            self.stats["learners_promoted" if change.type is ConfChangeType.ADD_NODE else "learners_removed"] += 1
        elif change.type is ConfChangeType.ADD_LEARNER:
            self.stats["learners_added"] += 1
        if change.type in (ConfChangeType.ADD_NODE, ConfChangeType.ADD_LEARNER) and change.node_id == self.next_id:
            self._new_node()

    # -- the run --------------------------------------------------------------------------------

    def _tick_all(self) -> None:
        """One tick of global time: each running node's own clock advances at its own rate (drift), a
        paused node's not at all."""
        self.now += 1
        for sim_node in self._up_nodes():
            node_id = sim_node.id
            if self._paused(node_id):
                continue
            credit = self.clock_credit.get(node_id, 0.0) + self.clock_rate.get(node_id, 1.0)
            while credit >= 1.0:
                credit -= 1.0
                sim_node.node.tick()
                self.local_ticks[node_id] = self.local_ticks.get(node_id, 0) + 1
            self.clock_credit[node_id] = credit

    def run(self) -> int:
        """Run both phases; returns the ticks the liveness phase needed."""
        self._process_readies(chaos=True)
        for _ in range(self.steps):
            self._chaos_events()
            self._tick_all()
            self._deliver_due(chaos=True)
            self._check_leaders()
        return self._liveness()

    def _check_leaders(self) -> None:
        for sim_node in self._leaders(include_paused=True):
            holder = self.leader_of_term.setdefault(sim_node.node.term, sim_node.id)
            if holder != sim_node.id:
                self.fail(f"election safety: nodes {holder} and {sim_node.id} both lead term {sim_node.node.term}")

    def _liveness(self) -> int:
        self.partition = None
        self.one_way_cuts.clear()
        self.paused_until.clear()
        for sim_node in self.nodes.values():
            if not sim_node.up:
                self._restart(sim_node)
        self.log("healed: all nodes up, network reliable")
        start = self.now
        probe: tuple[SimNode, int, bytes] | None = None
        bound = liveness_bound(self.params)
        while self.now - start <= bound:
            self._tick_all()
            self._deliver_due(chaos=False)
            self._check_leaders()
            if probe is not None:
                node, incarnation, payload = probe
                if payload in self.acked:
                    elapsed = self.now - start
                    self._check_final_state()
                    return elapsed
                if node.incarnation != incarnation or node.node.role is not Role.LEADER:
                    probe = None
            if probe is None:
                for leader in self._leaders():
                    payload = self._propose(leader)
                    if payload is not None:
                        probe = (leader, leader.incarnation, payload)
                        break
        self.fail(
            f"liveness: no leader committed a proposal within {bound} ticks of healing (pre-vote {self.params.pre_vote}); "
            + "; ".join(f"{n.id}: {n.node.status()}" for n in self.nodes.values())
        )
        return -1

    def _check_final_state(self) -> None:
        # Let the cluster settle so every member applies up to the leader's commit.
        for _ in range(4 * ELECTION_TICK):
            self._tick_all()
            self._deliver_due(chaos=False)
        expected_by_index = {
            index: data for index, (_, etype, data) in self.applied_at.items() if etype == EntryType.NORMAL and data
        }
        for payload, index in self.acked.items():
            if expected_by_index.get(index) != payload:
                self.fail(f"acknowledged write {payload!r} at index {index} is not what the log applied there")
        leaders = self._leaders()
        for sim_node in self._up_nodes():
            expected = [data for index, data in sorted(expected_by_index.items()) if index <= sim_node.app_index]
            if sim_node.app != expected:
                self.fail(
                    f"node {sim_node.id}: application state differs from the committed log up to {sim_node.app_index} "
                    f"({len(sim_node.app)} payloads vs {len(expected)} expected)"
                )
        if leaders:
            leader = max(leaders, key=lambda n: n.node.term)
            missing = [p for p, i in self.acked.items() if i <= leader.app_index and p not in set(leader.app)]
            if missing:
                self.fail(f"acknowledged writes lost on the final leader {leader.id}: {missing[:5]}")


def _stores(sim_node: SimNode, index: int, term: int) -> bool:
    """Whether the node's storage (what it fsync'd; a crashed node's disk) holds the entry (index, term)."""
    storage = sim_node.storage
    try:
        return storage.term(index) == term
    except errors.Compacted:
        return True  # covered by its snapshot, which holds only committed entries
    except errors.RaftError:
        return False


def _is_promise(m: Message) -> bool:
    return not m.reject and m.type in (MessageType.VOTE_RESPONSE, MessageType.APPEND_RESPONSE)


def rng_inflight(rng: random.Random) -> int:
    return rng.choice((1, 4, 256))


def run_seed(seed: int, steps: int = 300, verbose: bool = False) -> tuple[int, dict[str, int]]:
    sim = Simulation(seed, steps=steps, verbose=verbose)
    try:
        ticks = sim.run()
    except SimulationFailure:
        raise
    except Exception as exc:
        # Any exception is a finding of this seed (a core or harness bug), reported with its replay line.
        sim.fail(f"{type(exc).__name__}: {exc}\n{''.join(traceback.format_exception(exc)[-4:])}")
    # Crashes whose disk held written-but-unsynced data or folder changes (lost, torn or kept at random).
    sim.stats["seeds_with_pre_vote"] = int(sim.params.pre_vote)
    sim.stats["crashes_found_unsynced"] = sum(n.disk.crashes_with_unsynced_state for n in sim.nodes.values())
    return ticks, sim.stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--steps", type=int, default=300, help="chaos ticks per seed")
    parser.add_argument("--verbose", action="store_true", help="narrate the run")
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first failing seed")
    args = parser.parse_args(argv)
    if not args.verbose:
        logging.disable(logging.WARNING)  # recoveries from torn writes are expected here, by the thousand
    started = time.monotonic()
    failures = 0
    worst: dict[str, tuple[int, int]] = {}
    totals: dict[str, int] = {}
    for seed in range(args.start, args.start + args.seeds):
        try:
            ticks, stats = run_seed(seed, args.steps, args.verbose)
        except SimulationFailure as exc:
            failures += 1
            print(f"FAIL {exc}", file=sys.stderr)
            if args.fail_fast:
                print(f"first failure at seed {seed} ({seed - args.start + 1} seeds run)")
                return 1
            continue
        mode = "pre-vote" if stats["seeds_with_pre_vote"] else "no pre-vote"
        worst[mode] = max(worst.get(mode, (0, -1)), (ticks, seed))
        for key, value in stats.items():
            totals[key] = totals.get(key, 0) + value
    elapsed = time.monotonic() - started
    print(
        f"{args.seeds - failures}/{args.seeds} seeds passed (seeds {args.start}..{args.start + args.seeds - 1}, "
        f"{args.steps} chaos ticks each) in {elapsed:.1f}s; liveness: worst "
        + ", ".join(f"{ticks} ticks with {mode} (seed {seed})" for mode, (ticks, seed) in sorted(worst.items()))
        + f" (bounds {LIVENESS_BOUND_TICKS} and {LIVENESS_BOUND_TICKS_WITHOUT_PRE_VOTE}); totals {totals}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
