"""The Agent: a node's connection to the managers, feeding the Worker and reporting for it.

Theory of operation
-------------------
The agent keeps one session with the leader's Dispatcher. It dials the managers it knows in turn (the
list it was given, then the one each SessionMessage carries, persisted in the data dir), waiting between
failed attempts from 100 ms doubling to 8 s (with jitter). A manager that is not the leader answers
UNAVAILABLE "not the leader" with the leader's address, and the agent goes there at once.

Within a session, one owned task per stream:
- the Session stream: new manager lists; its end ends the session;
- heartbeats, at the period the dispatcher returns with each one;
- the Assignments stream, each message handed to the worker (`await worker.apply(message)`);
- task status: the worker reports through `TaskStatusReports.report`, which keeps the latest status per
  task until a manager acknowledges it, so reports made while disconnected, or lost with a session, are
  sent on the next one. A manager answers an UpdateTaskStatus call only once its reports are written
  (its next flush, up to ~0.1 s), so reports made meanwhile go out in a call of their own, up to
  `status_max_calls` at once; a task with a report in a call not yet answered is left out of new calls
  until that one is answered, so a task's later status never overtakes its earlier one;
- the node description: checked every 20 s (or on `description_changed()`), and when it changed the
  session is resumed with the new one (a new Session call naming the same session);
- log subscriptions: each one read from the containers (a TaskLogSource) and sent through PublishLogs.
Any of them failing ends the session: the others are cancelled, the channel closed, and the agent dials
again. Containers keep running and the Worker keeps its state meanwhile; a new session starts with a
COMPLETE assignment set which the Worker reconciles.

`run()` runs until cancelled or `stop()` is called; every task it starts is owned by it and ended then.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import random
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc

from swarmpy.aio import unless_set
from swarmpy.api import dispatcher_pb2, dispatcher_pb2_grpc, objects_pb2
from swarmpy.files import write_atomically
from swarmpy.leader_redirect import leader_redirect
from swarmpy.worker.logs import TaskLogSource, selected_tasks

log = logging.getLogger(__name__)

MANAGERS_FILE = "managers.json"
LOG_BATCH = 100


@dataclass
class AgentSettings:
    rpc_timeout: float = 5.0
    backoff_min: float = 0.1
    backoff_max: float = 8.0
    description_interval: float = 20.0
    status_batch_window: float = 0.05
    status_max_batch: int = 1000
    status_max_calls: int = 4  # UpdateTaskStatus calls in flight at once (each holding other tasks)


class AssignmentSink(Protocol):
    """What the agent needs of the Worker (swarmpy.worker.worker.Worker)."""

    async def apply(self, message: dispatcher_pb2.AssignmentsMessage) -> None: ...

    def tasks(self) -> dict[str, objects_pb2.Task]: ...


class SessionLost(Exception):
    """The session ended for a reason that is nobody's fault in particular (stream closed, manager gone)."""


class _Redial(Exception):
    """New credentials: the session moves to a new connection that presents them (same session ID)."""


class _Redirect(Exception):
    def __init__(self, leader: str) -> None:
        super().__init__(f"redirected to the leader at {leader}")
        self.leader = leader


class TaskStatusReports:
    """The latest status of each task not yet acknowledged by a manager. `report` is the Worker's callback."""

    def __init__(self) -> None:
        self._pending: dict[str, objects_pb2.TaskStatus] = {}
        self._changed = asyncio.Event()

    async def report(self, task_id: str, status: objects_pb2.TaskStatus) -> None:
        self._pending[task_id] = status
        self._changed.set()

    def pending(self) -> dict[str, objects_pb2.TaskStatus]:
        return dict(self._pending)

    async def wait(self, busy: Collection[str] = ()) -> None:
        """Until some task outside `busy` has a pending report."""
        while all(task_id in busy for task_id in self._pending):
            self._changed.clear()
            await self._changed.wait()

    def take(self, limit: int, busy: Collection[str] = ()) -> dict[str, objects_pb2.TaskStatus]:
        """Up to `limit` pending reports of tasks outside `busy`, still pending until `acknowledge`d."""
        batch = {}
        for task_id, status in self._pending.items():
            if len(batch) >= limit:
                break
            if task_id not in busy:
                batch[task_id] = status
        return batch

    def acknowledge(self, sent: dict[str, objects_pb2.TaskStatus]) -> None:
        for task_id, status in sent.items():
            if self._pending.get(task_id) is status:  # a newer report since stays pending
                del self._pending[task_id]
        self._changed.set()  # the senders' busy tasks are free again: a newer report of one may go now


