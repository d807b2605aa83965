"""The Dispatcher over a real in-process grpc.aio server (insecure, 127.0.0.1) against a MemoryStore.

The caller's identity, which a real manager reads from the TLS certificate, is injected: these tests name
the calling node in the metadata key NODE_KEY (see `metadata_identity` and `node_channel`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time

import grpc
import pytest

from swarmpy.api import dispatcher_pb2, dispatcher_pb2_grpc, objects_pb2
from swarmpy.manager.dispatcher import Dispatcher, DispatcherGate, DispatcherSettings, leader_redirect
from swarmpy.manager.dispatcher.liveness import BreakBursts, Deadlines, LoopClock
from swarmpy.manager.dispatcher.rules import (
    accepts_status,
    apply_changes,
    assignment_changes,
    jittered_period,
    manager_peers,
    peer_host,
    should_know,
)
from swarmpy.manager.store import MemoryStore
from swarmpy.manager.store.memory import InProcessProposer, clone

NODE_KEY = "test-node-id"
FAST = DispatcherSettings(heartbeat_period=0.2, status_flush_interval=0.05, assignment_batch_window=0.02)
UPDATE = dispatcher_pb2.AssignmentChange.UPDATE
REMOVE = dispatcher_pb2.AssignmentChange.REMOVE
READY = objects_pb2.NodeStatus.READY
DOWN = objects_pb2.NodeStatus.DOWN


# ---------------------------------------------------------------- harness (also used by tests/worker/test_agent.py)


def metadata_identity(context: grpc.aio.ServicerContext) -> str:
    """Test stand-in for the certificate: the node ID the client put in its metadata."""
    for key, value in context.invocation_metadata() or ():
        if key == NODE_KEY:
            return value
    raise AssertionError("test client sent no node identity")


def as_node(node_id: str) -> tuple[tuple[str, str], ...]:
    return ((NODE_KEY, node_id),)


def _with_identity(details, node_id: str):
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    metadata.add(NODE_KEY, node_id)
    return details._replace(metadata=metadata)


# A channel files each interceptor under the first kind it is (an if/elif), so one class per kind.
class _UnaryUnaryIdentity(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, node_id: str) -> None:
        self._node_id = node_id

    async def intercept_unary_unary(self, continuation, details, request):
        return await continuation(_with_identity(details, self._node_id), request)


class _UnaryStreamIdentity(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, node_id: str) -> None:
        self._node_id = node_id

    async def intercept_unary_stream(self, continuation, details, request):
        return await continuation(_with_identity(details, self._node_id), request)


class _StreamUnaryIdentity(grpc.aio.StreamUnaryClientInterceptor):
    def __init__(self, node_id: str) -> None:
        self._node_id = node_id

    async def intercept_stream_unary(self, continuation, details, request_iterator):
        return await continuation(_with_identity(details, self._node_id), request_iterator)


def node_channel(addr: str, node_id: str) -> grpc.aio.Channel:
    """A channel whose every call carries the node's test identity (what a client certificate does for real)."""
    interceptors = [_UnaryUnaryIdentity(node_id), _UnaryStreamIdentity(node_id), _StreamUnaryIdentity(node_id)]
    return grpc.aio.insecure_channel(addr, interceptors=interceptors)


class CountingProposer:
    """Applies at once like InProcessProposer, counting proposals (one per Raft entry in real life)."""

    def __init__(self, store: MemoryStore) -> None:
        self._inner = InProcessProposer(store)
        self.count = 0

    async def propose(self, data: bytes):
        self.count += 1
        return await self._inner.propose(data)


def make_node(node_id: str, *, manager_addr: str = "", state=objects_pb2.NodeStatus.UNKNOWN) -> objects_pb2.Node:
    node = objects_pb2.Node(id=node_id)
    node.status.state = state
    if manager_addr:
        node.manager_status.addr = manager_addr
        node.role = objects_pb2.MANAGER
    return node


def make_task(task_id: str, node_id: str, state=objects_pb2.ASSIGNED, desired=objects_pb2.RUNNING, service_id="svc") -> objects_pb2.Task:
    task = objects_pb2.Task(id=task_id, node_id=node_id, service_id=service_id, desired_state=desired)
    task.status.state = state
    task.spec.container.image = "busybox"
    return task


