"""The local socket's Control proxy: a manager that is still starting is waited for, not called a non-manager."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from swarmpy.api import control_pb2
from swarmpy.daemon import control_proxy
from swarmpy.daemon.control_proxy import NOT_IN_SWARM, WORKER_NODE, ControlProxy, NoControl


class Aborted(Exception):
    pass


class Context:
    """The part of grpc.aio.ServicerContext the proxy uses."""

    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None
        self.details = ""

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata=()) -> None:
        self.code, self.details = code, details
        raise Aborted(details)


class Manager:
    async def ListNodes(self, request, context):
        return control_pb2.ListNodesResponse(nodes=[])


async def test_a_call_to_a_starting_manager_waits_and_is_served_once_it_is_up():
    manager: list[Manager] = []

    def resolve():
        if not manager:
            raise NoControl(WORKER_NODE, starting=True)
        return manager[0]

    asyncio.get_running_loop().call_later(0.3, manager.append, Manager())
    async with asyncio.timeout(5):
        answer = await ControlProxy(resolve).ListNodes(control_pb2.ListNodesRequest(), Context())
    assert isinstance(answer, control_pb2.ListNodesResponse)


async def test_a_manager_that_does_not_start_in_time_is_refused_as_unavailable_nothing_applied(monkeypatch):
    monkeypatch.setattr(control_proxy, "STARTING_WAIT", 0.2)

    def resolve():
        raise NoControl(WORKER_NODE, starting=True)

    context = Context()
    with pytest.raises(Aborted):
        await ControlProxy(resolve).ListNodes(control_pb2.ListNodesRequest(), context)
    assert context.code == grpc.StatusCode.UNAVAILABLE
    assert context.details == "this node's swarm manager did not finish starting within 0.2 s; the request was not applied"


@pytest.mark.parametrize("message", [NOT_IN_SWARM, WORKER_NODE])
async def test_a_node_that_is_no_manager_is_refused_at_once(message):
    def resolve():
        raise NoControl(message)

    context = Context()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(Aborted):
        await ControlProxy(resolve).ListNodes(control_pb2.ListNodesRequest(), context)
    assert (context.code, context.details) == (grpc.StatusCode.FAILED_PRECONDITION, message)
    assert loop.time() - started < 0.05


@pytest.mark.parametrize(("role", "starting"), [("manager", True), ("worker", False)])
async def test_a_swarm_node_without_its_manager_says_whether_one_is_coming(tmp_path, role, starting):
    from swarmpy.daemon.state import DataDir, NodeState
    from swarmpy.daemon.swarmnode import SwarmNode

    state = NodeState(node_id="n1", cluster_id="c1", role=role, listen_addr="127.0.0.1:2377",
                      advertise_addr="127.0.0.1:2377")
    with pytest.raises(NoControl) as refused:
        SwarmNode(DataDir(tmp_path), state, "host").control()
    assert refused.value.starting is starting and str(refused.value) == WORKER_NODE
