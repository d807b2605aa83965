"""The Agent against real Dispatchers (in-process grpc.aio servers on 127.0.0.1 over one MemoryStore), with a
fake worker and a fake log source standing in for the Docker side."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from swarmpy.api import dispatcher_pb2, objects_pb2
from swarmpy.manager.logbroker import LogBroker
from swarmpy.manager.store import MemoryStore
from swarmpy.worker.agent import Agent, AgentSettings, TaskStatusReports
from tests.manager.test_dispatcher import Manager, make_node, make_task, node_channel, seed, wait_for

FAST = AgentSettings(rpc_timeout=2.0, backoff_min=0.02, backoff_max=0.2, description_interval=0.1, status_batch_window=0.01)


class FakeWorker:
    """Test fake of swarmpy.worker.worker.Worker: records assignments and reports each new task RUNNING."""

    def __init__(self, reports: TaskStatusReports) -> None:
        self._reports = reports
        self.messages: list[dispatcher_pb2.AssignmentsMessage] = []
        self._tasks: dict[str, objects_pb2.Task] = {}

    async def apply(self, message: dispatcher_pb2.AssignmentsMessage) -> None:
        self.messages.append(message)
        if message.type == dispatcher_pb2.AssignmentsMessage.COMPLETE:
            self._tasks = {}
        for change in message.changes:
            if change.action == dispatcher_pb2.AssignmentChange.REMOVE:
                self._tasks.pop(change.task.id, None)
                continue
            is_new = change.task.id not in self._tasks
            self._tasks[change.task.id] = change.task
            if is_new and change.task.status.state < objects_pb2.RUNNING:
                await self._reports.report(change.task.id, objects_pb2.TaskStatus(state=objects_pb2.RUNNING, message="started"))

    def tasks(self) -> dict[str, objects_pb2.Task]:
        return dict(self._tasks)


class FakeLogSource:
    """Test fake of swarmpy.worker.logs.ExecutorLogSource: three lines per task, then (if following) silence."""

    def __init__(self) -> None:
        self.followers_closed = 0

    async def task_logs(self, task, options):
        context = dispatcher_pb2.LogContext(service_id=task.service_id, node_id="claimed-by-node", task_id=task.id)
        for i in range(3):
            yield dispatcher_pb2.LogMessage(context=context, data=f"{task.id} line {i}\n".encode())
        if options.follow:
            try:
                await asyncio.Event().wait()
            finally:
                self.followers_closed += 1


class Node:
    """An agent with its fake worker, run in the background for the test's duration."""

    def __init__(self, node_id: str, managers: list[str], tmp_path, log_source=None, hostname: str = "host") -> None:
        self.reports = TaskStatusReports()
        self.worker = FakeWorker(self.reports)
        self.hostname = hostname
        self.agent = Agent(
            node_id,
            managers,
            lambda addr: node_channel(addr, node_id),
            self.worker,
            self.describe,
            tmp_path / node_id,
            reports=self.reports,
            log_source=log_source,
            settings=FAST,
        )
        self._task: asyncio.Task | None = None

    async def describe(self) -> objects_pb2.NodeDescription:
        return objects_pb2.NodeDescription(hostname=self.hostname)

    async def __aenter__(self) -> Node:
        self._task = asyncio.create_task(self.agent.run())
        return self

    async def __aexit__(self, *exc) -> None:
        await self.agent.stop()
        await asyncio.wait_for(self._task, 2)


@contextlib.asynccontextmanager
async def managers(store: MemoryStore, count: int = 1, **kwargs):
    started = [await Manager(store, **kwargs).start(lead=(i == 0)) for i in range(count)]
    try:
        yield started
    finally:
        for manager in started:
            await manager.stop()




async def test_reports_stay_pending_until_acknowledged():
    reports = TaskStatusReports()
    await reports.report("t1", objects_pb2.TaskStatus(state=objects_pb2.STARTING))
    sent = reports.take(10)
    await reports.report("t1", objects_pb2.TaskStatus(state=objects_pb2.RUNNING))  # newer, while the first is in flight
    reports.acknowledge(sent)
    assert reports.pending()["t1"].state == objects_pb2.RUNNING
    reports.acknowledge(reports.take(10))
    assert reports.pending() == {}


