"""ControlRouter through a failover, over real gRPC: a call with no leader waits and is forwarded once one
appears; a write is resent only when it certainly was not proposed; the user's words when the wait ends.

Each "leader" is a grpc.aio server with a scripted Control servicer that records the calls it got; the
router under test is served on a unix socket like a follower's, and `Leadership` plays its manager: which
channel leads, and the event a change of leader sets. The last test runs the real CLI against it.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Awaitable, Callable

import grpc
import pytest

from swarmpy.api import control_pb2, control_pb2_grpc, objects_pb2
from swarmpy.manager.control_router import FORWARDED_KEY, ControlRouter
from swarmpy.manager.controlapi.errors import NO_LEADER, NOT_APPLIED

Behaviour = Callable[[grpc.aio.ServicerContext], Awaitable[None]]


async def answer(context) -> None:
    return None


async def refuse_unproposed(context) -> None:
    await context.abort(grpc.StatusCode.UNAVAILABLE, NO_LEADER, trailing_metadata=NOT_APPLIED)


async def lose_leadership(context) -> None:
    await context.abort(grpc.StatusCode.UNAVAILABLE,
                        f"{NO_LEADER} (leadership was lost; the change may or may not have been applied)")


async def hold(context) -> None:
    await asyncio.sleep(60)  # a frozen leader: the connection stays, no answer comes


class ScriptedLeader(control_pb2_grpc.ControlServicer):
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.creates: list[tuple[str, bool]] = []  # (service name, marked as forwarded)
        self.reads = 0

    async def CreateService(self, request, context):
        forwarded = any(key == FORWARDED_KEY for key, _ in context.invocation_metadata())
        self.creates.append((request.spec.annotations.name, forwarded))
        await self.behaviour(context)
        return control_pb2.CreateServiceResponse(service=objects_pb2.Service(id=f"id-{request.spec.annotations.name}"))

    async def ListServices(self, request, context):
        self.reads += 1
        await self.behaviour(context)
        return control_pb2.ListServicesResponse(services=[objects_pb2.Service(id="listed")])


class Leadership:
    """The follower's idea of the leader: a channel, and an event set when it changes."""

    def __init__(self) -> None:
        self.channel: grpc.aio.Channel | None = None
        self.moved = asyncio.Event()

    def move_to(self, channel: grpc.aio.Channel | None) -> None:
        self.channel = channel
        moved, self.moved = self.moved, asyncio.Event()
        moved.set()


class NotTheLeader(control_pb2_grpc.ControlServicer):
    """The follower's own servicer: the router must never call it."""


@pytest.fixture
async def servers():
    started: list[grpc.aio.Server] = []
    channels: list[grpc.aio.Channel] = []

    async def serve(servicer, address: str = "127.0.0.1:0") -> str:
        server = grpc.aio.server()
        control_pb2_grpc.add_ControlServicer_to_server(servicer, server)
        port = server.add_insecure_port(address)
        await server.start()
        started.append(server)
        return address if address.startswith("unix:") else f"127.0.0.1:{port}"

    async def leader(behaviour: Behaviour) -> tuple[ScriptedLeader, grpc.aio.Channel]:
        scripted = ScriptedLeader(behaviour)
        channel = grpc.aio.insecure_channel(await serve(scripted))
        channels.append(channel)
        return scripted, channel

    serve.leader = leader
    serve.channels = channels
    yield serve
    for channel in channels:
        await channel.close()
    for server in started:
        await server.stop(None)


async def follower(servers, tmp_path, leadership: Leadership, wait: float) -> control_pb2_grpc.ControlStub:
    router = ControlRouter(
        NotTheLeader(), is_leader=lambda: False, read_barrier=lambda: asyncio.sleep(0),
        leader_channel=lambda: leadership.channel, barrier_timeout=lambda: wait,
        leader_wait=lambda: wait, leader_moved=lambda: leadership.moved,
    )
    address = await servers(router, f"unix:{tmp_path}/follower.sock")
    channel = grpc.aio.insecure_channel(address)
    servers.channels.append(channel)
    return control_pb2_grpc.ControlStub(channel)