def _first_error(error: BaseException) -> BaseException:
    """The error that ended a session, out of the TaskGroup's exception group."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


class _SessionStream:
    """The current Session call; replaced when the session is resumed with a new description."""

    def __init__(self, call: grpc.aio.UnaryStreamCall) -> None:
        self.call = call


class Agent:
    def __init__(
        self,
        node_id: str,
        managers: Sequence[str],
        make_channel: Callable[[str], grpc.aio.Channel],
        worker: AssignmentSink,
        describe: Callable[[], Awaitable[objects_pb2.NodeDescription]],
        data_dir: str | os.PathLike[str],
        *,
        reports: TaskStatusReports | None = None,
        log_source: TaskLogSource | None = None,
        settings: AgentSettings | None = None,
        on_node: Callable[[objects_pb2.Node], None] | None = None,
        on_root_ca: Callable[[bytes], None] | None = None,
    ) -> None:
        self.node_id = node_id
        self._managers = list(dict.fromkeys(managers))
        self._make_channel = make_channel
        self._worker = worker
        self._describe = describe
        self._data_dir = Path(data_dir)
        self.reports = reports if reports is not None else TaskStatusReports()
        self._log_source = log_source
        self._settings = settings or AgentSettings()
        # Told the node object the manager sends with every SessionMessage (role changes); must not block.
        self._on_node = on_node
        # Told the root CA bundle every SessionMessage carries (it changes during a CA rotation); must not block.
        self._on_root_ca = on_root_ca
        self._cursor = 0
        self._opened = False  # whether the latest attempt got as far as an open session
        self._leader_hint: str | None = None
        self._description_nudge = asyncio.Event()
        self._redial = asyncio.Event()
        self._stopping = asyncio.Event()
        self.connected = asyncio.Event()  # set while a session is open
        self.session_id = ""
        self.manager_addr = ""  # the manager of the current (or last) session

    @property
    def managers(self) -> list[str]:
        """The manager addresses the agent knows now: the swarm's latest list once a session told it."""
        return list(self._managers)

    # ---------------------------------------------------------------- lifecycle

    async def run(self) -> None:
        """Keep a session open until cancelled or stopped."""
        self._managers = list(dict.fromkeys(self._managers + await asyncio.to_thread(self._load_managers)))
        if not self._managers:
            raise ValueError(f"node {self.node_id}: the agent needs at least one manager address")
        try:
            await unless_set(self._keep_session(), self._stopping)
        finally:
            self.connected.clear()

    async def stop(self) -> None:
        """End `run()`: the session's tasks are cancelled and awaited; the worker is left as it is."""
        self._stopping.set()

    def description_changed(self) -> None:
        """Push the node description now rather than at the next periodic check."""
        self._description_nudge.set()

    def credentials_changed(self) -> None:
        """A renewed certificate: carry the session over to a connection that presents it. A TLS
        connection keeps the certificate it was opened with, and once a CA rotation drops the old root
        the managers refuse it; resuming by session ID keeps the session (the node is never DOWN)."""
        self._redial.set()

    async def _keep_session(self) -> None:
        backoff = self._settings.backoff_min
        resume = ""
        while True:
            addr = self._next_manager()
            self._opened = False
            try:
                await self._session(addr, resume)
            except Exception as exc:  # every way a session can end: judged below, then the agent dials again
                error = _first_error(exc)
                resume = ""
                if isinstance(error, _Redial):
                    resume, self._leader_hint = self.session_id, addr
                    continue
                if isinstance(error, _Redirect):
                    log.info("node %s: manager %s is not the leader; trying %s", self.node_id, addr, error.leader)
                    self._leader_hint = error.leader
                    continue
                if isinstance(error, grpc.aio.AioRpcError):
                    leader = leader_redirect(error)
                    if leader:
                        self._leader_hint = leader
                        continue
                    why = f"{error.code().name}: {error.details()}"
                else:
                    why = str(error) or type(error).__name__
                if not isinstance(error, (grpc.aio.AioRpcError, SessionLost, TimeoutError)):
                    log.exception("node %s: session with %s failed unexpectedly", self.node_id, addr, exc_info=error)
                else:
                    log.info("node %s: session with manager %s ended: %s", self.node_id, addr, why)
                self._cursor += 1
            finally:
                self.connected.clear()
            if self._opened:
                backoff = self._settings.backoff_min
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, self._settings.backoff_max)

    def _next_manager(self) -> str:
        if self._leader_hint:
            addr, self._leader_hint = self._leader_hint, None
            return addr
        return self._managers[self._cursor % len(self._managers)]

    # ---------------------------------------------------------------- one session

    async def _session(self, addr: str, resume: str = "") -> None:
        """Run one session with the manager at `addr` (resuming session `resume`) until it ends, which it
        does by raising."""
        self._redial.clear()
        channel = self._make_channel(addr)
        try:
            stub = dispatcher_pb2_grpc.DispatcherStub(channel)
            description = await self._describe()
            call = stub.Session(dispatcher_pb2.SessionRequest(description=description, session_id=resume))
            # asyncio.timeout rather than wait_for here and below: on 3.11, wait_for can swallow a
            # cancellation that races its result, and the agent would then never finish stopping.
            try:
                async with asyncio.timeout(self._settings.rpc_timeout):
                    first = await call.read()
            except grpc.aio.AioRpcError as exc:
                leader = leader_redirect(exc)
                if leader:
                    raise _Redirect(leader) from exc
                raise
            if first is grpc.aio.EOF:
                raise SessionLost(f"manager {addr} closed the session before it opened")
            self.session_id = first.session_id
            self.manager_addr = addr
            self._tell_node(first)
            await self._learn_managers(first.managers)
            self.connected.set()
            self._opened = True
            if resume and resume == self.session_id:
                log.info("node %s: session %s moved to a new connection to manager %s", self.node_id, resume, addr)
            else:
                log.info("node %s: session %s open with manager %s", self.node_id, self.session_id, addr)
            stream = _SessionStream(call)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._follow_session(stream))
                tg.create_task(self._heartbeats(stub))
                tg.create_task(self._assignments(stub))
                tg.create_task(self._report_statuses(stub))
                tg.create_task(self._push_description(stub, stream, description))
                tg.create_task(self._serve_log_subscriptions(stub))
                tg.create_task(self._until_redial())
        finally:
            await channel.close()

    async def _until_redial(self) -> None:
        await self._redial.wait()
        raise _Redial()

    async def _follow_session(self, stream: _SessionStream) -> None:
        while True:
            call = stream.call
            # read(), not `async for`: the first message was taken with read(), and grpc.aio refuses to
            # mix the two styles on one call.
            while (message := await call.read()) is not grpc.aio.EOF:
                if message.session_id != self.session_id:
                    raise SessionLost(f"the manager replaced session {self.session_id} with {message.session_id}")
                self._tell_node(message)
                await self._learn_managers(message.managers)
            if stream.call is call:
                raise SessionLost("the manager closed the session stream")

    def _tell_node(self, message: dispatcher_pb2.SessionMessage) -> None:
        if self._on_root_ca is not None and message.root_ca:
            self._on_root_ca(message.root_ca)
        if self._on_node is not None and message.HasField("node") and message.node.id == self.node_id:
            self._on_node(message.node)

    async def _heartbeats(self, stub: dispatcher_pb2_grpc.DispatcherStub) -> None:
        request = dispatcher_pb2.HeartbeatRequest(session_id=self.session_id)
        while True:
            response = await stub.Heartbeat(request, timeout=self._settings.rpc_timeout)
            await asyncio.sleep(response.period / 1e9)

    async def _assignments(self, stub: dispatcher_pb2_grpc.DispatcherStub) -> None:
        call = stub.Assignments(dispatcher_pb2.AssignmentsRequest(session_id=self.session_id))
        async for message in call:
            await self._worker.apply(message)
        raise SessionLost("the manager closed the assignments stream")

    async def _report_statuses(self, stub: dispatcher_pb2_grpc.DispatcherStub) -> None:
        """Send the pending reports, a new call while others are in flight (see the module docstring).
        A call that fails ends the session (the TaskGroup); its reports stay pending for the next one."""
        in_flight: set[str] = set()  # tasks with a report in a call not yet answered
        calls = asyncio.Semaphore(self._settings.status_max_calls)

        async def send(batch: dict[str, objects_pb2.TaskStatus]) -> None:
            try:
                request = dispatcher_pb2.UpdateTaskStatusRequest(
                    session_id=self.session_id,
                    updates=[dispatcher_pb2.TaskStatusUpdate(task_id=task_id, status=status) for task_id, status in batch.items()],
                )
                await stub.UpdateTaskStatus(request, timeout=self._settings.rpc_timeout)
                in_flight.difference_update(batch)
                self.reports.acknowledge(batch)
            finally:
                calls.release()

        loop = asyncio.get_running_loop()
        last_call = -math.inf
        async with asyncio.TaskGroup() as tg:
            while True:
                await self.reports.wait(in_flight)
                # At most one call per window, so a burst of reports shares one; a report after a quiet
                # spell goes at once rather than after a window of its own.
                delay = last_call + self._settings.status_batch_window - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await calls.acquire()
                last_call = loop.time()
                batch = self.reports.take(self._settings.status_max_batch, in_flight)
                if not batch:  # not expected (only an answer removes a report, and none was busy), but never send an empty call
                    calls.release()
                    continue
                in_flight.update(batch)
                tg.create_task(send(batch))

    async def _push_description(
        self, stub: dispatcher_pb2_grpc.DispatcherStub, stream: _SessionStream, sent: objects_pb2.NodeDescription
    ) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.description_interval):
                    await self._description_nudge.wait()
            self._description_nudge.clear()
            description = await self._describe()
            if description == sent:
                continue
            # Resuming the session with the new description; _follow_session moves to the new stream when
            # the dispatcher ends the old one.
            stream.call = stub.Session(dispatcher_pb2.SessionRequest(description=description, session_id=self.session_id))
            sent = description
            log.info("node %s: sent its changed description", self.node_id)

    async def _learn_managers(self, peers: Sequence[dispatcher_pb2.WeightedPeer]) -> None:
        addrs = list(dict.fromkeys(peer.addr for peer in peers if peer.addr))
        if not addrs or addrs == self._managers:
            return
        current = self._managers[self._cursor % len(self._managers)]
        self._managers = addrs
        self._cursor = addrs.index(current) if current in addrs else 0
        await asyncio.to_thread(self._save_managers, addrs)

    # ---------------------------------------------------------------- logs

    async def _serve_log_subscriptions(self, stub: dispatcher_pb2_grpc.DispatcherStub) -> None:
        call = stub.LogSubscriptions(dispatcher_pb2.LogSubscriptionsRequest(session_id=self.session_id))
        publishing: dict[str, asyncio.Task[None]] = {}
        async with asyncio.TaskGroup() as tg:
            async for subscription in call:
                if subscription.close:
                    task = publishing.pop(subscription.id, None)
                    if task is not None:
                        task.cancel()
                elif subscription.id not in publishing:
                    publishing[subscription.id] = tg.create_task(self._publish_logs(stub, subscription, publishing))
            raise SessionLost("the manager closed the log subscriptions stream")

    async def _publish_logs(
        self,
        stub: dispatcher_pb2_grpc.DispatcherStub,
        subscription: dispatcher_pb2.LogSubscription,
        publishing: dict[str, asyncio.Task[None]],
    ) -> None:
        tasks = selected_tasks(self._worker.tasks().values(), subscription.selector)
        call = stub.PublishLogs()
        queue: asyncio.Queue[dispatcher_pb2.LogMessage | None] = asyncio.Queue(maxsize=4 * LOG_BATCH)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._read_logs(tasks, subscription.options, queue))
                done = False
                while not done:
                    batch = [await queue.get()]
                    while not queue.empty() and len(batch) < LOG_BATCH:
                        batch.append(queue.get_nowait())
                    if batch[-1] is None:
                        done = True
                        batch.pop()
                    if batch:
                        await call.write(dispatcher_pb2.PublishLogsMessage(subscription_id=subscription.id, messages=batch))
                await call.write(dispatcher_pb2.PublishLogsMessage(subscription_id=subscription.id, close=True))
                await call.done_writing()
                await call
        except grpc.aio.AioRpcError as exc:
            # One subscription failing (the caller went away) is no reason to end the session.
            log.info("node %s: publishing logs for subscription %s stopped: %s", self.node_id, subscription.id, exc.details())
        finally:
            call.cancel()
            if publishing.get(subscription.id) is asyncio.current_task():
                del publishing[subscription.id]

    async def _read_logs(
        self,
        tasks: list[objects_pb2.Task],
        options: dispatcher_pb2.LogOptions,
        queue: asyncio.Queue[dispatcher_pb2.LogMessage | None],
    ) -> None:
        async def one(task: objects_pb2.Task) -> None:
            if self._log_source is None:
                return
            try:
                async with contextlib.aclosing(self._log_source.task_logs(task, options)) as messages:
                    async for message in messages:
                        await queue.put(message)
            except Exception as exc:  # one task's container failing must not cut off the others' logs
                log.warning("node %s: reading logs of task %s failed: %s", self.node_id, task.id, exc)

        async with asyncio.TaskGroup() as tg:
            for task in tasks:
                tg.create_task(one(task))
        await queue.put(None)

    # ---------------------------------------------------------------- managers on disk

    def _load_managers(self) -> list[str]:
        try:
            return [addr for addr in json.loads((self._data_dir / MANAGERS_FILE).read_text()) if isinstance(addr, str)]
        except FileNotFoundError:
            return []
        except (ValueError, OSError) as exc:
            log.warning("node %s: ignoring unreadable %s: %s", self.node_id, self._data_dir / MANAGERS_FILE, exc)
            return []

    def _save_managers(self, addrs: list[str]) -> None:
        self._data_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(self._data_dir / MANAGERS_FILE, json.dumps(addrs).encode())
