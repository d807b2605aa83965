"""The asyncio driver: runs the pure Raft core with a real clock, durable storage and a transport.

Theory of operation
-------------------
One `RaftDriver` per node. It owns one runner task holding a TaskGroup with two tasks: the *ticker*
(counts clock ticks every `tick_interval` seconds) and the *loop* (the only code that touches the
core). The transport is started once the loop runs and stopped with the driver. Everything that
reaches the core from outside -- a peer's message, a tick, a proposal, a read, a transfer request,
an unreachable or snapshot report -- is put into one inbox and the loop is woken. Incoming messages
estimated larger than `max_message_bytes` are dropped and counted (`stats`). The loop then, in order:

1. feeds the core everything in the inbox (`tick`, `step`, `propose`, ...), answering a proposal the
   core refuses at once (`NotLeader`, `ProposalTooLarge`, `ProposalDropped`);
2. while `has_ready()`: takes a `Ready` and runs it through `DriverCore.handle_ready`
   (swarmpy/raft/driver_core.py), the one implementation of the contract in `swarmpy/raft/__init__.py`,
   which the deterministic simulator also runs. The core decides and yields the I/O; this driver
   performs it: the `Persist` (one `DiskStorage.save`, one fsync) in a worker thread with
   `asyncio.to_thread` on purpose so the event loop (and the transport) keeps running while the disk
   works (a save that only moves the commit index needs no I/O -- see `DiskStorage.defers` -- and runs
   inline); only then the `Send` through the transport; the core then applies the committed entries
   (yielding `Pause` every 64 so reads and heartbeats are served during a large batch), answers
   proposals and reads, calls `advance`, and asks for `TakeSnapshot` and `Compact` when
   `snapshot_interval` entries were applied since the last snapshot.

Whatever arrives while the loop waits for the disk collects in the inbox and goes into the next
Ready: that is the group commit that makes pipelined proposals cheap.

A proposal's future is keyed by the (index, term) the core gave it. It resolves with the state
machine's return value when that index is applied with that term; it fails with `LeadershipLost`
when a different entry is applied at that index, or when this node stops being leader (soft_state)
-- the entry may still commit later, which is exactly what `LeadershipLost` says. A read waits for
a ReadState carrying its context, then for applied >= its index.

Leadership changes are announced to listeners (`add_leadership_listener`) and through
`wait_for_leader()`, so managers can start and stop leader-only loops.

Stopping cancels the TaskGroup: every task the driver started is cancelled and awaited, pending
futures fail with `LeadershipLost` (proposals) or `Unavailable` (reads), and storage is closed. If
the loop dies of an error (a storage failure, say), `failure` keeps it, everything waiting fails with
`Unavailable`, and further requests are refused with `Unavailable`.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Protocol

from . import errors
from .core import Config, RaftNode
from .driver_core import (  # noqa: F401 -- ApplyResult, StateMachine, DriverStats are this module's API too
    ApplyResult,
    Compact,
    DriverCore,
    DriverStats,
    LeadershipListener,
    Pause,
    Persist,
    Send,
    StateMachine,
    TakeSnapshot,
)
from .messages import NONE, ConfChange, HardState, Message, MessageType, Role
from .transport import Transport
from .wal import DiskStorage

log = logging.getLogger(__name__)

MIB = 1 << 20

# A tick this many periods late means the event loop was starved; see RaftDriver._ticker.
STALL_TICKS = 3
# A leader whose loop has not ticked the core for this many ticks is kept alive by keepalive_heartbeats.
KEEPALIVE_AFTER_TICKS = 2


class ConfChangeObserver(Protocol):
    """Optional: a state machine that also wants to see applied membership changes."""

    def on_conf_change(self, index: int, change: ConfChange) -> None: ...


@dataclass(slots=True)
class DriverConfig:
    """Defaults are swarmkit's (see /work/shared/reference/raft.md), except pre_vote and the tick: swarmkit
    ticks every second (an election 10-20 s after the leader died); etcd's 100 ms gives 1-2 s."""

    tick_interval: float = 0.1  # seconds per tick
    heartbeat_tick: int = 1
    election_tick: int = 10
    max_size_per_msg: int = 65_535  # bytes of entries per APPEND message
    max_inflight_msgs: int = 256
    max_proposal_bytes: int = 4 * MIB
    max_message_bytes: int = 4 * MIB  # incoming messages estimated larger than this are dropped and counted
    # A snapshot may be far larger than one message: transports stream it in chunks (raftnet does). This
    # bounds what a driver accepts whole.
    max_snapshot_bytes: int = 1024 * MIB
    check_quorum: bool = True
    # swarmkit runs with PreVote off. Without it a follower whose log lags (common right after a
    # leader crash) wins the race to time out, bumps the term, resets the up-to-date follower's
    # timer and loses; bench/raft_bench.py measured leader failover at up to 9.9 election timeouts
    # that way, and at most ~2 with pre-vote. It costs one extra round trip per election.
    pre_vote: bool = True
    # A joining manager is a learner until its log is within this many entries of the leader's; only then
    # may it be promoted to a voter (core.Config.max_learner_lag).
    max_learner_lag: int = 64
    snapshot_interval: int = 10_000  # applied entries between snapshots
    log_entries_for_slow_followers: int = 500  # entries kept behind a snapshot when compacting
    # How long a leader's heartbeats may be sent from outside its starved loop (keepalive_heartbeats).
    keepalive_limit: float = 10.0


