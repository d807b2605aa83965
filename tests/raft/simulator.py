"""Deterministic simulation of a swarmpy Raft cluster under chaos, checking Raft's safety properties.

    python -m tests.raft.simulator --seeds 1000 [--start 0] [--steps 300] [--verbose]

Each seed fixes everything: cluster size (3 or 5), whether membership changes happen, the network's
loss/duplication/delay rates, and every random choice after that. A run has two phases:

1. Chaos, `steps` ticks: messages are lost, delayed (reordered), duplicated; partitions form and
   heal; nodes crash (losing everything the driver had not persisted: the unstable log, unsent
   messages, the application's in-memory state) and restart from their MemoryStorage; sometimes a
   crash falls between persisting a Ready and sending its messages. Clients propose unique payloads,
   ask for linearizable reads, transfer leadership, add and remove members. Nodes snapshot and
   compact their logs, so slow followers are caught up by snapshot.
2. Liveness: every node is restarted, the network heals (no loss, no duplication, at most one tick
   of delay), and a leader must be elected and commit and apply a new proposal within
   LIVENESS_BOUND_TICKS.

Checked after every tick (or as it happens, where that is cheaper and exact):
- election safety: at most one leader per term;
- log matching: entries with the same (index, term) carry the same data and follow an entry with the
  same term (checked inductively on every persisted entry, which implies identical prefixes);
- leader completeness: a new leader's log holds every entry any node has applied;
- state machine safety: no two nodes apply different entries at the same index;
- acknowledged writes: a proposal applied on the leader that proposed it (what the driver
  acknowledges) is never lost and never applied twice -- at the end every live node's application
  state equals the committed log's payloads, in order, and contains every acknowledged payload;
- ReadIndex linearizability: a ReadState's index covers every write acknowledged before the read
  was requested.

A failure raises SimulationFailure whose message names the seed and the command that replays it.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field

from swarmpy.raft import errors
from swarmpy.raft.messages import ConfChange, ConfChangeType, Entry, EntryType, Message, MessageType, Role

from .harness import SimNode

ELECTION_TICK = 10
HEARTBEAT_TICK = 1
MAX_DELAY_TICKS = 3  # during chaos; 0..this many ticks, which also reorders messages

# The liveness bound, after everything heals (delivery within one tick, no loss):
#   - up to ELECTION_TICK for a stale leader to step down (CheckQuorum) or for followers' leases on
#     a leader that is gone to expire, since a lease makes them ignore vote requests;
#   - then an election: a randomized timeout below 2 * ELECTION_TICK, plus pre-vote and vote
#     rounds of one tick each way; a split vote costs another randomized timeout, and each retry
#     is independently likely to succeed, so we allow three elections;
#   - committed-but-unapplied membership changes must be applied before a node may campaign, and a
#     restarted follower may need a snapshot and log repair: a few ticks of round trips;
#   - the new leader's no-op and the probe proposal then need two more round trips.
# 1 + 3 * 2 election timeouts + slack = 8 * ELECTION_TICK. Observed: worst 47 ticks over seeds
# 1000..10999 (300 chaos ticks each); the command line prints the worst case of every run.
LIVENESS_BOUND_TICKS = 8 * ELECTION_TICK


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
    crash_mid_ready_rate: float
    snapshot_every: int
    keep_after_compaction: int

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
            crash_mid_ready_rate=rng.choice((0.0, 0.002)),
            snapshot_every=rng.choice((0, 5, 20)),
            keep_after_compaction=rng.choice((0, 3)),
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
        self.nodes: dict[int, SimNode] = {}
        self.next_id = 1
        self.payload_counter = 0
        # invariant bookkeeping
        self.leader_of_term: dict[int, int] = {}
        self.entry_at: dict[tuple[int, int], tuple[int, bytes, int | None]] = {}  # (index, term) -> (type, data, prev term)
        self.applied_at: dict[int, tuple[int, int, bytes]] = {}  # index -> (term, type, data)
        self.pending_proposals: dict[tuple[int, int], dict[int, bytes]] = {}  # (node, incarnation) -> index -> payload
        self.acked: dict[bytes, int] = {}  # payload -> index
        self.max_acked_index = 0
        self.read_floor: dict[bytes, int] = {}  # read ctx -> writes acknowledged before it was asked
        self.was_leader: dict[int, tuple[int, int]] = {}  # node -> (incarnation, term) it last led in
        self.stats = {"elections": 0, "crashes": 0, "snapshots_installed": 0, "conf_changes": 0, "reads": 0, "reads_served": 0, "acked": 0}
        for _ in range(self.params.size):
            self._new_node(founding=True)
        founders = tuple(sorted(self.nodes))
        for node in self.nodes.values():
            node.founding_peers = founders
            node.start()
            node.incarnation = 1

    # -- setup ----------------------------------------------------------------------------------

    def _new_node(self, founding: bool) -> SimNode:
        node_id = self.next_id
        self.next_id += 1
        node = SimNode(
            node_id,
            (node_id,) if founding else (),  # founders get their real peers right after
            seed=self.seed,
            snapshot_every=self.params.snapshot_every,
            keep_after_compaction=self.params.keep_after_compaction,
            election_tick=ELECTION_TICK,
            heartbeat_tick=HEARTBEAT_TICK,
            max_size_per_msg=256,  # small, so batching and multi-message catch-up happen
            max_inflight_msgs=rng_inflight(self.rng),
        )
        if founding:
            node.storage = type(node.storage)()  # discard the placeholder single-node bootstrap
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
        known = self.applied_at.get(entry.index)
        if known is None:
            self.applied_at[entry.index] = value
        elif known != value:
            self.fail(f"state machine safety: node {sim_node.id} applied {value} at {entry.index}, another applied {known}")
        if entry.type is EntryType.NORMAL and entry.data:
            if sim_node.app.count(entry.data) > 1:
                self.fail(f"payload {entry.data!r} applied twice on node {sim_node.id}")
            pending = self.pending_proposals.get((sim_node.id, sim_node.incarnation))
            if pending is not None and pending.get(entry.index) == entry.data:
                del pending[entry.index]
                self.acked[entry.data] = entry.index
                self.stats["acked"] += 1
                self.max_acked_index = max(self.max_acked_index, entry.index)

    def _check_new_leader(self, sim_node: SimNode) -> None:
        node = sim_node.node
        term = node.term
        holder = self.leader_of_term.setdefault(term, sim_node.id)
        if holder != sim_node.id:
            self.fail(f"election safety: nodes {holder} and {sim_node.id} both lead term {term}")
        if self.was_leader.get(sim_node.id) == (sim_node.incarnation, term):
            return
        self.was_leader[sim_node.id] = (sim_node.incarnation, term)
        self.stats["elections"] += 1
        self.log(f"node {sim_node.id} leads term {term}")
        snapshot_index = node.log.first_index() - 1
        for index, (applied_term, _, _) in self.applied_at.items():
            if index < snapshot_index:
                continue
            if node.log.term_or_zero(index) != applied_term:
                self.fail(
                    f"leader completeness: new leader {sim_node.id} (term {term}) has term "
                    f"{node.log.term_or_zero(index)} at {index}, where term {applied_term} was applied"
                )

    # -- the network ----------------------------------------------------------------------------

    def _connected(self, a: int, b: int) -> bool:
        return self.partition is None or self.partition.get(a, 0) == self.partition.get(b, 0)

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
                self.seq += 1
                self.network.append(_InFlight(self.now + delay, self.seq, m))

    def _report_snapshot(self, m: Message, ok: bool) -> None:
        sender = self.nodes[m.frm]
        if sender.up:
            sender.node.report_snapshot(m.to, ok)

    def _deliver_due(self, chaos: bool) -> None:
        for _ in range(100):
            due = [f for f in self.network if f.deliver_at <= self.now]
            if not due:
                self._process_readies(chaos)
                due = [f for f in self.network if f.deliver_at <= self.now]
                if not due:
                    return
            self.network = [f for f in self.network if f.deliver_at > self.now]
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
                dest.node.step(m)
                if m.type == MessageType.SNAPSHOT:
                    self._report_snapshot(m, ok=True)
            self._process_readies(chaos)
        self.fail("messages kept arriving within one tick (livelock in the simulated network)")

    def _process_readies(self, chaos: bool) -> None:
        for sim_node in list(self.nodes.values()):
            while sim_node.up and sim_node.node.has_ready():
                crash = chaos and self.rng.random() < self.params.crash_mid_ready_rate
                rd = sim_node.process_ready(crash_after_persist=crash)
                if rd is None:
                    break
                if crash:
                    self.stats["crashes"] += 1
                    self.log(f"node {sim_node.id} crashed between persisting and sending")
                    break
                if sim_node.node.role is Role.LEADER:
                    self._check_new_leader(sim_node)
                if rd.snapshot is not None:
                    self.stats["snapshots_installed"] += 1
                for read in rd.read_states:
                    self.stats["reads_served"] += 1
                    floor = self.read_floor.pop(read.request_ctx, None)
                    if floor is not None and read.index < floor:
                        self.fail(
                            f"ReadIndex: node {sim_node.id} answered read {read.request_ctx!r} at index {read.index}, "
                            f"but a write at index {floor} was acknowledged before the read began"
                        )
                self._send_all(rd.messages, chaos)

    # -- chaos ----------------------------------------------------------------------------------

    def _up_nodes(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.up]

    def _leaders(self) -> list[SimNode]:
        return [n for n in self._up_nodes() if n.node.role is Role.LEADER]

    def _chaos_events(self) -> None:
        p, rng = self.params, self.rng
        for sim_node in list(self.nodes.values()):
            if sim_node.up and rng.random() < p.crash_rate:
                sim_node.crash()
                self.stats["crashes"] += 1
                self.log(f"node {sim_node.id} crashed")
            elif not sim_node.up and rng.random() < p.restart_rate:
                self._restart(sim_node)
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
            self._conf_change(rng.choice(leaders))

    def _restart(self, sim_node: SimNode) -> None:
        sim_node.start()
        self.log(f"node {sim_node.id} restarted (incarnation {sim_node.incarnation})")

    def _propose(self, sim_node: SimNode) -> int | None:
        if not sim_node.up:
            return None
        self.payload_counter += 1
        payload = f"s{self.seed}/p{self.payload_counter}".encode()
        try:
            index = sim_node.node.propose(payload)
        except (errors.NotLeader, errors.ProposalDropped):
            return None
        self.pending_proposals.setdefault((sim_node.id, sim_node.incarnation), {})[index] = payload
        return index

    def _read(self, sim_node: SimNode) -> None:
        self.payload_counter += 1
        ctx = f"r{self.payload_counter}".encode()
        self.read_floor[ctx] = self.max_acked_index
        self.stats["reads"] += 1
        try:
            sim_node.node.read_index(ctx)
        except errors.NotLeader:
            self.read_floor.pop(ctx)

    def _conf_change(self, leader: SimNode) -> None:
        voters = sorted(leader.node.voters)
        rng = self.rng
        if len(voters) > 3 and (len(voters) >= 6 or rng.random() < 0.5):
            change = ConfChange(ConfChangeType.REMOVE_NODE, rng.choice(voters))
        elif rng.random() < 0.15:
            change = ConfChange(ConfChangeType.UPDATE_NODE, rng.choice(voters), b"addr-" + str(self.now).encode())
        else:
            change = ConfChange(ConfChangeType.ADD_NODE, self.next_id)
        try:
            index = leader.node.propose_conf_change(change)
        except (errors.ProposalDropped, errors.ConfChangeRefused, errors.NotLeader):
            return
        self.stats["conf_changes"] += 1
        self.log(f"node {leader.id} proposes {change.type.name} {change.node_id} at {index}")
        if change.type is ConfChangeType.ADD_NODE:
            joiner = self._new_node(founding=False)
            joiner.start()
            joiner.incarnation = 1

    # -- the run --------------------------------------------------------------------------------

    def _tick_all(self) -> None:
        self.now += 1
        for sim_node in self._up_nodes():
            sim_node.node.tick()

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
        for sim_node in self._leaders():
            holder = self.leader_of_term.setdefault(sim_node.node.term, sim_node.id)
            if holder != sim_node.id:
                self.fail(f"election safety: nodes {holder} and {sim_node.id} both lead term {sim_node.node.term}")

    def _liveness(self) -> int:
        self.partition = None
        for sim_node in self.nodes.values():
            if not sim_node.up:
                self._restart(sim_node)
        self.log("healed: all nodes up, network reliable")
        start = self.now
        probe: tuple[SimNode, int, bytes] | None = None
        while self.now - start <= LIVENESS_BOUND_TICKS:
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
                    index = self._propose(leader)
                    if index is not None:
                        payload = self.pending_proposals[(leader.id, leader.incarnation)][index]
                        probe = (leader, leader.incarnation, payload)
                        break
        self.fail(
            f"liveness: no leader committed a proposal within {LIVENESS_BOUND_TICKS} ticks of healing; "
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
    return ticks, sim.stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--steps", type=int, default=300, help="chaos ticks per seed")
    parser.add_argument("--verbose", action="store_true", help="narrate the run")
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first failing seed")
    args = parser.parse_args(argv)
    started = time.monotonic()
    failures = 0
    worst = (0, -1)
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
        worst = max(worst, (ticks, seed))
        for key, value in stats.items():
            totals[key] = totals.get(key, 0) + value
    elapsed = time.monotonic() - started
    print(
        f"{args.seeds - failures}/{args.seeds} seeds passed (seeds {args.start}..{args.start + args.seeds - 1}, "
        f"{args.steps} chaos ticks each) in {elapsed:.1f}s; liveness: worst {worst[0]} ticks (seed {worst[1]}), "
        f"bound {LIVENESS_BOUND_TICKS}; totals {totals}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