async def seed(store: MemoryStore, *objects: tuple[str, object]) -> None:
    def create(tx):
        for kind, obj in objects:
            tx.create(kind, obj)

    await store.update(create)


async def edit(store: MemoryStore, kind: str, object_id: str, change) -> None:
    def write(tx):
        obj = clone(tx.get(kind, object_id))
        change(obj)
        tx.update(kind, obj)

    await store.update(write)


class Manager:
    """One manager's Dispatcher service on 127.0.0.1, behind a gate, with the dispatcher running or not."""

    def __init__(self, store: MemoryStore, settings: DispatcherSettings = FAST, log_broker=None, leader_addr=lambda: "") -> None:
        self.store = store
        self.dispatcher = Dispatcher(store, settings, log_broker=log_broker, identify=metadata_identity, rng=random.Random(7))
        self.gate = DispatcherGate(leader_addr)
        self.server = grpc.aio.server()
        dispatcher_pb2_grpc.add_DispatcherServicer_to_server(self.gate, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.addr = f"127.0.0.1:{self.port}"
        self._tasks: list[asyncio.Task] = []

    async def start(self, lead: bool = True) -> Manager:
        await self.server.start()
        if lead:
            await self.lead()
        return self

    async def lead(self) -> None:
        self._tasks.append(asyncio.create_task(self.dispatcher.run()))
        self.gate.serve(self.dispatcher)
        while not self.dispatcher._running:
            await asyncio.sleep(0.001)

    async def stop(self) -> None:
        self.gate.stop_serving()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.stop(None)


@contextlib.asynccontextmanager
async def running_manager(store: MemoryStore, **kwargs):
    manager = await Manager(store, **kwargs).start()
    try:
        yield manager
    finally:
        await manager.stop()


@contextlib.asynccontextmanager
async def dispatcher_of_one_node(store: MemoryStore | None = None, **kwargs):
    """A leading manager whose store holds node n1, and a dispatcher stub on a channel to it."""
    store = store if store is not None else MemoryStore()
    await seed(store, ("node", make_node("n1")))
    async with running_manager(store, **kwargs) as manager, grpc.aio.insecure_channel(manager.addr) as channel:
        yield store, dispatcher_pb2_grpc.DispatcherStub(channel)


async def wait_for(predicate, timeout: float = 3.0, interval: float = 0.01):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def open_session(stub, node_id: str, hostname: str = "") -> tuple[grpc.aio.UnaryStreamCall, dispatcher_pb2.SessionMessage]:
    description = objects_pb2.NodeDescription(hostname=hostname or f"host-{node_id}")
    call = stub.Session(dispatcher_pb2.SessionRequest(description=description), metadata=as_node(node_id))
    first = await asyncio.wait_for(call.read(), 2)
    return call, first


def node_state(store: MemoryStore, node_id: str) -> int:
    return store.view().get_node(node_id).status.state


# ---------------------------------------------------------------- pure rules


def test_should_know_needs_assignment_and_a_node():
    assert should_know(make_task("t", "n1", state=objects_pb2.ASSIGNED))
    assert should_know(make_task("t", "n1", state=objects_pb2.RUNNING, desired=objects_pb2.REMOVE))
    assert not should_know(make_task("t", "n1", state=objects_pb2.PENDING))
    assert not should_know(make_task("t", "", state=objects_pb2.ASSIGNED))
    assert not should_know(make_task("t", "n1", desired=objects_pb2.ORPHANED))


def test_assignment_changes_ignore_status_only_edits_and_remove_moved_tasks():
    task = make_task("t1", "n1")
    known: dict[str, bytes] = {}
    first = assignment_changes("n1", known, {"t1": task})
    assert [(c.task.id, c.action) for c in first] == [("t1", UPDATE)]
    apply_changes(known, first)

    reported = clone(task)
    reported.status.state = objects_pb2.RUNNING
    assert assignment_changes("n1", known, {"t1": reported}) == []

    stopped = clone(reported)
    stopped.desired_state = objects_pb2.SHUTDOWN
    assert [c.action for c in assignment_changes("n1", known, {"t1": stopped})] == [UPDATE]

    moved = clone(task)
    moved.node_id = "n2"
    assert [(c.task.id, c.action) for c in assignment_changes("n1", known, {"t1": moved})] == [("t1", REMOVE)]
    assert [(c.task.id, c.action) for c in assignment_changes("n1", known, {"t1": None})] == [("t1", REMOVE)]
    assert assignment_changes("n1", known, {"other": make_task("other", "n2")}) == []


def test_status_only_moves_forward():
    running = objects_pb2.TaskStatus(state=objects_pb2.RUNNING, message="started")
    assert not accepts_status(running, objects_pb2.TaskStatus(state=objects_pb2.STARTING))
    assert not accepts_status(running, objects_pb2.TaskStatus(state=objects_pb2.RUNNING, message="started"))
    assert accepts_status(running, objects_pb2.TaskStatus(state=objects_pb2.RUNNING, message="healthy"))
    assert accepts_status(running, objects_pb2.TaskStatus(state=objects_pb2.COMPLETE))


def test_jittered_period_stays_within_ten_percent():
    rng = random.Random(1)
    periods = [jittered_period(5_000_000_000, rng) for _ in range(1000)]
    assert min(periods) >= 4_500_000_000 and max(periods) <= 5_500_000_000
    assert len(set(periods)) > 100


def test_manager_peers_lists_managers_leader_first():
    leader = make_node("m2", manager_addr="10.0.0.2:2377")
    leader.manager_status.leader = True
    peers = manager_peers([make_node("w1"), make_node("m1", manager_addr="10.0.0.1:2377"), leader])
    assert [(p.node_id, p.addr) for p in peers] == [("m2", "10.0.0.2:2377"), ("m1", "10.0.0.1:2377")]


def test_peer_host():
    assert peer_host("ipv4:10.1.2.3:4567") == "10.1.2.3"
    assert peer_host("ipv6:%5B::1%5D:4567") == "::1"
    assert peer_host("unix:/tmp/sock") == ""


def test_deadlines_expire_once_in_order():
    deadlines = Deadlines()
    deadlines.set("a", 10)
    deadlines.set("b", 20)
    deadlines.set("a", 30)  # a heartbeat moved it
    assert deadlines.next_due() == 20
    assert deadlines.expired(25) == ["b"]
    assert deadlines.expired(25) == []
    assert deadlines.expired(31) == ["a"]
    assert deadlines.next_due() is None


# ---------------------------------------------------------------- sessions and heartbeats


async def test_session_writes_node_ready_with_description_and_sends_managers():
    store = MemoryStore()
    cluster = objects_pb2.Cluster(id="c1")
    cluster.root_ca.ca_cert = b"-----ROOT-----"
    await seed(store, ("cluster", cluster), ("node", make_node("m1", manager_addr="10.0.0.1:2377")), ("node", make_node("n1")))
    async with running_manager(store) as manager, grpc.aio.insecure_channel(manager.addr) as channel:
        stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        call, first = await open_session(stub, "n1", hostname="worker-one")
        assert first.session_id
        assert first.node.id == "n1" and first.node.status.state == READY
        assert [peer.addr for peer in first.managers] == ["10.0.0.1:2377"]
        assert first.root_ca == b"-----ROOT-----"
        node = store.view().get_node("n1")
        assert node.status.state == READY
        assert node.status.addr == "127.0.0.1"
        assert node.description.hostname == "worker-one"

        # A manager joining is announced on the open session stream.
        await seed(store, ("node", make_node("m2", manager_addr="10.0.0.2:2377")))
        update = await asyncio.wait_for(call.read(), 2)
        assert update.session_id == first.session_id
        assert sorted(peer.addr for peer in update.managers) == ["10.0.0.1:2377", "10.0.0.2:2377"]
        call.cancel()


async def test_session_refuses_a_node_not_in_the_store():
    store = MemoryStore()
    async with running_manager(store) as manager, grpc.aio.insecure_channel(manager.addr) as channel:
        stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await open_session(stub, "ghost")
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        assert "ghost" in refused.value.details()


async def test_heartbeats_keep_a_node_ready_and_silence_marks_it_down():
    async with dispatcher_of_one_node() as (store, stub):
        call, first = await open_session(stub, "n1")
        beat = dispatcher_pb2.HeartbeatRequest(session_id=first.session_id)
        started = time.monotonic()
        while time.monotonic() - started < 1.0:  # well past the 0.6 s grace
            response = await stub.Heartbeat(beat, metadata=as_node("n1"))
            assert 0.18e9 <= response.period <= 0.22e9
            assert node_state(store, "n1") == READY
            await asyncio.sleep(response.period / 1e9)

        silent_since = time.monotonic()
        await wait_for(lambda: node_state(store, "n1") == DOWN, timeout=2)
        assert time.monotonic() - silent_since < 0.9
        assert store.view().get_node("n1").status.message == "heartbeat failure"

        # The session is over: its stream ends and its heartbeats are refused.
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await asyncio.wait_for(call.read(), 2)
        assert ended.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Heartbeat(beat, metadata=as_node("n1"))
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND

        # Coming back is a new session, and READY again.
        call, again = await open_session(stub, "n1")
        assert again.session_id != first.session_id
        assert node_state(store, "n1") == READY
        call.cancel()


async def test_a_heartbeat_that_waited_on_a_starved_loop_is_not_late():
    """The leader's loop blocked for longer than the node's whole grace (0.6 s) while the node's next
    heartbeat waited to be served: the node is not written DOWN for the leader's lateness (liveness.LoopClock),
    and silence after that still is, within its grace."""
    async with dispatcher_of_one_node() as (store, stub):
        call, first = await open_session(stub, "n1")
        beat = dispatcher_pb2.HeartbeatRequest(session_id=first.session_id)
        await stub.Heartbeat(beat, metadata=as_node("n1"))
        time.sleep(1.5)  # the leader's event loop starved (bulk work); this test's client shares that loop
        await stub.Heartbeat(beat, metadata=as_node("n1"))  # served late, but accepted: the session stands
        assert node_state(store, "n1") == READY
        silent_since = time.monotonic()
        await wait_for(lambda: node_state(store, "n1") == DOWN, timeout=3)
        assert time.monotonic() - silent_since < 1.2
        call.cancel()


async def test_a_new_leader_gives_every_node_a_grace_period():
    store = MemoryStore()
    await seed(
        store,
        ("node", make_node("quiet", state=READY)),
        ("node", make_node("alive", state=READY)),
        ("node", make_node("gone", state=DOWN)),
    )
    async with running_manager(store) as manager, grpc.aio.insecure_channel(manager.addr) as channel:
        await wait_for(lambda: node_state(store, "quiet") == objects_pb2.NodeStatus.UNKNOWN)
        assert node_state(store, "gone") == DOWN  # not touched
        stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        call, first = await open_session(stub, "alive")
        assert node_state(store, "alive") == READY

        async def beat():
            while True:
                await stub.Heartbeat(dispatcher_pb2.HeartbeatRequest(session_id=first.session_id), metadata=as_node("alive"))
                await asyncio.sleep(0.1)

        heart = asyncio.create_task(beat())
        try:
            await wait_for(lambda: node_state(store, "quiet") == DOWN, timeout=2)
            assert "unknown" in store.view().get_node("quiet").status.message
            assert node_state(store, "alive") == READY
        finally:
            heart.cancel()
        call.cancel()


async def test_a_follower_redirects_to_the_leader():
    store = MemoryStore()
    await seed(store, ("node", make_node("n1")))
    follower = await Manager(store, leader_addr=lambda: "10.9.9.9:2377").start(lead=False)
    try:
        async with grpc.aio.insecure_channel(follower.addr) as channel:
            stub = dispatcher_pb2_grpc.DispatcherStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await open_session(stub, "n1")
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert leader_redirect(refused.value) == "10.9.9.9:2377"
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Heartbeat(dispatcher_pb2.HeartbeatRequest(session_id="x"), metadata=as_node("n1"))
            assert leader_redirect(refused.value) == "10.9.9.9:2377"
    finally:
        await follower.stop()


async def test_stopping_the_dispatcher_ends_open_sessions():
    store = MemoryStore()
    await seed(store, ("node", make_node("n1")))
    manager = await Manager(store).start()
    try:
        async with grpc.aio.insecure_channel(manager.addr) as channel:
            stub = dispatcher_pb2_grpc.DispatcherStub(channel)
            call, _ = await open_session(stub, "n1")
            manager.gate.stop_serving()
            for task in manager._tasks:
                task.cancel()
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await asyncio.wait_for(call.read(), 2)
            assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await manager.stop()


# ---------------------------------------------------------------- task status


async def test_status_reports_move_forward_only_and_share_one_proposal():
    store = MemoryStore()
    proposer = CountingProposer(store)
    store.proposer = proposer
    tasks = [make_task(f"t{i}", "n1", state=objects_pb2.ASSIGNED) for i in range(50)]
    await seed(store, ("node", make_node("n1")), *(("task", task) for task in tasks))
    async with running_manager(store) as manager, grpc.aio.insecure_channel(manager.addr) as channel:
        stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        call, first = await open_session(stub, "n1")
        await asyncio.sleep(0.1)  # let the session's own writes settle

        def request(state, task_ids):
            return dispatcher_pb2.UpdateTaskStatusRequest(
                session_id=first.session_id,
                updates=[dispatcher_pb2.TaskStatusUpdate(task_id=t, status=objects_pb2.TaskStatus(state=state)) for t in task_ids],
            )

        before = proposer.count
        # Ten concurrent calls of five reports each after a quiet spell: the first is written at once
        # (perhaps with a few others that arrived as soon), the rest share the next flush.
        await asyncio.gather(
            *(stub.UpdateTaskStatus(request(objects_pb2.RUNNING, [f"t{i}" for i in range(k, k + 5)]), metadata=as_node("n1")) for k in range(0, 50, 5))
        )
        assert 1 <= proposer.count - before <= 2
        assert all(task.status.state == objects_pb2.RUNNING for task in store.view().tasks_by_node("n1"))

        # A report behind the stored state is ignored; a forward one lands.
        await stub.UpdateTaskStatus(request(objects_pb2.PREPARING, ["t0"]), metadata=as_node("n1"))
        assert store.view().get_task("t0").status.state == objects_pb2.RUNNING
        await stub.UpdateTaskStatus(request(objects_pb2.COMPLETE, ["t0"]), metadata=as_node("n1"))
        assert store.view().get_task("t0").status.state == objects_pb2.COMPLETE
        call.cancel()


async def test_a_node_cannot_report_on_another_nodes_task():
    store = MemoryStore()
    await seed(store, ("node", make_node("n1")), ("node", make_node("n2")), ("task", make_task("theirs", "n2")), ("task", make_task("mine", "n1")))
    async with running_manager(store) as manager, grpc.aio.insecure_channel(manager.addr) as channel:
        stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        call, first = await open_session(stub, "n1")
        running = objects_pb2.TaskStatus(state=objects_pb2.RUNNING)
        await stub.UpdateTaskStatus(
            dispatcher_pb2.UpdateTaskStatusRequest(
                session_id=first.session_id,
                updates=[
                    dispatcher_pb2.TaskStatusUpdate(task_id="theirs", status=running),
                    dispatcher_pb2.TaskStatusUpdate(task_id="mine", status=running),
                ],
            ),
            metadata=as_node("n1"),
        )
        assert store.view().get_task("theirs").status.state == objects_pb2.ASSIGNED
        assert store.view().get_task("mine").status.state == objects_pb2.RUNNING

        # Nor may it use another node's session.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.UpdateTaskStatus(
                dispatcher_pb2.UpdateTaskStatusRequest(session_id=first.session_id), metadata=as_node("n2")
            )
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        call.cancel()


