"""The leader's end of the wire to every node: sessions, heartbeats, task status, assignments, log streams.

Theory of operation
-------------------
One Dispatcher runs on the Raft leader (the lead's wiring starts `run()` on election and cancels it on
loss; a DispatcherGate answers for it everywhere else). It is a reconcile loop like the others: it reads
the store, watches it and writes node status and task status into it, and it calls no other subsystem.

Sessions. A node opens a Session stream; its node ID comes from its certificate (the injectable
`identify`), never from the request. The dispatcher records a session, writes the node READY with the
description the node sent and the address the call came from, and sends the session ID, the node, the
managers (nodes with a manager_status) and the root CA certificate; later messages on the stream carry
new manager lists. A Session call naming the node's current session resumes it (the agent uses this to
push a new description) and supersedes the older stream without disturbing the session's other streams.

Heartbeats. Each Heartbeat answers with the period until the next one (the cluster's, ± 10% jitter) and
moves the node's deadline to GRACE_MULTIPLIER periods ahead. A node past its deadline is written DOWN
("heartbeat failure") and its session ends: every stream of it closes and its calls are refused until it
opens a new session, which writes it READY again (always with a write, even if the node still looks
READY: a DOWN write already on its way through Raft then conflicts with it and one of the two is retried).
A Session stream that breaks without the session ending (the node's process died, its connection was reset)
brings the deadline to `session_break_grace` (2 s) ahead, so a dead node is DOWN in seconds unless it
reconnects or heartbeats meanwhile; a silent partition breaks nothing and still waits the whole grace, as
do streams that break in a burst (liveness.BreakBursts). Every deadline is kept on a clock that stands still
while this manager's event loop is not running (liveness.LoopClock): a heartbeat or reconnect that waited
behind bulk work on a starved loop is not late for it. When the dispatcher starts, every node not already DOWN
is written UNKNOWN and given one grace period to open a session; only those that do not are marked DOWN,
each at its own deadline. The orchestrators replace the tasks of DOWN nodes; the dispatcher only writes
the node's status.

Task status. Reports are accepted only for tasks assigned to the caller (others are refused and logged)
and go through a TaskStatusBatcher: observed state only moves forward, and many reports become one
store proposal.

Assignments. The first message is COMPLETE: every task on the node's tasks_by_node index that it should
know (rules.should_know). Then the task changes of its node, routed to it by the dispatcher's one task
watch (routing.TaskRouter, so a write costs the same whatever the number of nodes) and gathered over a
short window, become INCREMENTAL messages: UPDATE for a task that is new to the node or changed (ignoring status, which the node itself
reported), REMOVE for a known task deleted, moved away or no longer to be known. The secrets and configs
those tasks use ride in the same messages (dependencies.py): added before the tasks, removed after.

Logs. LogSubscriptions and PublishLogs are the node's side of the LogBroker (swarmpy.manager.logbroker),
which the controlapi's ServiceLogs drives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from swarmpy.aio import unless_set
from swarmpy.api import dispatcher_pb2, dispatcher_pb2_grpc, objects_pb2
from swarmpy.ca.rotation import trust_bundle
from swarmpy.identity import new_id
from swarmpy.manager.store import Change, Commit, Conflict, retry_conflicts
from swarmpy.manager.store.memory import MemoryStore, Transaction, clone
from swarmpy.raft.errors import LeadershipLost, NotLeader, ProposalDropped

from .dependencies import NodeDependencies
from .errors import DispatcherError, DispatcherStopped, RegistrationsThrottled, SessionInvalid, UnknownNode
from .liveness import BreakBursts, Deadlines, LoopClock, RegistrationPace
from .network_view import EVERY_NODE, TaskEndpoints, network_view_audience, node_network_view
from .rules import (
    GRACE_MULTIPLIER,
    apply_changes,
    assignment_changes,
    jittered_period,
    manager_peers,
    peer_host,
    should_know,
)
from .routing import Inbox, TaskRouter
from .status_batch import TaskStatusBatcher

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_HEARTBEAT_PERIOD = 5.0
UNKNOWN_MESSAGE = 'node moved to "unknown" state: a new leader waits for it to report in'


class Unauthenticated(DispatcherError):
    """The caller has no node certificate of this swarm: the caller's fault."""

    def __init__(self, reason: str, code: grpc.StatusCode = grpc.StatusCode.UNAUTHENTICATED) -> None:
        super().__init__(reason)
        self.code = code


