"""A sans-I/O cluster for testing the Raft core, driven by the production driver contract.

`SimNode` runs the real `DriverCore` (swarmpy/raft/driver_core.py, the code the asyncio `RaftDriver`
runs) and performs its effects synchronously: `Persist` into the node's storage, `Send` handed back
to the caller, `TakeSnapshot`/`Compact` on the storage. The storage is a `MemoryStorage` for the
hand-built scenarios below, or the real `DiskStorage` over a simulated disk (tests/raft/simdisk.py)
when a `SimFiles` is given: then `crash()` loses exactly what was not fsync'd, and the simulator can
crash a node before any effect of a Ready or inside any storage call.

`Cluster` moves messages synchronously between SimNodes, with per-link cuts, for unit tests that
want to set up one precise scenario (the simulator in simulator.py adds randomness on top).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterable

from swarmpy.raft.core import Config, RaftNode
from swarmpy.raft.driver_core import Compact, DriverCore, Effect, Pause, Persist, Send, TakeSnapshot
from swarmpy.raft.messages import Entry, Message, MessageType, Ready, Role
from swarmpy.raft.storage import MemoryStorage
from swarmpy.raft.wal import DiskStorage

from .simdisk import SimFiles, SimulatedCrash

DATA_DIR = "/sim/raft"


def encode_app_state(payloads: list[bytes]) -> bytes:
    return b"".join(struct.pack(">I", len(p)) + p for p in payloads)


def decode_app_state(data: bytes) -> list[bytes]:
    payloads, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        payloads.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return payloads


class AppState:
    """The toy application: the applied NORMAL non-empty payloads, in order."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.seen: set[bytes] = set()

    def apply(self, index: int, data: bytes) -> int:
        self.payloads.append(data)
        self.seen.add(data)
        return len(self.payloads)

    def snapshot(self) -> bytes:
        return encode_app_state(self.payloads)

    def restore(self, data: bytes) -> None:
        self.payloads = decode_app_state(data)
        self.seen = set(self.payloads)


class SimNode:
    """One server: a RaftNode under the real DriverCore, its storage, and a toy application."""

    def __init__(
        self,
        node_id: int,
        peers: tuple[int, ...],
        seed: int = 0,
        snapshot_every: int = 0,
        keep_after_compaction: int = 0,
        disk: SimFiles | None = None,
        **config: object,
    ) -> None:
        self.id = node_id
        self.founding_peers = peers
        self.disk = disk
        self.storage: MemoryStorage | DiskStorage = MemoryStorage()
        self.config_overrides = config
        self.seed = seed
        self.incarnation = 0
        self.snapshot_every = snapshot_every
        self.keep_after_compaction = keep_after_compaction
        self.up = False
        self.node: RaftNode
        self.core: DriverCore
        self.state = AppState()
        self.read_states: list = []  # every ReadState this node emitted (all incarnations)
        # Hooks the simulator uses to check invariants as they happen.
        self.on_persist_entries: Callable[[SimNode, list[Entry]], None] | None = None
        self.on_apply: Callable[[SimNode, Entry], None] | None = None
        self.start()

    @property
    def app(self) -> list[bytes]:
        return self.state.payloads

    @property
    def app_index(self) -> int:
        return self.core.applied

    def _config(self, peers: tuple[int, ...], applied: int) -> Config:
        rng = random.Random(self.seed * 1_000_003 + self.id * 7919 + self.incarnation)
        return Config(id=self.id, peers=peers, applied=applied, rng=rng, **self.config_overrides)  # type: ignore[arg-type]

    def start(self) -> None:
        """Start (or restart) from the durable storage alone (a RaftDriver's start(), step by step)."""
        self.incarnation += 1
        if self.disk is not None:
            self.storage = DiskStorage(DATA_DIR, files=self.disk)
        snapshot = self.storage.snapshot()
        hard_state, _ = self.storage.initial_state()
        empty = self.storage.last_index() == 0 and snapshot.empty and hard_state.term == 0
        if empty and self.founding_peers:
            # A founding member that never persisted anything bootstraps again, as a driver would.
            self.node = RaftNode(self._config(self.founding_peers, 0), self.storage)
        else:
            self.node = RaftNode(self._config((), snapshot.meta.index), self.storage)
        # The application's state is volatile too: it comes back from the snapshot.
        self.state = AppState()
        if not snapshot.empty:
            self.state.restore(snapshot.data)
        self.core = DriverCore(self.node, self.storage, self.state, self.snapshot_every, self.keep_after_compaction)
        self.core.on_apply = self._applied
        self.up = True

    def _applied(self, entry: Entry) -> None:
        if self.on_apply is not None:
            self.on_apply(self, entry)

    def crash(self) -> None:
        """Power cut: everything but the disk is gone; the disk keeps what was fsync'd (and a random
        fate for what was not)."""
        self.up = False
        if self.disk is not None:
            self.disk.crash()

    def process_ready(self, crash_before: Callable[[Effect], bool] | None = None) -> Ready | None:
        """One turn of the driver loop: the core's effects for one Ready, performed here. Returns the
        Ready, whose `messages` are the caller's to deliver (empty if the node crashed before its Send).
        `crash_before(effect)` may crash the node before any effect; a SimulatedCrash from the disk crashes
        it inside a storage call."""
        if not self.up or not self.node.has_ready():
            return None
        rd = self.node.ready()
        sent: list[Message] = []
        effects = self.core.handle_ready(rd)
        try:
            for effect in effects:
                if crash_before is not None and crash_before(effect):
                    raise SimulatedCrash(f"before {type(effect).__name__}")
                if type(effect) is Persist:
                    self.storage.save(effect.entries, effect.hard_state, effect.snapshot)
                    if effect.entries and self.on_persist_entries is not None:
                        self.on_persist_entries(self, list(effect.entries))
                elif type(effect) is Send:
                    sent = effect.messages
                elif type(effect) is TakeSnapshot:
                    self.storage.create_snapshot(effect.index, effect.conf, effect.data)
                elif type(effect) is Compact:
                    self.storage.compact(effect.index)
                else:
                    assert type(effect) is Pause, effect
        except SimulatedCrash:
            effects.close()
            self.crash()
            self.crashed_mid_ready = True
        else:
            self.crashed_mid_ready = False
            self.read_states.extend(rd.read_states)
        rd.messages = sent
        return rd