# ---------------------------------------------------------------- assignments


async def test_assignments_start_complete_then_follow_the_store():
    store = MemoryStore()
    await seed(
        store,
        ("node", make_node("n1")),
        ("node", make_node("n2")),
        ("task", make_task("known", "n1")),
        ("task", make_task("unscheduled", "n1", state=objects_pb2.PENDING)),
        ("task", make_task("elsewhere", "n2")),
    )
    # A window long enough that the three changes below surely fall inside the one after COMPLETE.
    settings = dataclasses.replace(FAST, assignment_batch_window=0.3, heartbeat_period=10.0)  # no heartbeats sent here
    async with running_manager(store, settings=settings) as manager, grpc.aio.insecure_channel(manager.addr) as channel:
        stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        session, first = await open_session(stub, "n1")
        call = stub.Assignments(dispatcher_pb2.AssignmentsRequest(session_id=first.session_id), metadata=as_node("n1"))

        async def next_message():
            return await asyncio.wait_for(call.read(), 2)

        complete = await next_message()
        assert complete.type == dispatcher_pb2.AssignmentsMessage.COMPLETE
        assert [(c.task.id, c.action) for c in complete.changes] == [("known", UPDATE)]

        # Several changes inside one window (at most one message per window) arrive as one INCREMENTAL message.
        await edit(store, "task", "unscheduled", lambda t: setattr(t.status, "state", objects_pb2.ASSIGNED))
        await seed(store, ("task", make_task("new", "n1")))
        await edit(store, "task", "elsewhere", lambda t: setattr(t, "desired_state", objects_pb2.SHUTDOWN))
        incremental = await next_message()
        assert incremental.type == dispatcher_pb2.AssignmentsMessage.INCREMENTAL
        assert incremental.applies_to == complete.results_in
        assert sorted((c.task.id, c.action) for c in incremental.changes) == [("new", UPDATE), ("unscheduled", UPDATE)]

        # The node's own status report is not echoed back; a desired state change is.
        await edit(store, "task", "known", lambda t: setattr(t.status, "state", objects_pb2.RUNNING))
        await edit(store, "task", "known", lambda t: setattr(t, "desired_state", objects_pb2.SHUTDOWN))
        stopped = await next_message()
        assert [(c.task.id, c.action, c.task.desired_state) for c in stopped.changes] == [("known", UPDATE, objects_pb2.SHUTDOWN)]

        await store.update(lambda tx: tx.delete("task", "known"))
        removed = await next_message()
        assert [(c.task.id, c.action) for c in removed.changes] == [("known", REMOVE)]
        call.cancel()
        session.cancel()