def certificate_identity(context: grpc.aio.ServicerContext) -> str:
    """The calling node's ID, from the certificate checked by swarmpy.ca.authz.AuthorizationInterceptor."""
    from swarmpy.ca.authz import AccessDenied, caller_identity

    try:
        return caller_identity().node_id
    except AccessDenied as exc:
        raise Unauthenticated(exc.reason, exc.code) from exc


@dataclass
class DispatcherSettings:
    """Timings. The heartbeat period is the cluster's (spec.dispatcher.heartbeat_period) when it sets one."""

    heartbeat_period: float = DEFAULT_HEARTBEAT_PERIOD
    grace_multiplier: int = GRACE_MULTIPLIER
    status_flush_interval: float = 0.1
    status_max_pending: int = 10_000
    assignment_batch_window: float = 0.05
    # A node whose Session stream broke (its process died, its connection was reset) is DOWN this long
    # after, unless it opens or resumes a session or heartbeats: seconds, not the heartbeat grace.
    session_break_grace: float = 2.0
    # Sessions registered per second at most, in bursts of at most this many; a registration that would
    # wait longer than registration_max_wait is refused (UNAVAILABLE) and the node retries: liveness.RegistrationPace.
    registration_rate: float = 50.0
    registration_burst: int = 50
    registration_max_wait: float = 2.0
    # Deadlines are kept on a clock that stands still while this manager's event loop does not run
    # (liveness.LoopClock): ticked every loop_clock_interval, it counts at most loop_clock_slack seconds
    # between two ticks, so a node is not judged late for the time its heartbeat waited on a starved loop.
    loop_clock_interval: float = 0.05
    loop_clock_slack: float = 0.25


