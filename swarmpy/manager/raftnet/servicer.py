"""The Raft service every manager serves to the other managers: messages in, and joining or leaving the group.

Theory of operation
-------------------
The server runs behind swarmpy.ca.authz.AuthorizationInterceptor, whose policy admits only manager
certificates of this swarm to swarmpy.api.Raft; the caller's node id comes from that certificate.

ProcessRaftMessage decodes a batch (codec.decode_message), checks that every message really comes from
the manager that sent it, and hands each one to `driver.receive()`, which only queues it: the call
returns as soon as the messages are in the driver's inbox, never after Raft processed them.
- A message that cannot be decoded is dropped and counted; the rest of the batch is delivered and the
  call fails with INVALID_ARGUMENT so the sender hears about its bug.
- StreamRaftMessage carries one message too large for a gRPC message (a big SNAPSHOT) in chunks.
  codec.SnapshotAssembler checks the stream as it arrives; the sender check runs on the first chunk's
  header, before any more data is read, and the reassembled message goes to `driver.receive()` like
  any other. A stream announcing more than `max_snapshot_bytes` is refused with RESOURCE_EXHAUSTED,
  one that breaks the chunk protocol with INVALID_ARGUMENT, and nothing of it reaches Raft.
- A certificate proves a node id, but a Raft message claims a raft id. The `SenderCheck` compares the
  two using the members Raft recorded (RaftMember{raft_id, node_id, addr}, kept by the state machine
  from conf change contexts): a caller registered under another raft id, or claiming a raft id that
  belongs to another node, is refused with PERMISSION_DENIED and the whole batch is dropped. A pair
  nobody has recorded yet is let through, because a manager that just joined hears from its leader
  before its own store knows anyone.

Join and Leave change the membership; they run on the leader only (anyone else answers
FAILED_PRECONDITION naming the leader's address). Join gives the caller a fresh random raft id -- or
its existing one if its node id is already a member -- proposes the conf change with the member's
identity as context, and answers once the change is applied here, with the member list. Leave removes
the calling manager's own member; the core refuses a removal that would lose quorum, and the leader
cannot remove itself (it must hand leadership over first).
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import NoReturn, Protocol

import grpc

from swarmpy.api import objects_pb2, raft_pb2, raft_pb2_grpc
from swarmpy.ca.authz import caller_identity
from swarmpy.raft import errors
from swarmpy.raft.driver import RaftDriver
from swarmpy.raft.messages import NONE, ConfChange, ConfChangeType, Message

from . import codec

log = logging.getLogger(__name__)

MembersProvider = Callable[[], Iterable[objects_pb2.RaftMember]]
MembershipHook = Callable[[objects_pb2.RaftMember], Awaitable[None]]


class SenderCheck(Protocol):
    """Whether the manager with certificate node id `node_id` may send messages as raft id `raft_id`."""

    def __call__(self, node_id: str, raft_id: int) -> bool: ...


class MembersSenderCheck:
    """The default SenderCheck: refuse only what contradicts the recorded members (see the module docstring)."""

    def __init__(self, members: MembersProvider) -> None:
        self._members = members

    def __call__(self, node_id: str, raft_id: int) -> bool:
        for member in self._members():
            if member.node_id == node_id and member.raft_id != raft_id:
                return False  # this node is registered under another raft id
            if member.raft_id == raft_id and member.node_id != node_id:
                return False  # this raft id belongs to another node
        return True


def random_raft_id() -> int:
    """A Raft member id: random, non-zero, never derived from an address."""
    return random.SystemRandom().getrandbits(63) or 1


def caller_node_id() -> str:
    """The node id in the calling manager's certificate (from AuthorizationInterceptor)."""
    return caller_identity().node_id


@dataclass(slots=True)
class ServicerStats:
    batches: int = 0
    messages_delivered: int = 0
    malformed_messages: int = 0
    impersonations_refused: int = 0
    streams: int = 0
    streams_refused: int = 0