async def test_assignments_refuse_an_unknown_session():
    async with dispatcher_of_one_node() as (store, stub):
        call = stub.Assignments(dispatcher_pb2.AssignmentsRequest(session_id="made-up"), metadata=as_node("n1"))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call.read()
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND


class DownHoldingProposer:
    """Applies proposals in order, like a Raft log, but holds the first one that writes a node DOWN until
    `release` is set: a DOWN write still in flight when the node comes back."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._index = 0
        self._in_order = asyncio.Lock()  # FIFO: proposals apply in the order they were made
        self.down_held = asyncio.Event()
        self.release = asyncio.Event()

    async def propose(self, data: bytes):
        async with self._in_order:
            from swarmpy.api import store_pb2

            actions = store_pb2.StoreProposal.FromString(data).actions
            if not self.down_held.is_set() and any(
                action.WhichOneof("target") == "node" and action.node.status.state == DOWN for action in actions
            ):
                self.down_held.set()
                await self.release.wait()
            self._index += 1
            return self._store.apply(self._index, data)


async def test_a_node_back_before_its_down_write_applies_ends_up_ready():
    store = MemoryStore()
    proposer = DownHoldingProposer(store)
    store.proposer = proposer
    async with dispatcher_of_one_node(store) as (store, stub):
        first_call, _ = await open_session(stub, "n1")
        await asyncio.wait_for(proposer.down_held.wait(), 3)  # no heartbeats: the DOWN write is on its way
        assert node_state(store, "n1") == READY

        reopening = asyncio.create_task(open_session(stub, "n1"))
        await asyncio.sleep(0.1)  # the new session's own write queues up behind the DOWN write
        proposer.release.set()
        call, message = await asyncio.wait_for(reopening, 3)
        assert message.node.status.state == READY
        await wait_for(lambda: node_state(store, "n1") == READY, timeout=1)
        beat = dispatcher_pb2.HeartbeatRequest(session_id=message.session_id)
        await stub.Heartbeat(beat, metadata=as_node("n1"))
        await asyncio.sleep(0.1)
        assert node_state(store, "n1") == READY
        call.cancel()
        first_call.cancel()


async def test_an_ended_session_closes_its_assignments_stream():
    store = MemoryStore()
    await seed(store, ("node", make_node("n1")))
    async with running_manager(store) as manager, grpc.aio.insecure_channel(manager.addr) as channel:
        stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        session, first = await open_session(stub, "n1")
        call = stub.Assignments(dispatcher_pb2.AssignmentsRequest(session_id=first.session_id), metadata=as_node("n1"))
        complete = await asyncio.wait_for(call.read(), 2)
        assert complete.type == dispatcher_pb2.AssignmentsMessage.COMPLETE
        # No heartbeats: the session ends after its grace period, and the stream with it.
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await asyncio.wait_for(call.read(), 2)
        assert ended.value.code() == grpc.StatusCode.NOT_FOUND
        assert manager.dispatcher._tasks.subscribers() == 0
        session.cancel()


PATIENT = DispatcherSettings(heartbeat_period=10.0, session_break_grace=0.3)  # heartbeat expiry 30 s


async def test_a_broken_session_stream_marks_the_node_down_after_the_short_grace():
    async with dispatcher_of_one_node(settings=PATIENT) as (store, stub):
        call, _ = await open_session(stub, "n1")
        assert node_state(store, "n1") == READY
        broke = time.monotonic()
        call.cancel()  # the node's process died: its stream goes, no more heartbeats
        await wait_for(lambda: node_state(store, "n1") == DOWN, timeout=5)
        assert 0.25 <= time.monotonic() - broke < 3  # the short grace, not the 30 s heartbeat expiry


async def test_a_node_back_within_the_grace_stays_ready():
    async with dispatcher_of_one_node(settings=PATIENT) as (store, stub):
        call, _ = await open_session(stub, "n1")
        call.cancel()
        await asyncio.sleep(0.1)
        again, _ = await open_session(stub, "n1")  # reconnected (to this or another manager) in time
        await asyncio.sleep(0.6)  # twice the grace
        assert node_state(store, "n1") == READY
        again.cancel()


async def test_streams_breaking_in_a_burst_keep_the_heartbeat_grace():
    # A struggling manager (or network), not eight dead hosts: past the burst floor (5 within 10 s), broken
    # streams no longer shorten the deadline, so healthy nodes are not marked DOWN by the hundred.
    store = MemoryStore()
    names = [f"n{i}" for i in range(8)]
    await seed(store, *(("node", make_node(name)) for name in names))
    async with running_manager(store, settings=PATIENT) as manager, grpc.aio.insecure_channel(manager.addr) as channel:
        stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        calls = [(await open_session(stub, name))[0] for name in names]
        for call in calls:
            call.cancel()
        await wait_for(lambda: sum(node_state(store, name) == DOWN for name in names) == 5, timeout=5)
        await asyncio.sleep(1.0)  # three short graces more
        assert sorted(node_state(store, name) == DOWN for name in names) == [False] * 3 + [True] * 5


def test_break_bursts_allow_a_few_breaks_or_a_small_share_of_the_sessions():
    bursts = BreakBursts(window=10.0, floor=2, share=0.1)
    assert [bursts.few(now, sessions=10) for now in (0.0, 1.0, 2.0)] == [True, True, False]
    assert bursts.few(13.0, sessions=10)  # the earlier ones left the window
    many = BreakBursts(window=10.0, floor=2, share=0.1)
    assert all(many.few(float(i) / 10, sessions=100) for i in range(10))  # 10 % of 100 sessions
    assert not many.few(1.0, sessions=100)


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_loop_clock_is_the_wall_clock_while_the_loop_ticks_on_time():
    wall = FakeClock()
    clock = LoopClock(wall, slack=0.25)
    for _ in range(100):
        wall.now += 0.05
        assert clock.tick() == 0.0
    assert clock.now() == pytest.approx(105.0) and clock.paused == 0.0
    wall.now += 0.2  # between ticks, within the slack: runs with the wall clock
    assert clock.now() == pytest.approx(105.2)


def test_loop_clock_stands_still_while_the_loop_did_not_run():
    wall = FakeClock()
    clock = LoopClock(wall, slack=0.25)
    wall.now += 3.0  # the loop ran one 3 s callback (or was not scheduled): no tick meanwhile
    assert clock.now() == pytest.approx(100.25)  # at most the slack past the last tick, even before the next
    assert clock.tick() == pytest.approx(2.75)
    assert clock.now() == pytest.approx(100.25)  # the tick changes nothing already seen: never backwards
    wall.now += 0.05
    clock.tick()
    wall.now += 1.0
    clock.tick()
    assert clock.paused == pytest.approx(2.75 + 0.75) and clock.longest == pytest.approx(2.75)
    assert clock.now() == pytest.approx(100.25 + 0.05 + 0.25)
    with pytest.raises(ValueError):
        LoopClock(wall, slack=0)


def test_a_deadline_on_the_loop_clock_waits_out_the_leaders_stall_but_not_the_nodes_silence():
    # A node's stream broke (2 s grace), then the leader's loop starved 5 s: its reconnect waited in the
    # socket buffers all that time, so the stall does not count against it. Silence on a running loop does.
    wall = FakeClock()
    clock = LoopClock(wall, slack=0.25)
    deadlines = Deadlines()
    deadlines.set("n1", clock.now() + 2.0)
    wall.now += 5.0
    clock.tick()
    assert deadlines.expired(clock.now()) == []
    for _ in range(34):  # 1.7 s more of a loop ticking on time: 0.25 + 1.7 < 2
        wall.now += 0.05
        clock.tick()
    assert deadlines.expired(clock.now()) == []
    for _ in range(2):
        wall.now += 0.05
        clock.tick()
    assert deadlines.expired(clock.now()) == ["n1"]


def test_deadlines_moved_many_times_keep_only_the_latest_and_discard_forgets():
    deadlines = Deadlines()
    for beat in range(1000):  # heartbeats move one node's deadline again and again
        deadlines.set("a", 100 + beat)
    deadlines.set("b", 50)
    deadlines.set("c", 60)
    deadlines.discard("b")
    assert len(deadlines._heap) < 200  # stale entries are rebuilt away, not kept per heartbeat
    assert deadlines.next_due() == 60
    assert deadlines.expired(1098) == ["c"]
    assert deadlines.expired(1099) == ["a"] and "a" not in deadlines
    deadlines.set("b", 5)
    deadlines.set("b", 5)  # the same deadline twice: expires once
    assert deadlines.expired(10) == ["b"] and deadlines.expired(10) == [] and deadlines.next_due() is None


def test_registration_pace_admits_a_burst_then_spaces_then_refuses_beyond_the_wait():
    from swarmpy.manager.dispatcher.liveness import RegistrationPace

    pace = RegistrationPace(rate=10, burst=3, max_wait=0.5)
    assert [pace.slot(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]  # the burst
    waits = [pace.slot(100.0) for _ in range(5)]
    assert waits == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])  # then one every 1/rate s
    assert pace.slot(100.0) is None  # 0.6 s would exceed max_wait: refused, and takes no slot
    assert pace.slot(100.0) is None
    assert pace.slot(100.45) == pytest.approx(0.15)  # time passes: the next slot (at 100.6) is in reach again
    assert pace.slot(200.0) == 0.0  # idle long enough: a whole burst again
    with pytest.raises(ValueError):
        RegistrationPace(rate=0)


async def test_many_nodes_registering_at_once_are_paced_and_the_refused_stay_alive():
    """A new leader that has every node register at once admits them at the configured rate: the
    burst at once, the next ones spaced, the ones beyond the wait refused UNAVAILABLE (the node retries),
    and a refused node's heartbeat deadline moves on (it is alive) instead of expiring."""
    settings = DispatcherSettings(
        heartbeat_period=0.3, status_flush_interval=0.05, assignment_batch_window=0.02,
        registration_rate=20, registration_burst=2, registration_max_wait=0.2,
    )
    store = MemoryStore()
    nodes = [f"n{i}" for i in range(8)]
    await seed(store, *(("node", make_node(node_id)) for node_id in nodes))
    async with running_manager(store, settings=settings) as manager, grpc.aio.insecure_channel(manager.addr) as channel:
        stub = dispatcher_pb2_grpc.DispatcherStub(channel)
        started = time.monotonic()
        results = await asyncio.gather(*(open_session(stub, node_id) for node_id in nodes), return_exceptions=True)
        opened = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, BaseException)]
        # burst 2 at once, then one every 50 ms up to 200 ms: 2 + 4 admitted; the other 2 refused at once.
        assert len(opened) == 6, results
        assert all(isinstance(r, grpc.aio.AioRpcError) and r.code() == grpc.StatusCode.UNAVAILABLE
                   and "too many nodes are registering" in r.details() for r in refused), refused
        assert time.monotonic() - started >= 0.15  # the admitted were spaced, not all at once
        refused_nodes = [n for n, r in zip(nodes, results) if isinstance(r, BaseException)]
        # The refused retry a little later and get in; nobody was written DOWN meanwhile.
        await asyncio.sleep(0.3)
        retried = [await open_session(stub, node_id) for node_id in refused_nodes]
        assert all(first.session_id for _, first in retried)
        assert all(node_state(store, node_id) == READY for node_id in nodes)
        for call, _ in [*opened, *retried]:
            call.cancel()