def estimated_message_bytes(message: Message) -> int:
    size = 64 + len(message.context)
    for entry in message.entries:
        size += 24 + len(entry.data)
    if message.snapshot is not None:
        size += 64 + len(message.snapshot.data) + 8 * (len(message.snapshot.meta.conf.voters) + len(message.snapshot.meta.conf.learners))
    return size


class RaftDriver:
    """Runs one Raft node. See the module docstring for how."""

    def __init__(
        self,
        node_id: int,
        peers: list[int] | tuple[int, ...],
        storage: DiskStorage,
        transport: Transport,
        state_machine: StateMachine,
        config: DriverConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.node_id = node_id
        self.peers = tuple(peers)
        self.storage = storage
        self.transport = transport
        self.state_machine = state_machine
        self.config = config or DriverConfig()
        self.rng = rng
        self.stats = DriverStats()
        self.node: RaftNode | None = None
        self.core: DriverCore | None = None  # the driver contract's decisions (swarmpy/raft/driver_core.py)
        self._inbox: collections.deque[tuple[Any, ...]] = collections.deque()
        self._wakeup = asyncio.Event()
        self._pending_ticks = 0
        self._read_ids = itertools.count(1)
        self._leadership_listeners: list[LeadershipListener] = []
        self._leader_changed = asyncio.Condition()
        self._task_group: asyncio.TaskGroup | None = None
        self._runner: asyncio.Task[None] | None = None
        self._started = asyncio.Event()
        self.failure: BaseException | None = None  # set if the loop died of an unexpected error
        # Read by another thread (keepalive_heartbeats): replaced whole, never changed in place.
        self._leading: tuple[int, tuple[int, ...]] | None = None  # (term, peers) while this node leads
        self._last_tick = time.monotonic()

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Recover from storage, start the loop, the ticker and the transport. Returns once running.

        A driver runs once: after stop() (which closes the storage) make a new one over a new DiskStorage.
        """
        if self.node is not None:
            raise RuntimeError("a RaftDriver runs once; create a new one to restart the node")
        self.node = self._make_node()
        self.core = DriverCore(
            self.node,
            self.storage,
            self.state_machine,
            self.config.snapshot_interval,
            self.config.log_entries_for_slow_followers,
            on_leadership_change=self._on_leadership_change,
            stats=self.stats,
        )
        snap = self.storage.snapshot()
        if not snap.empty:
            self.state_machine.restore(snap.data)
            self.stats.snapshots_restored += 1
        self.transport.bind(self.node_id, self)
        self._runner = asyncio.create_task(self._run(), name=f"raft-driver-{self.node_id:x}")
        await self._started.wait()
        try:
            await self.transport.start()
        except BaseException:
            await self.stop()
            raise

    def _make_node(self) -> RaftNode:
        snap = self.storage.snapshot()
        hard_state, _ = self.storage.initial_state()
        fresh = self.storage.last_index() == 0 and snap.empty and hard_state == HardState()
        cfg = self.config
        return RaftNode(
            Config(
                id=self.node_id,
                peers=self.peers if fresh else (),  # founding members bootstrap; a restart reads storage
                election_tick=cfg.election_tick,
                heartbeat_tick=cfg.heartbeat_tick,
                max_size_per_msg=cfg.max_size_per_msg,
                max_inflight_msgs=cfg.max_inflight_msgs,
                max_proposal_bytes=cfg.max_proposal_bytes,
                check_quorum=cfg.check_quorum,
                pre_vote=cfg.pre_vote,
                max_learner_lag=cfg.max_learner_lag,
                applied=snap.meta.index,
                rng=self.rng,
            ),
            self.storage,
        )

    async def stop(self) -> None:
        """Cancel and await every task the driver owns; fail what is pending; close the storage."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._leading = None
        runner.cancel()
        try:
            await runner
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        finally:
            await self.transport.stop()
            self._fail_everything_pending(errors.LeadershipLost("the node stopped"))
            await asyncio.to_thread(self.storage.close)

    async def _run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                self._task_group = group
                group.create_task(self._ticker(), name=f"raft-ticker-{self.node_id:x}")
                group.create_task(self._loop(), name=f"raft-loop-{self.node_id:x}")
                self._started.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the loop died: keep the reason, fail everything waiting on it
            while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
                exc = exc.exceptions[0]
            log.error("node %x: raft driver failed", self.node_id, exc_info=exc)
            self._leading = None  # a dead leader must not go on holding its followers off elections
            self.failure = exc
            self._fail_everything_pending(errors.Unavailable(f"the raft driver failed: {exc!r}"))
        finally:
            self._task_group = None
            self._started.set()

    async def _ticker(self) -> None:
        """Counts ticks from the monotonic clock. A tick a little late is caught up; a wake-up more than
        STALL_TICKS late means this process's event loop was starved (a long callback, swapping, a
        stopped process), not that the peers were silent -- their messages wait unread in the socket
        buffers -- so the missed ticks are dropped (counted in `stats.stalls`) and the core sees one:
        a starved follower does not start an election, nor a starved leader step down, for it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            interval = self.config.tick_interval  # read every time: retune() may change it
            deadline += interval
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            late = loop.time() - deadline
            if late > STALL_TICKS * interval:
                self.stats.stalls += 1
                self.stats.longest_stall = max(self.stats.longest_stall, late)
                log.warning("node %x: event loop starved for %.2f s; not counting the missed ticks", self.node_id, late)
                deadline = loop.time()
            self._pending_ticks += 1
            self._wakeup.set()

    def retune(self, tick_interval: float, heartbeat_tick: int, election_tick: int) -> None:
        """Run with new timing from now on (the cluster's Raft config changed). The caller checked the
        values. The next tick comes on the new period; the core's randomised timeout takes the new
        election tick at its next reset, and the election clock restarts so that a change that reaches
        this node before the leader's cannot make it campaign at once."""
        if (tick_interval, heartbeat_tick, election_tick) == (
            self.config.tick_interval, self.config.heartbeat_tick, self.config.election_tick
        ):
            return
        self.config.tick_interval = tick_interval
        self.config.heartbeat_tick = heartbeat_tick
        self.config.election_tick = election_tick
        if self._task_group is not None:
            self._inbox.append(("retune",))
            self._wakeup.set()
        log.info("node %x: raft timing now tick %.3f s, heartbeat %d ticks, election %d ticks",
                 self.node_id, tick_interval, heartbeat_tick, election_tick)

    # ---------------------------------------------------------------- the transport's side (MessageHandler)

    def receive(self, message: Message) -> None:
        if self._task_group is None:
            return  # not running (stopped, or failed): nothing would ever take it out of the inbox
        limit = (
            self.config.max_snapshot_bytes if message.type == MessageType.SNAPSHOT else self.config.max_message_bytes
        )
        if estimated_message_bytes(message) > limit:
            self.stats.oversized_messages_dropped += 1
            log.warning("node %x: dropped an oversized %s from %x", self.node_id, message.type.name, message.frm)
            return
        self.stats.messages_received += 1
        self._inbox.append(("step", message))
        self._wakeup.set()

    def report_unreachable(self, node_id: int) -> None:
        if self._task_group is None:
            return
        self._inbox.append(("unreachable", node_id))
        self._wakeup.set()

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        if self._task_group is None:
            return
        self._inbox.append(("snapshot_status", node_id, ok))
        self._wakeup.set()

    # ---------------------------------------------------------------- the application's side

    def set_snapshot_policy(self, snapshot_interval: int, log_entries_for_slow_followers: int) -> None:
        """A runtime change (swarm update): the running core takes it at once, the config keeps it for
        a restart. The core holds its own copy, so setting `config` alone would not reach it."""
        self.config.snapshot_interval = snapshot_interval
        self.config.log_entries_for_slow_followers = log_entries_for_slow_followers
        if self.core is not None:
            self.core.snapshot_interval = snapshot_interval
            self.core.log_entries_for_slow_followers = log_entries_for_slow_followers

    @property
    def applied(self) -> int:
        return self.core.applied if self.core is not None else 0

    @property
    def leader(self) -> int:
        return self.core.leader if self.core is not None else NONE

    @property
    def role(self) -> Role:
        return self.core.role if self.core is not None else Role.FOLLOWER

    @property
    def is_leader(self) -> bool:
        return self.role == Role.LEADER

    @property
    def running(self) -> bool:
        return self._runner is not None and not self._runner.done()

    async def propose(self, data: bytes) -> ApplyResult:
        """Replicate `data`; return once it is committed and applied here, with the state machine's answer.

        Raises NotLeader at once if this node is not the leader, ProposalTooLarge/ProposalDropped if the
        core refuses it, LeadershipLost if leadership is lost before it is applied.
        """
        return await self._submit("propose", data)

    async def propose_conf_change(self, change: ConfChange) -> ApplyResult:
        """Propose a membership change; returns once it is applied (its `result` is the new ConfState)."""
        return await self._submit("propose_conf_change", change)

    async def _submit(self, kind: str, payload: Any) -> ApplyResult:
        self._check_running()
        if not self.is_leader:
            raise errors.NotLeader(self.leader)
        future: asyncio.Future[ApplyResult] = asyncio.get_running_loop().create_future()
        self._inbox.append((kind, payload, future))
        self._wakeup.set()
        return await future

    async def read_index(self) -> int:
        """A linearizable read barrier: returns (the read index) once this node has applied up to it."""
        self._check_running()
        context = b"r%d" % next(self._read_ids)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        core = self.core
        assert core is not None
        core.register_read(context, future)
        self._inbox.append(("read_index", context))
        self._wakeup.set()
        try:
            return await future
        finally:
            core.forget_read(context)

    async def transfer_leadership(self, target: int, timeout: float | None = None) -> None:
        """Hand leadership to `target`; returns once `target` is the known leader."""
        self._check_running()
        if not self.is_leader:
            raise errors.NotLeader(self.leader)
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inbox.append(("transfer", target, started))
        self._wakeup.set()
        await started  # TransferRefused / NotLeader from the core surface here
        if timeout is None:
            timeout = 2 * self.config.election_tick * self.config.tick_interval
        try:
            async with asyncio.timeout(timeout):
                async with self._leader_changed:
                    await self._leader_changed.wait_for(lambda: self.leader == target)
        except TimeoutError:
            raise errors.Unavailable(f"leadership did not move to {target:x} within {timeout:.2f} s") from None

    def add_leadership_listener(self, listener: LeadershipListener) -> None:
        """Call `listener(is_leader, leader_id)` on every change of leader or role (on the event loop)."""
        self._leadership_listeners.append(listener)

    def remove_leadership_listener(self, listener: LeadershipListener) -> None:
        self._leadership_listeners.remove(listener)

    async def wait_for_leader(self) -> int:
        """Wait until some leader is known; return its id."""
        async with self._leader_changed:
            await self._leader_changed.wait_for(lambda: self.leader != NONE)
        return self.leader

    def status(self) -> Any:
        return self.node.status() if self.node is not None else None

    def _check_running(self) -> None:
        if not self.running:
            raise errors.Unavailable(
                "the raft driver is not running" + (f" (it failed: {self.failure!r})" if self.failure else "")
            )

    # ---------------------------------------------------------------- the loop (the only code touching the core)

    async def _loop(self) -> None:
        node = self.node
        assert node is not None
        restarting_alone = True
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            self._feed_core(node)
            while node.has_ready():
                await self._handle_ready(node.ready())
                self._feed_core(node)  # what arrived while the disk worked goes into the next Ready
            self._publish_leading(node)
            if restarting_alone:
                restarting_alone = self._campaign_if_sole_voter(node)

    def _campaign_if_sole_voter(self, node: RaftNode) -> bool:
        """A restarted single-member cluster elects itself at once instead of after a whole election
        timeout (10 s by default): nobody else can lead, so waiting only delays the swarm. Returns
        whether to check again (the membership is known only once the log is applied)."""
        status = node.status()
        if status.applied < status.commit:
            return True
        if status.voters == (self.node_id,) and status.role is not Role.LEADER:
            node.campaign()
            self._wakeup.set()
        return False

    def _feed_core(self, node: RaftNode) -> None:
        # Messages before ticks: a heartbeat (or its answer) that arrived with a late tick counts first.
        self._feed_inbox(node)
        ticks, self._pending_ticks = self._pending_ticks, 0
        if ticks:
            self._last_tick = time.monotonic()
        for _ in range(ticks):
            node.tick()

    def _feed_inbox(self, node: RaftNode) -> None:
        inbox, core = self._inbox, self.core
        assert core is not None
        while inbox:
            item = inbox.popleft()
            kind = item[0]
            if kind == "step":
                core.step(item[1])
            elif kind == "propose" or kind == "propose_conf_change":
                core.propose(kind, item[1], item[2])
            elif kind == "read_index":
                core.read(item[1])
            elif kind == "unreachable":
                node.report_unreachable(item[1])
            elif kind == "snapshot_status":
                node.report_snapshot(item[1], item[2])
            elif kind == "transfer":
                core.transfer(item[1], item[2])
            elif kind == "retune":
                node.set_timing(self.config.heartbeat_tick, self.config.election_tick)
            else:
                raise AssertionError(f"unknown inbox item {kind!r}")

    async def _handle_ready(self, rd: Any) -> None:
        """Run the core's effects for one Ready (driver_core.DriverCore.handle_ready): disk writes in a
        worker thread on purpose, so the event loop (and the transport) keeps running while the disk works;
        a save that only moves the commit index does no I/O and runs inline."""
        core, storage = self.core, self.storage
        assert core is not None
        for effect in core.handle_ready(rd):
            if type(effect) is Persist:
                if effect.deferred:
                    storage.save(effect.entries, effect.hard_state, effect.snapshot)
                else:
                    await asyncio.to_thread(storage.save, effect.entries, effect.hard_state, effect.snapshot)
            elif type(effect) is Send:
                await self.transport.send(effect.messages)
            elif type(effect) is Pause:
                await asyncio.sleep(0)
            elif type(effect) is TakeSnapshot:
                await asyncio.to_thread(storage.create_snapshot, effect.index, effect.conf, effect.data)
            elif type(effect) is Compact:
                await asyncio.to_thread(storage.compact, effect.index)
            else:
                raise AssertionError(f"unknown effect {effect!r}")

    def _publish_leading(self, node: RaftNode) -> None:
        if node.role is not Role.LEADER:
            self._leading = None
            return
        # On every loop pass: the term and membership only, not status()'s per-peer progress records.
        peers = tuple(sorted(p for p in node.voters | node.learners if p != self.node_id))
        if self._leading != (node.term, peers):
            self._leading = (node.term, peers)

    def keepalive_heartbeats(self, now: float) -> list[Message]:
        """Thread-safe: the heartbeats to send now from outside the event loop (raftnet.keepalive) --
        none unless this node leads and its loop has not ticked the core for KEEPALIVE_AFTER_TICKS ticks,
        and none once that silence exceeds `keepalive_limit`. Commit 0 and no context: they only tell the
        followers that the leader of this term lives; everything else stays the core's."""
        leading = self._leading
        silent = now - self._last_tick
        if leading is None or silent < KEEPALIVE_AFTER_TICKS * self.config.tick_interval:
            return []
        if silent > self.config.keepalive_limit:
            return []
        term, peers = leading
        return [Message(type=MessageType.HEARTBEAT, to=p, frm=self.node_id, term=term) for p in peers]

    def _on_leadership_change(self, is_leader: bool, leader: int) -> None:
        if not is_leader:
            self._leading = None  # first: the keep-alive thread must stop speaking for this term at once
        for listener in list(self._leadership_listeners):
            listener(is_leader, leader)
        self._notify_leader_changed()

    def _notify_leader_changed(self) -> None:
        async def notify() -> None:
            async with self._leader_changed:
                self._leader_changed.notify_all()

        if self._task_group is not None:
            self._task_group.create_task(notify())

    # ---------------------------------------------------------------- failing what waits

    def _fail_everything_pending(self, error: errors.RaftError) -> None:
        if self.core is not None:
            self.core.fail_proposals(error)
            self.core.fail_reads(errors.Unavailable(str(error)))
        while self._inbox:
            item = self._inbox.popleft()
            if item[0] in ("propose", "propose_conf_change", "transfer") and not item[2].done():
                item[2].set_exception(error)
