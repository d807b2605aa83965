"""A manager: a Raft member holding the store, serving the swarm port, and leading when elected.

Theory of operation
-------------------
Every manager runs the Raft driver with the store as its state machine, and serves on its swarm port
(mutual TLS, authorized per method by swarmpy.ca.authz): Control for managers, Dispatcher for nodes,
CA for joiners, Raft for the other managers. Control is routed (control_router.py): the leader serves
it after a ReadIndex barrier, followers forward it to the leader. Writes are Raft proposals.

Leader-only work -- the dispatcher's liveness loop, the allocator, orchestrators, scheduler, restart
supervisor and task reaper -- runs in `LeaderLoops`, which starts it when this node becomes leader and
cancels and awaits all of it when it stops being leader. Each loop reconciles from the store when it
starts, so a new leader picks up exactly where the store says things are.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import grpc

from swarmpy.aio import unless_set
from swarmpy.api import ca_pb2_grpc, control_pb2_grpc, dispatcher_pb2_grpc, objects_pb2, raft_pb2, raft_pb2_grpc
from swarmpy.ca import tls
from swarmpy.ca.authz import AuthorizationInterceptor
from swarmpy.ca.keystore import NodeCredentials
from swarmpy.ca.rotation import trust_bundle
from swarmpy.ca.server import sign_for_cluster
from swarmpy.identity import new_id
from swarmpy.manager.allocator.networks import default_ingress_network
from swarmpy.raft.driver import DriverConfig, RaftDriver
from swarmpy.raft.errors import ConfChangeRefused, LeadershipLost, NotLeader, ProposalDropped, RaftError, Unavailable
from swarmpy.raft.messages import ConfChange, ConfChangeType
from swarmpy.autolock import new_unlock_key
from swarmpy.raft.encryption import RecordCipher
from swarmpy.raft.wal import DiskStorage

from .allocator import Allocator
from .ca_rotation import RootRotationReconciler
from .leader_ca import LeaderCAServicer, issued_certificate
from .control_router import FORWARD_TIMEOUT, NO_LEADER, ControlRouter
from .controlapi.errors import FailedPrecondition
from .controlapi.errors import Unavailable as ControlUnavailable
from .controlapi.raft_timing import effective_timing
from .controlapi.servicer import ControlServicer
from .dispatcher import Dispatcher, DispatcherGate, DispatcherSettings
from .logbroker import LogBroker
from .orchestrator import DelayedStarter, GlobalOrchestrator, JobsOrchestrator, ReplicatedOrchestrator, RestartSupervisor, TaskReaper
from .cluster_settings import ProtectRaftKey, follow_cluster_settings
from .raftnet.codec import DEFAULT_MAX_SNAPSHOT_BYTES
from .raftnet.keepalive import KeepAliveSender
from .raftnet.servicer import RaftServicer
from .raftnet.transport import GrpcTransport
from .raftstore import RaftProposer, StoreStateMachine
from .rolemanager import RoleManager, demotion_refusal
from .scheduler import Scheduler
from .store import Change, MemoryStore

log = logging.getLogger(__name__)

LoopFactory = Callable[[], Coroutine[Any, Any, None]]

# A crashed leader loop is a bug; it is logged and started again after this pause, so one bad object
# cannot stop the whole control plane.
LOOP_RESTART_DELAY = 1.0

# What a Raft message adds to its snapshot's data, at most (driver.estimated_message_bytes).
MESSAGE_OVERHEAD = 64 * 1024


class LeaderLoops:
    """Runs a set of loops exactly while this manager is the Raft leader."""

    def __init__(self, loops: dict[str, LoopFactory]) -> None:
        self._loops = loops
        self._leading = asyncio.Event()
        self._following = asyncio.Event()
        self._following.set()

    def set_leader(self, is_leader: bool) -> None:
        if is_leader:
            self._following.clear()
            self._leading.set()
        else:
            self._leading.clear()
            self._following.set()

    async def run(self) -> None:
        while True:
            await self._leading.wait()
            log.info("became leader: starting %s", ", ".join(self._loops))
            try:
                await unless_set(self._run_all(), self._following)
            except Exception:  # the loops' own failures were logged by _supervise; leadership ends either way
                log.debug("leader loops ended with an error", exc_info=True)
            log.info("leader loops stopped")

    async def _run_all(self) -> None:
        async with asyncio.TaskGroup() as group:
            for name, factory in self._loops.items():
                group.create_task(self._supervise(name, factory), name=name)

    async def _supervise(self, name: str, factory: LoopFactory) -> None:
        while True:
            try:
                await factory()
                return
            except Exception as error:
                crash = without_leadership_loss(error)
                if crash is None:
                    # set_leader(False) is on its way and will cancel the rest: an ending, not a crash.
                    log.info("leader loop %s stopped: this manager is no longer the leader", name)
                    return
                log.error(
                    "leader loop %s crashed; restarting it in %.0f s", name, LOOP_RESTART_DELAY, exc_info=crash
                )
                await asyncio.sleep(LOOP_RESTART_DELAY)


def without_leadership_loss(error: Exception) -> Exception | None:
    """The part of a loop's failure that is a crash: None when it only lost the leadership, which a loop
    running a TaskGroup reports inside an ExceptionGroup (possibly beside its siblings' cancellations)."""
    if isinstance(error, (NotLeader, LeadershipLost)):
        return None
    if isinstance(error, ExceptionGroup):
        _, rest = error.split((NotLeader, LeadershipLost))
        return rest
    return error


class ListenError(Exception):
    """The swarm port cannot be bound (in use, or not this host's address): the caller's to fix."""


@dataclass
class ClusterBootstrap:
    """What `swarm init` asks for; the manager proposes the first cluster and node objects from it."""

    cluster_id: str
    spec: objects_pb2.ClusterSpec
    root_ca: objects_pb2.RootCA
    node: objects_pb2.Node
    default_address_pool: list[str] = field(default_factory=list)  # empty: 10.0.0.0/8
    subnet_size: int = 0  # 0: /24
    data_path_port: int = 0  # 0: 4789


class Manager:
    def __init__(
        self,
        *,
        node_id: str,
        cluster_id: str,
        raft_id: int,
        raft_dir: str,
        listen_addr: str,
        advertise_addr: str,
        credentials: NodeCredentials,
        raft_config: DriverConfig | None = None,
        dispatcher_settings: DispatcherSettings | None = None,
        known_members: dict[int, str] | None = None,
        protect_raft_key: ProtectRaftKey | None = None,
        pinned_tick: float | None = None,
    ) -> None:
        """`pinned_tick` (SWARMPY_RAFT_TICK) overrides the cluster's tick period; the tick counts still follow it."""
        self.node_id = node_id
        # Stores this manager's Raft key as autolock wants it (the daemon's SwarmNode); see cluster_settings.
        self._protect_raft_key = protect_raft_key
        self._settings_task: asyncio.Task[None] | None = None
        self.cluster_id = cluster_id
        self.raft_id = raft_id
        self.listen_addr = listen_addr
        self.advertise_addr = advertise_addr
        self.credentials = credentials
        # Addresses of Raft members learnt when joining, until the replicated store knows them.
        self._known_members = dict(known_members or {})
        self.store = MemoryStore()
        self._raft_dir = raft_dir
        self._raft_config = raft_config or DriverConfig()
        self._pinned_tick = pinned_tick
        self.driver: RaftDriver | None = None
        self._transport: GrpcTransport | None = None
        self._keepalive: KeepAliveSender | None = None
        self.log_broker = LogBroker(self.store)
        self._dispatcher_settings = dispatcher_settings
        self.dispatcher_gate = DispatcherGate(self._leader_addr)
        self.control = ControlRouter(
            ControlServicer(
                self.store,
                log_broker=self.log_broker,
                check_demotion=lambda node: demotion_refusal(self.driver, self.store, node),
                remove_manager=self._remove_raft_member_of,
            ),
            is_leader=lambda: self.driver is not None and self.driver.is_leader,
            read_barrier=lambda: self.driver.read_index(),
            leader_channel=self._leader_channel,
            barrier_timeout=self._two_election_timeouts,
            leader_wait=self._two_election_timeouts,
            leader_moved=lambda: self._leader_moved,
        )
        self._leader_moved = asyncio.Event()  # replaced and set at each change of leader
        self._leader_channels: dict[str, grpc.aio.Channel] = {}
        self._retired_channels: list[grpc.aio.Channel] = []
        self._server: grpc.aio.Server | None = None
        self._server_credentials: tls.ReloadableServerCredentials | None = None
        self._loops = LeaderLoops(self._leader_loop_factories())
        self._loops_task: asyncio.Task[None] | None = None
        self._address_task: asyncio.Task[None] | None = None
        self._timing_task: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, bootstrap: ClusterBootstrap | None = None) -> None:
        # The daemon always hands a manager its Raft data encryption key (SwarmNode._start_manager);
        # only in-process test harnesses run without one.
        dek = self.credentials.raft_dek
        cipher = RecordCipher(dek) if dek else None
        storage = await asyncio.to_thread(DiskStorage, self._raft_dir, cipher=cipher)
        fresh = storage.last_index() == 0 and storage.snapshot().empty
        peers = (self.raft_id,) if (fresh and bootstrap is not None) else ()
        transport = self._transport = GrpcTransport(self._member_addr, self._peer_channel, self._raft_config.max_message_bytes)
        # A snapshot larger than one gRPC message arrives through StreamRaftMessage, bounded by that stream's
        # limit; the driver accepts snapshots up to the same bound. Single messages stay bounded by gRPC.
        driver_config = dataclasses.replace(
            self._raft_config, max_snapshot_bytes=DEFAULT_MAX_SNAPSHOT_BYTES + MESSAGE_OVERHEAD
        )
        self.driver = RaftDriver(
            self.raft_id, peers, storage, transport, StoreStateMachine(self.store), driver_config
        )
        self.store.proposer = RaftProposer(self.driver)
        self.driver.add_leadership_listener(self._on_leadership)
        self._loops_task = asyncio.create_task(self._loops.run(), name="leader-loops-supervisor")
        await self.driver.start()
        # The leader's heartbeats while its event loop is starved (issue 15): a thread, sync gRPC.
        self._keepalive = KeepAliveSender(
            self.driver.keepalive_heartbeats, transport.dialed_addr, self._peer_channel_sync,
            lambda driver=self.driver: driver.config.tick_interval, name=f"raft-keepalive-{self.raft_id:x}",
        )
        self._keepalive.start()
        self._timing_task = asyncio.create_task(self._follow_raft_timing(), name="raft-timing")
        await self._serve()
        self._settings_task = asyncio.create_task(
            follow_cluster_settings(self.store, self.driver, storage, self._protect_raft_key), name="cluster-settings"
        )
        if bootstrap is not None and fresh:
            await self.driver.wait_for_leader()
            await self._bootstrap(bootstrap)
        # After the bootstrap: its conf change records this member, and a second membership change
        # proposed meanwhile (the address check finding no entry yet) would be dropped and fail init.
        self._address_task = asyncio.create_task(self._keep_member_address_current(), name="raft-member-address")

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=1)
            self._server = None
        for task in (self._loops_task, self._address_task, self._settings_task, self._timing_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._loops_task = self._address_task = self._settings_task = self._timing_task = None
        keepalive, self._keepalive = self._keepalive, None
        if keepalive is not None:
            await asyncio.to_thread(keepalive.stop)  # joins the thread (it wakes at once)
        if self.driver is not None:
            await self.driver.stop()
        for channel in [*self._leader_channels.values(), *self._retired_channels]:
            await channel.close()
        self._leader_channels.clear()
        self._retired_channels.clear()

    async def wait_until_voter(self, timeout: float) -> None:
        """A joining manager starts as a learner (a non-voting member) and the leader promotes it once its
        log has caught up (rolemanager.py). Returns once this manager is a voter in its own applied
        configuration; raises Unavailable, saying how far it got, after `timeout` seconds."""
        driver = self.driver
        if driver is None or not driver.running:
            raise Unavailable(f"manager {self.node_id}: Raft is not running")
        try:
            async with asyncio.timeout(timeout):
                while self.raft_id not in driver.status().voters:
                    await asyncio.sleep(self._raft_config.tick_interval)
        except TimeoutError:
            status = driver.status()
            raise Unavailable(
                f"this manager joined the Raft group as a non-voting member but was not promoted within {timeout:.0f} s "
                f"(it has applied up to index {status.applied}, its log ends at {status.last_index}; the leader promotes "
                "a member once its log is nearly complete)"
            ) from None

    async def leave_raft(self, timeout: float) -> None:
        """Have the leader remove this manager from the Raft group, handing leadership over first if it is
        this one (the leader cannot remove itself). For `swarm leave --force`: without it the others keep
        counting a member that will never answer again, and one more loss costs them their quorum.
        Raises RaftError or grpc.aio.AioRpcError when it cannot be done; the last manager has nothing to do."""
        driver = self.driver
        if driver is None or not driver.running:
            raise Unavailable(f"manager {self.node_id}: Raft is not running, so it cannot leave the group")
        status = driver.status()
        others = [v for v in status.voters if v != self.raft_id]
        if not others:
            return
        async with asyncio.timeout(timeout):
            if driver.is_leader:
                # The most caught-up member takes over fastest.
                successor = max(others, key=lambda v: status.progress[v].match if v in status.progress else -1)
                await driver.transfer_leadership(successor)
            while not await self._ask_leader_to_remove_this_member():
                # No leader yet, or a leader too new to change the membership (it must first commit an
                # entry of its own term): both pass within a few ticks.
                await asyncio.sleep(self._raft_config.tick_interval)
        log.info("manager %s (raft id %x) left the Raft group", self.node_id, self.raft_id)

    async def _ask_leader_to_remove_this_member(self) -> bool:
        """One Raft.Leave to the leader: True once done, False when worth asking again; raises otherwise."""
        leader = self.driver.leader
        leader_addr = self._member_addr(leader) if leader and leader != self.raft_id else None
        if not leader_addr:
            return False
        async with self._peer_channel(leader_addr) as channel:
            try:
                await raft_pb2_grpc.RaftStub(channel).Leave(
                    raft_pb2.RaftLeaveRequest(raft_id=self.raft_id), timeout=FORWARD_TIMEOUT
                )
            except grpc.aio.AioRpcError as error:
                moved = error.code() == grpc.StatusCode.FAILED_PRECONDITION and "not the Raft leader" in (error.details() or "")
                if error.code() == grpc.StatusCode.UNAVAILABLE or moved:
                    log.debug("asking %s to remove this manager from Raft: %s", leader_addr, error.details())
                    return False
                raise
        return True

    async def _keep_member_address_current(self) -> None:
        """Make this manager's Raft member entry carry the address it advertises now.

        A manager restarted with another address (node.json changed) is still dialled at the old one, so
        it never hears from the leader and cannot find it: it asks every other member in turn to Join it
        again, which the leader answers with an UPDATE_NODE of the same raft id and the new address (the
        others refuse, naming the leader). Alone, it is the leader and records the change itself. Until
        its store has caught up it may not see its entry yet; it just looks again.
        """
        retry = self._raft_config.election_tick * self._raft_config.tick_interval
        while True:
            recorded = next((m.addr for m in self.store.view().members() if m.raft_id == self.raft_id), None)
            if recorded == self.advertise_addr:
                return
            if recorded is None:
                await asyncio.sleep(self._raft_config.tick_interval)
                continue
            if await self._update_member_address(recorded):
                log.info("manager %s (raft id %x): member address changed from %s to %s",
                         self.node_id, self.raft_id, recorded, self.advertise_addr)
                return
            await asyncio.sleep(retry)

    async def _update_member_address(self, recorded: str) -> bool:
        """One attempt to record this manager's new address in Raft; True once done."""
        driver = self.driver
        assert driver is not None
        if driver.is_leader:
            me = objects_pb2.RaftMember(raft_id=self.raft_id, node_id=self.node_id, addr=self.advertise_addr)
            try:
                await driver.propose_conf_change(ConfChange(ConfChangeType.UPDATE_NODE, self.raft_id, me.SerializeToString()))
            except RaftError as exc:
                log.debug("recording this manager's new address: %s", exc)
                return False
            return True
        others = [m.addr for m in self.store.view().members() if m.raft_id != self.raft_id and m.addr]
        for addr in others:
            async with self._peer_channel(addr) as channel:
                try:
                    await raft_pb2_grpc.RaftStub(channel).Join(
                        raft_pb2.RaftJoinRequest(addr=self.advertise_addr), timeout=FORWARD_TIMEOUT
                    )
                except grpc.aio.AioRpcError as error:
                    log.debug("asking %s to record this manager's address %s (was %s): %s",
                              addr, self.advertise_addr, recorded, error.details())
                    continue
            return True
        return False

    async def _remove_raft_member_of(self, node: objects_pb2.Node) -> None:
        """`node rm --force` of a manager: its Raft member goes (a REMOVE the core refuses if the others
        could not keep a quorum), so the managers left stop counting a voter that will never answer."""
        driver = self.driver
        if driver is None or not driver.is_leader:
            raise ControlUnavailable(NO_LEADER)
        raft_id = next((m.raft_id for m in self.store.view().members() if m.node_id == node.id), 0)
        raft_id = raft_id or node.manager_status.raft_id
        status = driver.status()
        if not raft_id or (raft_id not in status.voters and raft_id not in status.learners):
            return  # not a member (any more): only the node object is left to delete
        if raft_id == driver.node_id:
            raise FailedPrecondition(
                f"node {node.id} is the leader of the swarm and cannot remove itself; demote it first "
                "(leadership moves to another manager), then remove it"
            )
        try:
            await driver.propose_conf_change(ConfChange(ConfChangeType.REMOVE_NODE, raft_id))
        except ConfChangeRefused as exc:
            raise FailedPrecondition(f"can't remove manager node {node.id} from the raft cluster: {exc}") from exc
        except ProposalDropped as exc:
            raise ControlUnavailable(f"can't remove manager node {node.id} now, retry: {exc}") from exc
        log.info("manager node %s (raft id %x) removed from the Raft group by force", node.id, raft_id)

    def _two_election_timeouts(self) -> float:
        """How long a leader may take to appear (and a read barrier to pass) before callers are told."""
        config = self.driver.config if self.driver is not None else self._raft_config
        return 2 * config.election_tick * config.tick_interval

    async def _follow_raft_timing(self) -> None:
        """Run Raft with the cluster's timing (spec.raft), on every manager, from the replicated store: each
        applies a change when it applies the update, so all members agree within a heartbeat."""
        view, watch = self.store.view_and_watch(["cluster"])
        try:
            self._apply_raft_timing(view.get_cluster())
            async for event in watch:
                if isinstance(event, Change) and event.new is not None:
                    self._apply_raft_timing(event.new)
        finally:
            watch.close()

    def _apply_raft_timing(self, cluster: objects_pb2.Cluster | None) -> None:
        if cluster is None or self.driver is None:
            return
        raft = cluster.spec.raft
        timing = effective_timing(raft.tick_period, raft.heartbeat_tick, raft.election_tick)
        tick = self._pinned_tick if self._pinned_tick is not None else timing.tick_seconds
        self.driver.retune(tick, timing.heartbeat_tick, timing.election_tick)

    def _on_leadership(self, is_leader: bool, leader: int) -> None:
        self._loops.set_leader(is_leader)
        moved, self._leader_moved = self._leader_moved, asyncio.Event()
        moved.set()

    def _leader_addr(self) -> str:
        """The swarm address of the current Raft leader, for redirecting agents ("" if unknown)."""
        leader = self.driver.leader if self.driver is not None else 0
        if not leader:
            return ""
        # The Raft member table first: it is written with the membership change itself, whereas a node's
        # manager_status waits for the role manager, so a manager that won an election just after joining
        # would otherwise be unreachable by forwarding until it wrote its own status.
        return self._member_addr(leader) or next(
            (n.manager_status.addr for n in self.store.view().nodes() if n.manager_status.raft_id == leader), ""
        )

    async def _run_dispatcher(self) -> None:
        """One dispatcher per leadership term: sessions of a former term are never trusted."""
        dispatcher = Dispatcher(self.store, self._dispatcher_settings, log_broker=self.log_broker)
        self.dispatcher_gate.serve(dispatcher)
        try:
            await dispatcher.run()
        finally:
            self.dispatcher_gate.stop_serving()

    async def _serve(self) -> None:
        server = grpc.aio.server(
            interceptors=[AuthorizationInterceptor(self.cluster_id, self._trusted_roots)],
            options=tls.server_options(),
        )
        control_pb2_grpc.add_ControlServicer_to_server(self.control, server)
        dispatcher_pb2_grpc.add_DispatcherServicer_to_server(self.dispatcher_gate, server)
        view = self.store.view()
        ca_pb2_grpc.add_CAServicer_to_server(LeaderCAServicer(self, view.get_cluster, view.get_node), server)
        raft_pb2_grpc.add_RaftServicer_to_server(
            RaftServicer(lambda: self.driver, view.members), server
        )
        self._server_credentials = tls.ReloadableServerCredentials(
            self.credentials.key_pem, self.credentials.cert_pem, self.credentials.root_cert_pem
        )
        creds = self._server_credentials.credentials
        try:
            bound = server.add_secure_port(self.listen_addr, creds)
        except RuntimeError:  # grpc's "Failed to bind", with advice about GRPC_VERBOSITY
            bound = 0
        if bound == 0:
            raise ListenError(
                f"cannot listen on {self.listen_addr}: the address is already in use or not an address of this host"
            )
        await server.start()
        self._server = server

    def _trusted_roots(self) -> bytes:
        """The roots a caller's certificate may come from: the store's (both during a CA rotation, at once
        on every manager), else the ones this manager was given."""
        cluster = self.store.view().get_cluster()
        return trust_bundle(cluster.root_ca) if cluster is not None and cluster.root_ca.ca_cert else self.credentials.root_cert_pem

    async def _bootstrap(self, boot: ClusterBootstrap) -> None:
        cluster = objects_pb2.Cluster(
            id=boot.cluster_id, spec=boot.spec, root_ca=boot.root_ca,
            default_address_pool=boot.default_address_pool, subnet_size=boot.subnet_size,
            vxlan_udp_port=boot.data_path_port,
        )
        if cluster.spec.encryption_config.auto_lock_managers:  # swarm init --autolock
            cluster.unlock_key = new_unlock_key()

        def create(tx: Any) -> None:
            tx.create("cluster", cluster)
            tx.create("node", boot.node)
            tx.create("network", default_ingress_network())

        await self.store.update(create)
        # The founding member's identity: the bootstrap conf change carries none, and other managers check
        # Raft senders against it.
        me = objects_pb2.RaftMember(raft_id=self.raft_id, node_id=self.node_id, addr=self.advertise_addr)
        await self.driver.propose_conf_change(
            ConfChange(ConfChangeType.UPDATE_NODE, self.raft_id, me.SerializeToString())
        )

    def _member_addr(self, raft_id: int) -> str | None:
        for member in self.store.view().members():
            if member.raft_id == raft_id and member.addr:
                return member.addr
        return self._known_members.get(raft_id)

    def _peer_channel(self, addr: str) -> grpc.aio.Channel:
        return tls.secure_channel(addr, self.credentials, self._raft_config.max_message_bytes)

    def _peer_channel_sync(self, addr: str) -> grpc.Channel:
        creds = self.credentials
        return grpc.secure_channel(
            addr, tls.channel_credentials(creds.key_pem, creds.cert_pem, creds.root_cert_pem),
            options=tls.channel_options(self._raft_config.max_message_bytes),
        )

    def update_credentials(self, credentials: NodeCredentials) -> None:
        """A renewed certificate: new connections present it; established ones keep their session."""
        self.credentials = credentials
        if self._server_credentials is not None:
            self._server_credentials.update(credentials.key_pem, credentials.cert_pem, credentials.root_cert_pem)
        # Dial the leader and the Raft peers afresh with the new certificate (after a CA rotation the old
        # one is refused); the old leader channels close when the manager stops.
        self._retired_channels.extend(self._leader_channels.values())
        self._leader_channels.clear()
        if self._transport is not None:
            self._transport.renew_channels()
        if self._keepalive is not None:
            self._keepalive.renew()

    def _leader_channel(self) -> grpc.aio.Channel | None:
        """A channel to the leader's swarm port, with this manager's certificate (None: no leader known)."""
        addr = self._leader_addr()
        if not addr:
            return None
        channel = self._leader_channels.get(addr)
        if channel is None:
            channel = self._leader_channels[addr] = tls.secure_channel(addr, self.credentials)
        return channel

    async def _issue_certificate(
        self, role: int, csr_pem: bytes, availability: int, advertise_addr: str
    ) -> tuple[str, bytes, str]:
        """Create the joining node in the store, then sign its certificate (the CA servicer checked the token)."""
        cluster = self.store.view().get_cluster()
        node_id = new_id()
        # Sign first: a signing failure then leaves no node behind, and a certificate nobody holds is harmless.
        cert = await sign_for_cluster(cluster, csr_pem, node_id, role)
        node = objects_pb2.Node(id=node_id, role=role)
        node.certificate.CopyFrom(issued_certificate(node_id, role, cert))
        node.spec.desired_role = role
        node.spec.availability = availability
        node.status.state = objects_pb2.NodeStatus.UNKNOWN
        await self.store.update(lambda tx: tx.create("node", node))
        return node_id, cert, cluster.id

    def _leader_loop_factories(self) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
        """Each factory builds its loop afresh: a new term starts from the store, not from old memory."""
        store = self.store
        return {
            "dispatcher": self._run_dispatcher,
            "role-manager": lambda: RoleManager(store, self.driver).run(),
            "log-broker": self.log_broker.run,
            "allocator": lambda: Allocator(store).run(),
            "replicated-orchestrator": lambda: ReplicatedOrchestrator(store).run(),
            "global-orchestrator": lambda: GlobalOrchestrator(store).run(),
            "jobs-orchestrator": lambda: JobsOrchestrator(store).run(),
            "scheduler": lambda: Scheduler(store).run(),
            "restart-supervisor": lambda: RestartSupervisor(store).run(),
            "delayed-starter": lambda: DelayedStarter(store).run(),
            "task-reaper": lambda: TaskReaper(store).run(),
            "ca-rotation": lambda: RootRotationReconciler(store).run(),
        }