class Cluster:
    """Synchronous message passing between SimNodes with per-link cuts, for hand-built scenarios."""

    def __init__(self, size: int = 3, ids: Iterable[int] | None = None, seed: int = 1, **config: object) -> None:
        self.ids = list(ids) if ids is not None else list(range(1, size + 1))
        self.nodes: dict[int, SimNode] = {}
        for i in self.ids:
            self.nodes[i] = SimNode(i, tuple(self.ids), seed=seed, **config)
        self.cut_links: set[tuple[int, int]] = set()
        self.dropped: list[Message] = []
        self.delivered: list[Message] = []
        self.filter: Callable[[Message], bool] | None = None  # return False to drop
        self.stabilize()

    def __getitem__(self, node_id: int) -> RaftNode:
        return self.nodes[node_id].node

    def add_node(self, node_id: int, seed: int = 1, **config: object) -> SimNode:
        node = SimNode(node_id, (), seed=seed, **config)
        self.nodes[node_id] = node
        return node

    def isolate(self, node_id: int) -> None:
        for other in self.nodes:
            if other != node_id:
                self.cut_links.add((node_id, other))
                self.cut_links.add((other, node_id))

    def cut(self, a: int, b: int) -> None:
        self.cut_links.update({(a, b), (b, a)})

    def heal(self) -> None:
        self.cut_links.clear()

    def crash(self, node_id: int) -> None:
        self.nodes[node_id].crash()

    def restart(self, node_id: int) -> None:
        self.nodes[node_id].start()

    def _connected(self, m: Message) -> bool:
        dest = self.nodes.get(m.to)
        return dest is not None and dest.up and (m.frm, m.to) not in self.cut_links

    def stabilize(self, max_rounds: int = 1000) -> None:
        """Deliver messages until none are left (every node's Ready processed)."""
        for _ in range(max_rounds):
            outbox: list[Message] = []
            for node in self.nodes.values():
                rd = node.process_ready()
                if rd is not None:
                    outbox.extend(rd.messages)
            if not outbox:
                return
            for m in outbox:
                if (self.filter is not None and not self.filter(m)) or not self._connected(m):
                    self.dropped.append(m)
                    if m.type == MessageType.SNAPSHOT and self.nodes[m.frm].up:
                        self.nodes[m.frm].node.report_snapshot(m.to, False)
                    continue
                self.delivered.append(m)
                self.nodes[m.to].node.step(m)
                if m.type == MessageType.SNAPSHOT and self.nodes[m.frm].up:
                    self.nodes[m.frm].node.report_snapshot(m.to, True)
        raise AssertionError("cluster did not stabilize")

    def tick(self, n: int = 1) -> None:
        for _ in range(n):
            for node in self.nodes.values():
                if node.up:
                    node.node.tick()
            self.stabilize()

    def elect(self, node_id: int) -> None:
        # A node behind in term loses its first attempt (and learns the term); a few tries suffice.
        for _ in range(5):
            self.nodes[node_id].node.campaign()
            self.stabilize()
            if self[node_id].role is Role.LEADER:
                break
        assert self[node_id].role is Role.LEADER, f"node {node_id} did not win: {self[node_id].status()}"

    def leader(self) -> int:
        leaders = [i for i, n in self.nodes.items() if n.up and n.node.role is Role.LEADER]
        return max(leaders, key=lambda i: self[i].term) if leaders else 0

    def propose(self, node_id: int, data: bytes) -> int:
        index = self[node_id].propose(data)
        self.stabilize()
        return index