class _Pulse:
    """Wakes every waiter each time it fires; waiters re-check their own condition."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self) -> None:
        await self._event.wait()


def _complete_set(tasks: list[objects_pb2.Task]) -> list[dispatcher_pb2.AssignmentChange]:
    update = dispatcher_pb2.AssignmentChange.UPDATE
    return [dispatcher_pb2.AssignmentChange(task=task, action=update) for task in tasks if should_know(task)]


def _role_changed(old: objects_pb2.Node, new: objects_pb2.Node) -> bool:
    """Promotion, demotion and a CA rotation's call to renew (certificate status ROTATE) are carried out
    by the node itself, so it must hear of them at once."""
    return (old.spec.desired_role != new.spec.desired_role or old.role != new.role
            or old.certificate.status.state != new.certificate.status.state)


class _Session:
    def __init__(self, node_id: str, session_id: str, addr: str) -> None:
        self.node_id = node_id
        self.session_id = session_id
        self.addr = addr
        self.epoch = 0  # bumped when a newer Session stream resumes this session
        self.ended = asyncio.Event()
        self.end_reason: DispatcherError | None = None
        self.pulse = _Pulse()
        self.role_changed = False  # the node's role or desired role changed: tell it in a SessionMessage
        # The inboxes of this session's Assignments streams, woken when it ends: cheaper than racing each
        # wait against `ended` (two extra tasks per message per node).
        self.inboxes: set[Inbox] = set()

    def end(self, reason: DispatcherError) -> None:
        if self.ended.is_set():
            return
        self.end_reason = reason
        self.ended.set()
        self.pulse.fire()
        for inbox in self.inboxes:
            inbox.wake()

    def check(self) -> None:
        """Raise the reason the session ended, if it did."""
        if self.ended.is_set():
            assert self.end_reason is not None
            raise self.end_reason


class Dispatcher(dispatcher_pb2_grpc.DispatcherServicer):
    """See the module docstring. Serve it behind a DispatcherGate; run `run()` while this manager leads."""

    def __init__(
        self,
        store: MemoryStore,
        settings: DispatcherSettings | None = None,
        *,
        log_broker: Any = None,
        identify: Callable[[grpc.aio.ServicerContext], str] = certificate_identity,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._settings = settings or DispatcherSettings()
        self._log_broker = log_broker
        self._identify = identify
        self._rng = rng or random.Random()
        self._status = TaskStatusBatcher(store, self._settings.status_flush_interval, self._settings.status_max_pending)
        self._tasks = TaskRouter(store)
        self._endpoints = TaskEndpoints()  # shared by the streams' network views
        self._sessions: dict[str, _Session] = {}
        self._deadlines = Deadlines()
        self._clock = LoopClock(time.monotonic, self._settings.loop_clock_slack)
        self._breaks = BreakBursts()
        self._pace = RegistrationPace(
            self._settings.registration_rate, self._settings.registration_burst, self._settings.registration_max_wait
        )
        self._deadlines_moved = _Pulse()
        self._managers: list[dispatcher_pb2.WeightedPeer] = []
        self._running = False

    # ---------------------------------------------------------------- the leader-side loop

    async def run(self) -> None:
        view, watch = self._store.view_and_watch(["node", "cluster"])
        try:
            self._managers = manager_peers(view.nodes())
            self._tasks.open()
            self._running = True
            log.info("dispatcher started")
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._status.run())
                tg.create_task(self._tasks.run())
                tg.create_task(self._tick_clock())
                tg.create_task(self._expire_nodes())
                tg.create_task(self._follow_nodes(watch))
                tg.create_task(self._mark_nodes_unknown())
                tg.create_task(self._follow_network_changes())
        finally:
            self._running = False
            watch.close()
            self._tasks.close()
            for session in self._sessions.values():
                session.end(DispatcherStopped("this manager stopped dispatching (leadership moved?): reconnect"))
            self._sessions.clear()
            log.info("dispatcher stopped; its deadlines' clock stood still %.2f s in all while the loop did not run "
                     "(longest %.2f s)", self._clock.paused, self._clock.longest)

    async def _follow_network_changes(self) -> None:
        """Wake the Assignments streams whose node's network view a change may alter (every stream for
        most changes, only the node's own for a node change nobody else sees: network_view_audience);
        each stream then recomputes its own view and sends it if it differs from the last one sent."""
        with self._store.watch(["task", "service", "network", "node", "cluster"]) as watch:
            while True:
                events = [await watch.get(), *watch.drain()]
                view = self._store.view()
                audience: set[str] | None = set()
                for event in events:
                    if isinstance(event, Commit):
                        if event.index == 0:
                            audience = EVERY_NODE
                    else:
                        wanted = network_view_audience(view, event.kind, event.old, event.new)
                        audience = EVERY_NODE if wanted is EVERY_NODE else audience | wanted
                    if audience is EVERY_NODE:
                        break
                if audience is EVERY_NODE:
                    self._tasks.wake_all()
                elif audience:
                    self._tasks.wake(audience)

    def heartbeat_period(self) -> float:
        cluster = self._store.view().get_cluster()
        if cluster is not None and cluster.spec.dispatcher.heartbeat_period > 0:
            return cluster.spec.dispatcher.heartbeat_period / 1e9
        return self._settings.heartbeat_period

    def _grace(self) -> float:
        return self.heartbeat_period() * self._settings.grace_multiplier

    async def _mark_nodes_unknown(self) -> None:
        """Nodes the previous leader saw may or may not still be alive: each gets one grace period."""
        due = self._clock.now() + self._grace()
        candidates = [
            node.id
            for node in self._store.view().nodes()
            if node.status.state != objects_pb2.NodeStatus.DOWN and node.id not in self._sessions
        ]
        for node_id in candidates:
            if node_id not in self._deadlines:
                self._deadlines.set(node_id, due)
        self._deadlines_moved.fire()

        def stage(batch: Any) -> None:
            for node_id in candidates:
                node = batch.get_node(node_id)
                if node is None or node_id in self._sessions or node.status.state == objects_pb2.NodeStatus.DOWN:
                    continue
                updated = clone(node)
                updated.status.state = objects_pb2.NodeStatus.UNKNOWN
                updated.status.message = UNKNOWN_MESSAGE
                batch.update("node", updated)

        # A node that reported in (or was edited) meanwhile makes a Conflict; the retry re-reads.
        with contextlib.suppress(Conflict):
            await retry_conflicts(lambda: self._store.batch(stage), what="marking nodes unknown")

    async def _tick_clock(self) -> None:
        while True:
            await asyncio.sleep(self._settings.loop_clock_interval)
            paused = self._clock.tick()
            if paused > 1.0:
                log.info("event loop did not run for %.2f s: the nodes' deadlines are that much later", paused)

    async def _expire_nodes(self) -> None:
        while True:
            for node_id in self._deadlines.expired(self._clock.now()):
                session = self._sessions.pop(node_id, None)
                if session is not None:
                    session.end(SessionInvalid(node_id, session.session_id, "heartbeat failure"))
                    message = "heartbeat failure"
                else:
                    message = 'heartbeat failure for node in "unknown" state'
                log.info("node %s is down: %s", node_id, message)
                await self._write_down(node_id, message)
            next_due = self._deadlines.next_due()
            # Wall-clock seconds are never fewer than the loop clock's, so this wakes in time or early
            # (then the deadline is checked again on the loop clock).
            timeout = None if next_due is None else max(0.0, next_due - self._clock.now())
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation racing its timeout.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._deadlines_moved.wait()

    async def _write_down(self, node_id: str, message: str) -> None:
        def stage(tx: Transaction) -> None:
            node = tx.get_node(node_id)
            if node is None or node_id in self._sessions:  # removed, or back already
                return
            updated = clone(node)
            updated.status.state = objects_pb2.NodeStatus.DOWN
            updated.status.message = message
            tx.update("node", updated)

        await self._update_with_retries(stage, f"node {node_id}")

    async def _follow_nodes(self, watch: Any) -> None:
        # The manager list is recomputed (a pass over every node) only after a commit that changed a
        # manager's record: per commit, during 1,000 joins, it was thousands of passes over 1,000 nodes.
        managers_may_differ = False
        async for event in watch:
            if isinstance(event, Change) and event.kind == "node":
                managers_may_differ = managers_may_differ or any(
                    node is not None and (node.HasField("manager_status") or node.role == objects_pb2.MANAGER)
                    for node in (event.old, event.new)
                )
            if isinstance(event, Change) and event.kind == "cluster":
                if event.old is not None and event.new is not None and (
                    trust_bundle(event.old.root_ca) != trust_bundle(event.new.root_ca)
                ):
                    for session in self._sessions.values():  # a CA rotation began or ended: new roots to trust
                        session.role_changed = True
                        session.pulse.fire()
            elif isinstance(event, Change):
                if event.action == "remove":
                    node_id = event.old.id
                    self._deadlines.discard(node_id)
                    session = self._sessions.pop(node_id, None)
                    if session is not None:
                        session.end(UnknownNode(node_id))
                elif event.action == "update" and _role_changed(event.old, event.new):
                    session = self._sessions.get(event.new.id)
                    if session is not None:
                        session.role_changed = True
                        session.pulse.fire()
            elif isinstance(event, Commit) and (managers_may_differ or event.index == 0):
                managers_may_differ = False
                managers = manager_peers(self._store.view().nodes())
                if managers != self._managers:
                    self._managers = managers
                    for session in self._sessions.values():
                        session.pulse.fire()

    async def _update_with_retries(self, fn: Callable[[Transaction], T], what: str) -> T:
        try:
            return await retry_conflicts(lambda: self._store.update(fn), what=f"writing {what}")
        except Conflict:
            raise DispatcherStopped(f"could not write {what}: too many concurrent writers; retry") from None

    # ---------------------------------------------------------------- RPC plumbing

    @contextlib.asynccontextmanager
    async def _refusals(self, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        """Turn typed errors into gRPC statuses: whose fault it was decides the code."""
        try:
            yield
        except DispatcherError as exc:
            await context.abort(exc.code, str(exc))
        except (NotLeader, LeadershipLost, ProposalDropped) as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"not the leader: {exc}")

    def _require_running(self) -> None:
        if not self._running:
            raise DispatcherStopped()

    def _session_of(self, node_id: str, session_id: str) -> _Session:
        session = self._sessions.get(node_id)
        if session is None or session.session_id != session_id or session.ended.is_set():
            raise SessionInvalid(node_id, session_id, "no such session on this manager")
        return session

    async def _until_ended(self, session: _Session, awaitable: Awaitable[T]) -> T:
        """Await `awaitable`, or raise the session's end reason if it ends first."""
        raced = await unless_set(awaitable, session.ended)
        if raced.finished:
            return raced.value
        assert session.end_reason is not None
        raise session.end_reason

    # ---------------------------------------------------------------- Session and Heartbeat

    async def Session(self, request: dispatcher_pb2.SessionRequest, context: grpc.aio.ServicerContext):
        async with self._refusals(context):
            node_id = self._identify(context)
            self._require_running()
            if self._store.view().get_node(node_id) is None:
                raise UnknownNode(node_id)
            session = self._sessions.get(node_id)
            if session is not None and request.session_id == session.session_id and not session.ended.is_set():
                session.epoch += 1  # resumed: the older Session stream of this session bows out
                session.pulse.fire()
            else:
                await self._await_registration_slot(node_id)
                if session is not None:
                    session.end(SessionInvalid(node_id, session.session_id, "replaced by a newer session"))
                session = _Session(node_id, new_id(), peer_host(context.peer()))
                self._sessions[node_id] = session
                log.info("node %s opened session %s from %s", node_id, session.session_id, session.addr or "a local socket")
            self._deadlines.set(node_id, self._clock.now() + self._grace())
            self._deadlines_moved.fire()
            try:
                node = await self._register(session, request.description)
            except BaseException:
                if self._sessions.get(node_id) is session and session.epoch == 0:
                    del self._sessions[node_id]
                raise
            epoch = session.epoch
            managers = self._managers
            try:
                async for message in self._session_messages(session, epoch, node, managers):
                    yield message
            except asyncio.CancelledError:
                self._stream_broke(session, epoch)
                raise

    async def _await_registration_slot(self, node_id: str) -> None:
        """Pace new sessions (liveness.RegistrationPace). A node refused for now is alive -- it just called
        -- so its heartbeat deadline moves as if it had heartbeated: waiting its turn never makes it DOWN."""
        delay = self._pace.slot(time.monotonic())
        if delay is None:
            if node_id in self._deadlines:  # (a node with no deadline is DOWN already, or has none to keep)
                self._deadlines.set(node_id, max(self._deadlines.due(node_id, 0.0), self._clock.now() + self._grace()))
                self._deadlines_moved.fire()
            raise RegistrationsThrottled(node_id)
        if delay > 0:
            await asyncio.sleep(delay)
        self._require_running()

    def _stream_broke(self, session: _Session, epoch: int) -> None:
        """The node's Session stream went away without the session ending: unless the node is back within
        the short grace, its heartbeat deadline comes then (a silent partition still waits the full one)."""
        if self._sessions.get(session.node_id) is not session or session.epoch != epoch or session.ended.is_set():
            return
        if not self._breaks.few(self._clock.now(), len(self._sessions)):
            log.info("node %s: session stream broke among many (liveness.BreakBursts): heartbeat grace",
                     session.node_id)
            return
        due = self._clock.now() + self._settings.session_break_grace
        if due < self._deadlines.due(session.node_id, due + 1):
            self._deadlines.set(session.node_id, due)
            self._deadlines_moved.fire()
            log.info("node %s: session stream broke; down in %.1f s unless it is back", session.node_id,
                     self._settings.session_break_grace)

    async def _session_messages(self, session: _Session, epoch: int, node: objects_pb2.Node, managers: Any):
        node_id = session.node_id
        yield dispatcher_pb2.SessionMessage(
            session_id=session.session_id, node=node, managers=managers, root_ca=self._root_ca()
        )
        while True:
            while not (
                session.ended.is_set()
                or session.epoch != epoch
                or self._managers is not managers
                or session.role_changed
            ):
                await session.pulse.wait()
            session.role_changed = False
            if session.ended.is_set():
                assert session.end_reason is not None
                raise session.end_reason
            if session.epoch != epoch:
                return
            managers = self._managers
            node = self._store.view().get_node(node_id) or objects_pb2.Node(id=node_id)
            yield dispatcher_pb2.SessionMessage(
                session_id=session.session_id, node=node, managers=managers, root_ca=self._root_ca()
            )

    def _root_ca(self) -> bytes:
        cluster = self._store.view().get_cluster()
        return trust_bundle(cluster.root_ca) if cluster is not None else b""

    async def _register(self, session: _Session, description: objects_pb2.NodeDescription) -> objects_pb2.Node:
        def stage(tx: Transaction) -> objects_pb2.Node:
            node = tx.get_node(session.node_id)
            if node is None:
                raise UnknownNode(session.node_id)
            updated = clone(node)
            if description.ByteSize():
                updated.description.CopyFrom(description)
            updated.status.state = objects_pb2.NodeStatus.READY
            updated.status.message = ""
            updated.status.addr = session.addr
            # Written even when nothing seems to change: a DOWN (or UNKNOWN) write proposed before this
            # session opened may still be on its way through Raft. Both writes name the version read here,
            # so whichever applies second conflicts and is retried from a fresh read: the DOWN write then
            # sees the session and stands down, or this one sees DOWN and writes READY over it.
            tx.update("node", updated)
            return updated

        return await self._update_with_retries(stage, f"node {session.node_id}")

    async def Heartbeat(self, request: dispatcher_pb2.HeartbeatRequest, context: grpc.aio.ServicerContext):
        async with self._refusals(context):
            node_id = self._identify(context)
            self._require_running()
            self._session_of(node_id, request.session_id)
            period = jittered_period(int(self.heartbeat_period() * 1e9), self._rng)
            self._deadlines.set(node_id, self._clock.now() + period / 1e9 * self._settings.grace_multiplier)
            self._deadlines_moved.fire()
            return dispatcher_pb2.HeartbeatResponse(period=period)

    # ---------------------------------------------------------------- task status

    async def UpdateTaskStatus(self, request: dispatcher_pb2.UpdateTaskStatusRequest, context: grpc.aio.ServicerContext):
        async with self._refusals(context):
            node_id = self._identify(context)
            self._require_running()
            self._session_of(node_id, request.session_id)
            view = self._store.view()
            accepted = []
            for update in request.updates:
                task = view.get_task(update.task_id)
                if task is None:
                    log.debug("node %s reported on task %s, which no longer exists", node_id, update.task_id)
                    continue
                if task.node_id != node_id:
                    # A node may only speak for its own tasks; this is the caller's fault (or a forgery).
                    log.warning(
                        "refused status report from node %s for task %s, which is assigned to node %r",
                        node_id, update.task_id, task.node_id,
                    )
                    continue
                accepted.append((update.task_id, update.status))
            if accepted:
                await self._status.submit(node_id, accepted)
            return dispatcher_pb2.UpdateTaskStatusResponse()

    # ---------------------------------------------------------------- assignments

    async def Assignments(self, request: dispatcher_pb2.AssignmentsRequest, context: grpc.aio.ServicerContext):
        async with self._refusals(context):
            node_id = self._identify(context)
            self._require_running()
            session = self._session_of(node_id, request.session_id)
            tasks, inbox = self._tasks.subscribe(node_id)
            session.inboxes.add(inbox)
            dependencies = NodeDependencies()

            def with_dependencies(changes: list[dispatcher_pb2.AssignmentChange]) -> list[dispatcher_pb2.AssignmentChange]:
                before, after = dependencies.changes(self._store.view(), changes)
                return [*before, *changes, *after]

            sent_view = [b""]  # the network view last sent, serialized

            def network_view_if_changed(force: bool = False) -> dispatcher_pb2.NetworkView | None:
                current = node_network_view(self._store.view(), node_id, self._endpoints)
                encoded = current.SerializeToString(deterministic=True)
                if not force and encoded == sent_view[0]:
                    return None
                sent_view[0] = encoded
                return current

            try:
                known: dict[str, bytes] = {}
                changes = _complete_set(tasks)
                apply_changes(known, changes)
                sequence = str(self._store.applied_index)
                yield dispatcher_pb2.AssignmentsMessage(
                    type=dispatcher_pb2.AssignmentsMessage.COMPLETE, results_in=sequence, changes=with_dependencies(changes),
                    network_view=network_view_if_changed(force=True),
                )
                loop = asyncio.get_running_loop()
                last_sent = loop.time()
                while True:
                    await inbox.wait()
                    session.check()
                    # At most one message per window, counted from the last one sent: the changes of a
                    # burst share the next message, and a change after a quiet spell goes at once (a
                    # task's RUNNING waited a whole window on its way into the other nodes' DNS).
                    delay = last_sent + self._settings.assignment_batch_window - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                        session.check()
                    changed, resync = inbox.take()
                    if resync:  # the store was restored from a snapshot: start the node over
                        known.clear()
                        dependencies.reset()
                        changes = _complete_set(self._store.view().tasks_by_node(node_id))
                        apply_changes(known, changes)
                        sequence = str(self._store.applied_index)
                        yield dispatcher_pb2.AssignmentsMessage(
                            type=dispatcher_pb2.AssignmentsMessage.COMPLETE, results_in=sequence,
                            changes=with_dependencies(changes), network_view=network_view_if_changed(force=True),
                        )
                        last_sent = loop.time()
                        continue
                    changes = assignment_changes(node_id, known, changed)
                    network_view = network_view_if_changed()
                    if not changes and network_view is None:
                        continue
                    apply_changes(known, changes)
                    previous, sequence = sequence, str(self._store.applied_index)
                    yield dispatcher_pb2.AssignmentsMessage(
                        type=dispatcher_pb2.AssignmentsMessage.INCREMENTAL,
                        applies_to=previous,
                        results_in=sequence,
                        changes=with_dependencies(changes),
                        network_view=network_view,
                    )
                    last_sent = loop.time()
            finally:
                session.inboxes.discard(inbox)
                self._tasks.unsubscribe(inbox)

    # ---------------------------------------------------------------- logs

    async def LogSubscriptions(self, request: dispatcher_pb2.LogSubscriptionsRequest, context: grpc.aio.ServicerContext):
        async with self._refusals(context):
            node_id = self._identify(context)
            self._require_running()
            session = self._session_of(node_id, request.session_id)
            if self._log_broker is None:
                await self._until_ended(session, asyncio.Event().wait())
                return
            with self._log_broker.attach_node(node_id) as subscriptions:
                while True:
                    yield await self._until_ended(session, subscriptions.get())

    async def PublishLogs(self, request_iterator: Any, context: grpc.aio.ServicerContext):
        async with self._refusals(context):
            node_id = self._identify(context)
            self._require_running()
            if self._log_broker is None:
                raise DispatcherStopped("this manager has no log broker")
            fed: set[str] = set()
            try:
                async for message in request_iterator:
                    fed.add(message.subscription_id)
                    self._log_broker.publish(node_id, message)
            finally:
                self._log_broker.publisher_gone(node_id, fed)
            return dispatcher_pb2.PublishLogsResponse()


__all__ = ["Dispatcher", "DispatcherSettings", "certificate_identity"]