class HeldStatusCalls:
    """A dispatcher stub whose UpdateTaskStatus calls wait until the test answers them, one by one."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, int], asyncio.Future[None]]] = []

    async def UpdateTaskStatus(self, request, timeout):
        answered = asyncio.get_running_loop().create_future()
        self.calls.append(({u.task_id: u.status.state for u in request.updates}, answered))
        await answered
        return dispatcher_pb2.UpdateTaskStatusResponse()


async def test_reports_go_out_while_a_call_is_in_flight_and_each_task_keeps_its_order(tmp_path):
    reports = TaskStatusReports()
    agent = Agent("n1", ["unused"], lambda addr: None, FakeWorker(reports), None, tmp_path, reports=reports, settings=FAST)
    stub = HeldStatusCalls()
    sender = asyncio.create_task(agent._report_statuses(stub))
    try:
        await reports.report("t1", objects_pb2.TaskStatus(state=objects_pb2.STARTING))
        await wait_for(lambda: len(stub.calls) == 1)
        # A newer report of t1 and a first one of t2 while t1's call is unanswered: t2 goes at once, alone.
        await reports.report("t1", objects_pb2.TaskStatus(state=objects_pb2.RUNNING))
        await reports.report("t2", objects_pb2.TaskStatus(state=objects_pb2.RUNNING))
        await wait_for(lambda: len(stub.calls) == 2)
        assert stub.calls[0][0] == {"t1": objects_pb2.STARTING}
        assert stub.calls[1][0] == {"t2": objects_pb2.RUNNING}
        await asyncio.sleep(5 * FAST.status_batch_window)
        assert len(stub.calls) == 2  # t1's RUNNING waits for the answer to its STARTING
        stub.calls[1][1].set_result(None)
        await asyncio.sleep(5 * FAST.status_batch_window)
        assert len(stub.calls) == 2 and set(reports.pending()) == {"t1"}
        stub.calls[0][1].set_result(None)
        await wait_for(lambda: len(stub.calls) == 3)
        assert stub.calls[2][0] == {"t1": objects_pb2.RUNNING}
        stub.calls[2][1].set_result(None)
        await wait_for(lambda: reports.pending() == {})
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender


async def test_agent_runs_assignments_and_its_reports_land_in_the_store(tmp_path):
    store = MemoryStore()
    await seed(store, ("node", make_node("n1")), ("task", make_task("t1", "n1")))
    async with managers(store) as (manager,), Node("n1", [manager.addr], tmp_path, hostname="box-1") as node:
        await wait_for(lambda: store.view().get_task("t1").status.state == objects_pb2.RUNNING)
        assert store.view().get_node("n1").status.state == objects_pb2.NodeStatus.READY
        assert store.view().get_node("n1").description.hostname == "box-1"
        assert node.worker.messages[0].type == dispatcher_pb2.AssignmentsMessage.COMPLETE

        await seed(store, ("task", make_task("t2", "n1")))
        await wait_for(lambda: store.view().get_task("t2").status.state == objects_pb2.RUNNING)
        assert node.worker.messages[-1].type == dispatcher_pb2.AssignmentsMessage.INCREMENTAL

        # Heartbeats keep the node up well past the 0.6 s grace.
        await asyncio.sleep(1.0)
        assert store.view().get_node("n1").status.state == objects_pb2.NodeStatus.READY

        # A changed description is pushed within the same session.
        session_id = node.agent.session_id
        node.hostname = "box-1-renamed"
        node.agent.description_changed()
        await wait_for(lambda: store.view().get_node("n1").description.hostname == "box-1-renamed")
        await asyncio.sleep(0.3)
        assert node.agent.session_id == session_id and node.agent.connected.is_set()


async def test_agent_moves_to_another_manager_when_its_manager_dies(tmp_path):
    store = MemoryStore()
    async with managers(store, count=2) as (first, second):
        await seed(
            store,
            ("node", make_node("m1", manager_addr=first.addr)),
            ("node", make_node("m2", manager_addr=second.addr)),
            ("node", make_node("n1")),
            ("task", make_task("t1", "n1")),
        )
        async with Node("n1", [first.addr], tmp_path) as node:  # told of the first manager only
            await wait_for(lambda: node.agent.connected.is_set() and node.agent.manager_addr == first.addr)
            await wait_for(lambda: store.view().get_task("t1").status.state == objects_pb2.RUNNING)

            await first.stop()  # the manager dies; the second one takes over the store
            await second.lead()
            await wait_for(lambda: node.agent.connected.is_set() and node.agent.manager_addr == second.addr, timeout=5)
            await wait_for(lambda: store.view().get_node("n1").status.state == objects_pb2.NodeStatus.READY)

            # Work continues through the new manager.
            await seed(store, ("task", make_task("t2", "n1")))
            await wait_for(lambda: store.view().get_task("t2").status.state == objects_pb2.RUNNING)


async def test_agent_follows_a_not_leader_redirect(tmp_path):
    store = MemoryStore()
    await seed(store, ("node", make_node("n1")))
    leader = await Manager(store).start()
    follower = await Manager(store, leader_addr=lambda: leader.addr).start(lead=False)
    try:
        async with Node("n1", [follower.addr], tmp_path) as node:
            await wait_for(lambda: node.agent.connected.is_set())
            assert node.agent.manager_addr == leader.addr
    finally:
        await follower.stop()
        await leader.stop()


async def test_status_reported_while_disconnected_is_sent_after_reconnecting(tmp_path):
    store = MemoryStore()
    await seed(store, ("node", make_node("n1")), ("task", make_task("t1", "n1", state=objects_pb2.RUNNING)))
    manager = await Manager(store).start(lead=False)
    try:
        async with Node("n1", [manager.addr], tmp_path) as node:
            await node.reports.report("t1", objects_pb2.TaskStatus(state=objects_pb2.FAILED, err="boom"))
            await asyncio.sleep(0.2)  # refused meanwhile: no leader
            assert store.view().get_task("t1").status.state == objects_pb2.RUNNING
            await manager.lead()
            await wait_for(lambda: store.view().get_task("t1").status.state == objects_pb2.FAILED)
            assert store.view().get_task("t1").status.err == "boom"
            await wait_for(lambda: node.reports.pending() == {})  # the answer follows the write
    finally:
        await manager.stop()


# ---------------------------------------------------------------- logs


async def test_service_logs_gathered_from_nodes_end_when_not_following(tmp_path):
    store = MemoryStore()
    await seed(
        store,
        ("node", make_node("n1")),
        ("node", make_node("n2")),
        ("task", make_task("a", "n1", service_id="web")),
        ("task", make_task("b", "n2", service_id="web")),
        ("task", make_task("c", "n2", service_id="db")),
    )
    broker = LogBroker(store)
    source = FakeLogSource()
    async with managers(store, log_broker=broker) as (manager,):
        async with Node("n1", [manager.addr], tmp_path, log_source=source), Node("n2", [manager.addr], tmp_path, log_source=source):
            await wait_for(lambda: all(store.view().get_task(t).status.state == objects_pb2.RUNNING for t in "abc"))
            await asyncio.sleep(0.1)  # both nodes' LogSubscriptions streams are open
            selector = dispatcher_pb2.LogSelector(service_ids=["web"])
            messages = [m async for m in broker.subscribe(selector, dispatcher_pb2.LogOptions(tail=-1))]
            lines = sorted(m.data.decode() for m in messages)
            assert lines == [f"{t} line {i}\n" for t in "ab" for i in range(3)]
            assert {(m.context.task_id, m.context.node_id, m.context.service_id) for m in messages} == {("a", "n1", "web"), ("b", "n2", "web")}


async def test_following_logs_runs_until_the_caller_stops_and_closes_the_nodes_readers(tmp_path):
    store = MemoryStore()
    await seed(store, ("node", make_node("n1")), ("task", make_task("a", "n1", service_id="web")))
    broker = LogBroker(store)
    source = FakeLogSource()
    async with managers(store, log_broker=broker) as (manager,), Node("n1", [manager.addr], tmp_path, log_source=source):
        await wait_for(lambda: store.view().get_task("a").status.state == objects_pb2.RUNNING)
        await asyncio.sleep(0.1)
        stream = broker.subscribe(dispatcher_pb2.LogSelector(task_ids=["a"]), dispatcher_pb2.LogOptions(follow=True, tail=-1))
        received = [await asyncio.wait_for(anext(stream), 2) for _ in range(3)]
        assert [m.data for m in received] == [b"a line 0\n", b"a line 1\n", b"a line 2\n"]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(stream), 0.2)  # following: no end of its own
        await stream.aclose()
        await wait_for(lambda: source.followers_closed == 1)


async def test_logs_of_a_node_that_is_not_connected_are_left_out(tmp_path):
    store = MemoryStore()
    await seed(store, ("node", make_node("n1")), ("task", make_task("a", "n1", service_id="web")))
    broker = LogBroker(store)
    messages = [m async for m in broker.subscribe(dispatcher_pb2.LogSelector(service_ids=["web"]), dispatcher_pb2.LogOptions())]
    assert messages == []