def create(name: str) -> control_pb2.CreateServiceRequest:
    request = control_pb2.CreateServiceRequest()
    request.spec.annotations.name = name
    return request


async def failover(servers, tmp_path, old: Behaviour, new: Behaviour):
    """A follower whose leader behaves as `old` until, 0.3 s on, leadership moves to one behaving as `new`."""
    leadership = Leadership()
    stub = await follower(servers, tmp_path, leadership, wait=5.0)
    old_leader, old_channel = await servers.leader(old)
    new_leader, new_channel = await servers.leader(new)
    leadership.move_to(old_channel)
    asyncio.get_running_loop().call_later(0.3, leadership.move_to, new_channel)
    return stub, old_leader, new_leader


async def test_a_call_with_no_leader_waits_and_is_forwarded_once_a_leader_appears(servers, tmp_path):
    leadership = Leadership()
    stub = await follower(servers, tmp_path, leadership, wait=5.0)
    new_leader, channel = await servers.leader(answer)
    loop = asyncio.get_running_loop()
    started = loop.time()
    loop.call_later(0.3, leadership.move_to, channel)
    response = await stub.CreateService(create("web"), timeout=10)
    assert response.service.id == "id-web"
    assert loop.time() - started >= 0.3
    assert new_leader.creates == [("web", True)]


async def test_a_write_refused_before_it_was_proposed_goes_to_the_next_leader(servers, tmp_path):
    stub, deposed, elected = await failover(servers, tmp_path, refuse_unproposed, answer)
    response = await stub.CreateService(create("web"), timeout=10)
    assert response.service.id == "id-web"
    assert (deposed.creates, elected.creates) == ([("web", True)], [("web", True)])


@pytest.mark.parametrize("behaviour", [lose_leadership, hold], ids=["leader-said-maybe", "leader-froze"])
async def test_a_write_that_may_have_been_proposed_is_never_sent_again(servers, tmp_path, behaviour):
    stub, old, new = await failover(servers, tmp_path, behaviour, answer)
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.CreateService(create("web"), timeout=10)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "may or may not have been applied" in failed.value.details(), failed.value.details()
    await asyncio.sleep(0.5)  # the new leader is there now: nothing may reach it late
    assert (old.creates, new.creates) == ([("web", True)], [])


async def test_a_read_is_retried_where_a_write_would_not_be(servers, tmp_path):
    stub, old, new = await failover(servers, tmp_path, lose_leadership, answer)
    response = await stub.ListServices(control_pb2.ListServicesRequest(), timeout=10)
    assert [s.id for s in response.services] == ["listed"]
    assert (old.reads, new.reads) == (1, 1)


async def cli(tmp_path, *args: str) -> tuple[int, str, float]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "swarmpy.cli.main", *args,
        env=dict(os.environ, SWARMPY_HOST=f"unix://{tmp_path}/follower.sock"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        _, stderr = await process.communicate()
    return process.returncode, stderr.decode(), loop.time() - started


@pytest.mark.parametrize("args", [("service", "ls"), ("service", "create", "-d", "--name", "web", "busybox")],
                         ids=["read", "write"])
async def test_when_no_leader_appears_within_the_bound_the_cli_says_so_and_nothing_was_applied(servers, tmp_path, args):
    leadership = Leadership()
    await follower(servers, tmp_path, leadership, wait=1.0)
    code, stderr, took = await cli(tmp_path, *args)
    assert code != 0
    assert len(stderr.splitlines()) == 1, stderr
    assert re.fullmatch(
        r"Error response from daemon: the swarm does not have a leader: none was elected within 1\.\d s, and the "
        r"request was not applied\. It's possible that too few managers are online\. Make sure more than half of "
        r"the managers are online\.\n", stderr), stderr
    assert took >= 1.0