class RaftServicer(raft_pb2_grpc.RaftServicer):
    """swarmpy.api.Raft on a manager. See the module docstring."""

    def __init__(
        self,
        driver_provider: Callable[[], RaftDriver | None],
        members: MembersProvider,
        *,
        on_join: MembershipHook | None = None,
        on_leave: MembershipHook | None = None,
        sender_check: SenderCheck | None = None,
        caller: Callable[[], str] = caller_node_id,
        new_raft_id: Callable[[], int] = random_raft_id,
        max_snapshot_bytes: int = codec.DEFAULT_MAX_SNAPSHOT_BYTES,
    ) -> None:
        self._driver_provider = driver_provider
        self._members = members
        self._on_join = on_join
        self._on_leave = on_leave
        self._sender_check = sender_check if sender_check is not None else MembersSenderCheck(members)
        self._caller = caller
        self._new_raft_id = new_raft_id
        self.max_snapshot_bytes = max_snapshot_bytes
        self.stats = ServicerStats()

    # ---------------------------------------------------------------- messages

    async def ProcessRaftMessage(
        self, request: raft_pb2.RaftMessageBatch, context: grpc.aio.ServicerContext
    ) -> raft_pb2.ProcessRaftMessageResponse:
        driver = await self._running_driver(context)
        node_id = self._caller()
        self.stats.batches += 1
        messages: list[Message] = []
        first_problem = ""
        for encoded in request.messages:
            try:
                messages.append(codec.decode_message(encoded))
            except codec.MalformedRaftMessage as exc:
                self.stats.malformed_messages += 1
                first_problem = first_problem or str(exc)
                log.warning("dropped a malformed Raft message from manager %s: %s", node_id, exc)
        for message in messages:
            await self._check_sender(node_id, message.frm, message.type.name, "the whole batch", context)
        for message in messages:
            driver.receive(message)
        self.stats.messages_delivered += len(messages)
        if first_problem:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{len(request.messages) - len(messages)} malformed Raft messages dropped, e.g.: {first_problem}",
            )
        return raft_pb2.ProcessRaftMessageResponse()

    async def StreamRaftMessage(
        self, request_iterator: AsyncIterator[raft_pb2.RaftMessageChunk], context: grpc.aio.ServicerContext
    ) -> raft_pb2.ProcessRaftMessageResponse:
        driver = await self._running_driver(context)
        node_id = self._caller()
        self.stats.streams += 1
        assembler = codec.SnapshotAssembler(self.max_snapshot_bytes)
        try:
            async for chunk in request_iterator:
                checked = assembler.header is not None
                assembler.add(chunk)
                if not checked:
                    await self._check_sender(node_id, assembler.sender, "SNAPSHOT stream", "the stream", context)
            message = assembler.message()
        except codec.MalformedRaftMessage as exc:
            self.stats.streams_refused += 1
            log.warning("refused a Raft message stream from manager %s: %s", node_id, exc)
            too_large = isinstance(exc, codec.SnapshotTooLarge)
            code = grpc.StatusCode.RESOURCE_EXHAUSTED if too_large else grpc.StatusCode.INVALID_ARGUMENT
            await context.abort(code, f"Raft message stream refused: {exc}")
        driver.receive(message)
        self.stats.messages_delivered += 1
        log.debug("received a %d-byte snapshot from manager %s in a stream", assembler.total, node_id)
        return raft_pb2.ProcessRaftMessageResponse()

    async def _check_sender(
        self, node_id: str, raft_id: int, what: str, refused: str, context: grpc.aio.ServicerContext
    ) -> None:
        if self._sender_check(node_id, raft_id):
            return
        self.stats.impersonations_refused += 1
        reason = f"manager {node_id} sent a {what} claiming raft id {raft_id:x}, which is not its own; {refused} is refused"
        log.warning("refused Raft messages: %s", reason)
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, reason)

    # ---------------------------------------------------------------- membership

    async def Join(self, request: raft_pb2.RaftJoinRequest, context: grpc.aio.ServicerContext) -> raft_pb2.RaftJoinResponse:
        driver = await self._leader_driver(context)
        node_id = self._caller()
        if not request.addr:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"manager {node_id} asked to join without an address")
        existing = next((m for m in self._members() if m.node_id == node_id), None)
        if existing is not None:
            raft_id = existing.raft_id
            change_type = ConfChangeType.UPDATE_NODE if existing.addr != request.addr else None
        else:
            # A newcomer joins as a learner: it catches up without counting toward any quorum, and the
            # leader's role manager promotes it once it has (rolemanager.py), so a join never costs a
            # majority that has to wait for a member with an empty log.
            raft_id = self._fresh_raft_id()
            change_type = ConfChangeType.ADD_LEARNER
        member = objects_pb2.RaftMember(raft_id=raft_id, node_id=node_id, addr=request.addr)
        if change_type is not None:
            change = ConfChange(change_type, raft_id, member.SerializeToString())
            await self._propose(driver, change, context, f"{change_type.name} of manager {node_id} as {raft_id:x}")
            log.info("manager %s joined the Raft group as %x at %s", node_id, raft_id, request.addr)
        if self._on_join is not None:
            await self._on_join(member)
        return raft_pb2.RaftJoinResponse(raft_id=raft_id, members=list(self._members()))

    async def Leave(self, request: raft_pb2.RaftLeaveRequest, context: grpc.aio.ServicerContext) -> raft_pb2.RaftLeaveResponse:
        driver = await self._leader_driver(context)
        node_id = self._caller()
        member = next((m for m in self._members() if m.raft_id == request.raft_id), None)
        if member is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"raft id {request.raft_id:x} is not a member")
        if member.node_id != node_id:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"manager {node_id} asked to remove raft member {request.raft_id:x}, which is node "
                f"{member.node_id}; a manager may only remove itself",
            )
        if request.raft_id == driver.node_id:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"raft member {request.raft_id:x} is the leader; transfer leadership before it leaves",
            )
        change = ConfChange(ConfChangeType.REMOVE_NODE, request.raft_id)
        await self._propose(driver, change, context, f"removal of manager {node_id} ({request.raft_id:x})")
        log.info("manager %s (raft id %x) left the Raft group", node_id, request.raft_id)
        if self._on_leave is not None:
            await self._on_leave(member)
        return raft_pb2.RaftLeaveResponse()

    # ---------------------------------------------------------------- helpers

    def _fresh_raft_id(self) -> int:
        taken = {m.raft_id for m in self._members()}
        while (raft_id := self._new_raft_id()) in taken or raft_id == NONE:
            pass
        return raft_id

    async def _propose(self, driver: RaftDriver, change: ConfChange, context: grpc.aio.ServicerContext, what: str) -> None:
        """Propose `change` and wait until it is applied here; map Raft's refusals to gRPC statuses."""
        try:
            await driver.propose_conf_change(change)
        except errors.NotLeader as exc:
            await self._abort_not_leader(context, exc.leader)
        except errors.ConfChangeRefused as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"{what} refused: {exc}")
        except errors.ProposalDropped as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{what} not accepted now, retry: {exc}")
        except (errors.LeadershipLost, errors.Unavailable) as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{what} may or may not have happened, retry: {exc}")

    async def _running_driver(self, context: grpc.aio.ServicerContext) -> RaftDriver:
        driver = self._driver_provider()
        if driver is None or not driver.running:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "Raft is not running on this manager")
        return driver

    async def _leader_driver(self, context: grpc.aio.ServicerContext) -> RaftDriver:
        driver = await self._running_driver(context)
        if not driver.is_leader:
            await self._abort_not_leader(context, driver.leader)
        return driver

    async def _abort_not_leader(self, context: grpc.aio.ServicerContext, leader: int) -> NoReturn:
        if leader == NONE:
            where = "no leader is known yet; retry"
        else:
            addr = next((m.addr for m in self._members() if m.raft_id == leader), "")
            where = f"the leader is {leader:x} at {addr}" if addr else f"the leader is {leader:x} (address unknown)"
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"this manager is not the Raft leader; {where}")
        raise AssertionError("context.abort returned")
