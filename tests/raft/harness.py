"""A model driver and a hand-steered cluster for testing the Raft core.

`SimNode` follows the driver contract of swarmpy/raft/__init__.py to the letter: persist the
snapshot, entries and hard state into a MemoryStorage (the node's "disk"), then send, then apply,
then advance. `crash()` throws away everything but that storage, exactly what a real crash loses.

`Cluster` moves messages synchronously between SimNodes, with per-link cuts, for unit tests that
want to set up one precise scenario (the simulator in simulator.py adds randomness on top).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterable

from swarmpy.raft.core import Config, RaftNode
from swarmpy.raft.messages import Entry, EntryType, Message, MessageType, Ready, Role
from swarmpy.raft.storage import MemoryStorage


def encode_app_state(payloads: list[bytes]) -> bytes:
    return b"".join(struct.pack(">I", len(p)) + p for p in payloads)


def decode_app_state(data: bytes) -> list[bytes]:
    payloads, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        payloads.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return payloads


class SimNode:
    """One server: a RaftNode, its durable MemoryStorage, and a toy application (a list of payloads)."""

    def __init__(
        self,
        node_id: int,
        peers: tuple[int, ...],
        seed: int = 0,
        snapshot_every: int = 0,
        keep_after_compaction: int = 0,
        **config: object,
    ) -> None:
        self.id = node_id
        self.founding_peers = peers
        self.storage = MemoryStorage()
        self.config_overrides = config
        self.seed = seed
        self.incarnation = 0
        self.snapshot_every = snapshot_every
        self.keep_after_compaction = keep_after_compaction
        self.up = False
        self.node: RaftNode
        self.app: list[bytes] = []  # applied NORMAL non-empty payloads, in order
        self.app_index = 0
        self.read_states: list = []  # every ReadState this node emitted (all incarnations)
        # Hooks the simulator uses to check invariants as they happen.
        self.on_persist_entries: Callable[[SimNode, list[Entry]], None] | None = None
        self.on_apply: Callable[[SimNode, Entry], None] | None = None
        self.start()

    def _config(self, peers: tuple[int, ...], applied: int) -> Config:
        rng = random.Random(self.seed * 1_000_003 + self.id * 7919 + self.incarnation)
        return Config(id=self.id, peers=peers, applied=applied, rng=rng, **self.config_overrides)  # type: ignore[arg-type]

    def start(self) -> None:
        """Start (or restart) from the durable storage alone."""
        self.incarnation += 1
        empty = self.storage.last_index() == 0 and self.storage.snapshot().empty
        snapshot = self.storage.snapshot()
        if empty and self.founding_peers:
            # A founding member that never persisted anything bootstraps again, as a driver would.
            self.node = RaftNode(self._config(self.founding_peers, 0), self.storage)
        else:
            self.node = RaftNode(self._config((), snapshot.meta.index), self.storage)
        # The application's state is volatile too: it comes back from the snapshot.
        self.app = decode_app_state(snapshot.data) if not snapshot.empty else []
        self.app_index = snapshot.meta.index
        self.up = True

    def crash(self) -> None:
        self.up = False

    def process_ready(self, crash_after_persist: bool = False) -> Ready | None:
        """One turn of the driver loop. Returns the Ready (its messages are the caller's to deliver)."""
        if not self.up or not self.node.has_ready():
            return None
        rd = self.node.ready()
        # 1. persist: snapshot, entries, hard state
        if rd.snapshot is not None:
            self.storage.apply_snapshot(rd.snapshot)
        if rd.entries:
            self.storage.append(rd.entries)
            if self.on_persist_entries is not None:
                self.on_persist_entries(self, rd.entries)
        if rd.hard_state is not None:
            self.storage.set_hard_state(rd.hard_state)
        if crash_after_persist:
            self.crash()
            rd.messages = []
            return rd
        # 2. send: the caller delivers rd.messages
        # 3. apply
        if rd.snapshot is not None:
            self.app = decode_app_state(rd.snapshot.data)
            self.app_index = rd.snapshot.meta.index
        for entry in rd.committed_entries:
            if entry.index <= self.app_index:
                continue
            if entry.type is EntryType.NORMAL and entry.data:
                self.app.append(entry.data)
            self.app_index = entry.index
            if self.on_apply is not None:
                self.on_apply(self, entry)
        self.read_states.extend(rd.read_states)
        self.node.advance(rd)
        self._maybe_snapshot()
        return rd

    def _maybe_snapshot(self) -> None:
        if not self.snapshot_every:
            return
        applied = self.node.log.applied
        snap_index = self.storage.snapshot().meta.index
        if applied - snap_index < self.snapshot_every or applied > self.storage.last_index():
            return
        self.storage.create_snapshot(applied, self.node.conf_state(), encode_app_state(self.app))
        compact_to = applied - self.keep_after_compaction
        if compact_to >= self.storage.first_index():
            self.storage.compact(compact_to)


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
