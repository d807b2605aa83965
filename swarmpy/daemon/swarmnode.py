"""This daemon as a member of a swarm: its identity, its manager (if any) and its worker side.

Every node runs tasks (managers too, as in Docker unless drained): a Worker with the Docker executor,
fed by an Agent that holds a session with a manager's dispatcher over mutual TLS -- also on a manager,
where it dials its own swarm port, so one code path serves every node.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
import socket
from typing import Any

import grpc

from swarmpy import autolock
from swarmpy.api import control_pb2, objects_pb2
from swarmpy.ca.bootstrap import fetch_root_ca, renew_node_certificate, request_node_certificate, split_host_port
from swarmpy.ca.certs import create_root_ca, make_node_key_and_csr, parse_node_certificate, renewal_delay, sign_node_csr
from swarmpy.ca.errors import CAError
from swarmpy.ca.keystore import NodeCredentials, load_node_credentials, save_node_credentials
from swarmpy.ca.tokens import new_join_tokens, parse_join_token
from swarmpy.identity import new_id
from swarmpy.manager.controlapi.defaults import cluster_spec_for_init
from swarmpy.manager.controlapi.networks import validate_swarm_networking
from swarmpy.manager.controlapi.validation import validate_cluster_spec
from swarmpy.manager.controlapi.errors import ControlError
from swarmpy.manager.leader_ca import issued_certificate
from swarmpy.manager.manager import ClusterBootstrap, ListenError, Manager
from swarmpy.manager.raftnet.servicer import random_raft_id
from swarmpy.raft.encryption import new_key as new_raft_key
from swarmpy.raft.errors import RaftError

from .control_proxy import WORKER_NODE, NoControl
from .interfaces import InterfaceError, resolve_addr
from .localnode import LocalNodeError
from .raft_join import RaftJoinFailed, join_raft
from .state import DataDir, NodeState
from .tuning import pinned_raft_tick, raft_config_from_environment
from .worker_side import WorkerSide, describe_node

log = logging.getLogger(__name__)

DEFAULT_PORT = 2377
ROLE_RETRY_DELAY = 2.0
LEAVE_RAFT_TIMEOUT = 10.0  # `swarm leave --force` on a manager: how long to try being removed from Raft
# A joining manager catches up as a learner; join (and a promotion's role change) waits this long for the
# leader to make it a voter, then gives up (and asks to be removed again).
PROMOTION_TIMEOUT = 120.0


class SwarmNode:
    def __init__(self, data_dir: DataDir, state: NodeState, hostname: str) -> None:
        self.data_dir = data_dir
        self.state = state
        self.hostname = state.hostname or hostname
        self.credentials: NodeCredentials | None = None
        self.locked = False  # autolock: a restarted manager waits for `swarm unlock`
        self.manager: Manager | None = None
        self.worker: WorkerSide | None = None
        self._latest_node: objects_pb2.Node | None = None
        self._node_changed = asyncio.Event()
        self._role_task: asyncio.Task[None] | None = None
        self._renewal_task: asyncio.Task[None] | None = None
        # Wakes the renewal task early: a CA rotation asked this node to renew, or sent new roots to trust.
        self._certificate_news = asyncio.Event()
        self._rotate_asked = False
        self._rotated_from = b""  # the certificate the last renewal a CA rotation asked for replaced
        self._offered_roots = b""

    # -- becoming a member ------------------------------------------------------------------

    @classmethod
    async def init(cls, data_dir: DataDir, hostname: str, request: control_pb2.InitRequest) -> SwarmNode:
        # in a thread: naming an interface asks the kernel over netlink
        listen_addr, advertise_addr = await asyncio.to_thread(_addresses, request.listen_addr, request.advertise_addr)
        try:
            spec = cluster_spec_for_init(request.spec)
            validate_cluster_spec(spec)
            validate_swarm_networking(
                request.default_addr_pool, request.subnet_size, request.data_path_port, request.data_path_addr
            )
        except ControlError as exc:
            raise LocalNodeError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from exc
        cluster_id, node_id = new_id(), new_id()
        root_key, root_cert = await asyncio.to_thread(create_root_ca)
        key, csr = await asyncio.to_thread(make_node_key_and_csr)
        cert = await asyncio.to_thread(
            sign_node_csr, root_key, root_cert, csr, node_id, objects_pb2.MANAGER, cluster_id,
            float(spec.ca_config.node_cert_expiry) / 1e9,
        )
        credentials = NodeCredentials(key_pem=key, cert_pem=cert, root_cert_pem=root_cert)
        await asyncio.to_thread(data_dir.erase_swarm_state)
        await save_node_credentials(data_dir.root, credentials)
        state = NodeState(
            node_id=node_id, cluster_id=cluster_id, role="manager", listen_addr=listen_addr,
            advertise_addr=advertise_addr, raft_id=random_raft_id(), managers=[advertise_addr], hostname=hostname,
            data_path_addr=request.data_path_addr,
        )
        root_ca = objects_pb2.RootCA(ca_key=root_key, ca_cert=root_cert, join_tokens=new_join_tokens(root_cert))
        node = objects_pb2.Node(id=node_id, role=objects_pb2.MANAGER, description=describe_node(
            hostname, data_path_addr=request.data_path_addr or split_host_port(advertise_addr)[0]))
        node.spec.desired_role = objects_pb2.MANAGER
        node.spec.availability = request.availability
        node.status.state = objects_pb2.NodeStatus.READY
        node.status.addr = split_host_port(advertise_addr)[0]
        node.manager_status.raft_id = state.raft_id
        node.manager_status.addr = advertise_addr
        node.manager_status.leader = True
        node.manager_status.reachability = objects_pb2.ManagerStatus.REACHABLE
        node.certificate.CopyFrom(issued_certificate(node_id, objects_pb2.MANAGER, cert))
        swarm = cls(data_dir, state, hostname)
        swarm.credentials = credentials
        try:
            await swarm._start_manager(ClusterBootstrap(
                cluster_id, spec, root_ca, node, list(request.default_addr_pool), request.subnet_size,
                request.data_path_port,
            ))
            await swarm._start_worker()
        except BaseException as exc:
            await swarm._abandon(exc)
            raise
        await asyncio.to_thread(data_dir.save, state)
        return swarm

    @classmethod
    async def join(cls, data_dir: DataDir, hostname: str, request: control_pb2.JoinRequest) -> SwarmNode:
        if not request.remote_addrs:
            raise LocalNodeError(grpc.StatusCode.INVALID_ARGUMENT, "join needs the address of a manager")
        remote = _with_port(request.remote_addrs[0])
        advertise_for_ca = await asyncio.to_thread(_resolved, request.advertise_addr)
        try:
            validate_swarm_networking((), 0, 0, request.data_path_addr)
        except ControlError as exc:
            raise LocalNodeError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from exc
        try:
            token = parse_join_token(request.join_token)
            root_cert = await fetch_root_ca(remote, token.ca_digest)
            issued = await request_node_certificate(
                remote, root_cert, request.join_token, request.availability, advertise_for_ca
            )
        except CAError as exc:
            raise LocalNodeError(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from exc
        # in a thread: naming an interface asks the kernel over netlink
        listen_addr, advertise_addr = await asyncio.to_thread(_addresses, request.listen_addr, request.advertise_addr)
        credentials = NodeCredentials(key_pem=issued.key_pem, cert_pem=issued.cert_pem, root_cert_pem=root_cert)
        await asyncio.to_thread(data_dir.erase_swarm_state)
        await save_node_credentials(data_dir.root, credentials)
        state = NodeState(
            node_id=issued.node_id, cluster_id=issued.cluster_id, role="worker", listen_addr=listen_addr,
            advertise_addr=advertise_addr, managers=[remote], hostname=hostname,
            data_path_addr=request.data_path_addr,
        )
        swarm = cls(data_dir, state, hostname)
        swarm.credentials = credentials
        try:
            if parse_node_certificate(issued.cert_pem).role == objects_pb2.MANAGER:
                await swarm._join_managers()
            await asyncio.to_thread(data_dir.save, state)
            await swarm._start_worker()
        except BaseException as exc:
            await swarm._abandon(exc)
            raise
        return swarm

    async def _abandon(self, error: BaseException) -> None:
        """A failed init or join leaves nothing behind; raises what the user should read, if any."""
        await self.stop()
        await asyncio.to_thread(self.data_dir.erase_swarm_state)
        if isinstance(error, ListenError):
            raise LocalNodeError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from error

    # -- running ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume from the data dir after a daemon restart."""
        self.credentials = await load_node_credentials(self.data_dir.root)
        if self.credentials is None:
            raise RuntimeError(f"{self.data_dir.certificates}: node certificates are missing; leave and rejoin")
        if self.credentials.key_pem_locked or (self.state.role == "manager" and self.credentials.raft_dek_wrapped):
            # Autolock: the TLS key and Raft key are locked by the unlock key; nothing runs until `swarm unlock`.
            self.locked = True
            log.warning("node %s is locked: its Raft data stays encrypted until `swarm unlock`", self.state.node_id)
            return
        await self._run_roles()

    async def _run_roles(self) -> None:
        if self.state.role == "manager":
            await self._start_manager(None)
        await self._start_worker()

    async def unlock(self, unlock_key: str) -> None:
        """`swarm unlock`: open the Raft key with the unlock key and start; a wrong key changes nothing."""
        assert self.credentials is not None
        if not self.locked:
            raise LocalNodeError(grpc.StatusCode.FAILED_PRECONDITION, "swarm is not locked")
        credentials = self.credentials
        try:
            dek = autolock.unwrap(credentials.raft_dek_wrapped, unlock_key) if credentials.raft_dek_wrapped else credentials.raft_dek
            key_pem = autolock.unlock_private_key(credentials.key_pem_locked, unlock_key) if credentials.key_pem_locked else credentials.key_pem
        except (ValueError, autolock.WrongUnlockKey) as exc:
            raise LocalNodeError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        self.credentials = dataclasses.replace(
            credentials, key_pem=key_pem, raft_dek=dek, raft_dek_wrapped=b"", key_pem_locked=b"", lock_key=unlock_key
        )
        self.locked = False
        log.info("node %s unlocked", self.state.node_id)
        await self._run_roles()

    async def _protect_raft_key(self, autolock_on: bool, unlock_key: str) -> None:
        """Store the Raft key as the cluster's autolock setting wants: wrapped by the unlock key, or not."""
        credentials = self.credentials
        assert credentials is not None and credentials.raft_dek
        lock_key = unlock_key if autolock_on else ""
        if lock_key == credentials.lock_key:
            return  # stored that way already (a restart without autolock, or unlocked with this key)
        self.credentials = dataclasses.replace(credentials, lock_key=lock_key)
        await save_node_credentials(self.data_dir.root, self.credentials)
        if self.worker is not None:
            self.worker.credentials = self.credentials
        log.info("node %s: TLS and Raft keys now %s", self.state.node_id,
                 "locked by the unlock key" if lock_key else "stored unlocked (autolock off)")

    async def stop(self) -> None:
        for task in (self._role_task, self._renewal_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._role_task = self._renewal_task = None
        if self.worker is not None:
            await self.worker.stop()
            self.worker = None
        if self.manager is not None:
            await self.manager.stop()
            self.manager = None

    async def leave(self, force: bool) -> None:
        if self.manager is not None:
            if not force:
                raise LocalNodeError(grpc.StatusCode.FAILED_PRECONDITION, self._manager_leave_warning())
            try:
                await self.manager.leave_raft(LEAVE_RAFT_TIMEOUT)
            except (RaftError, grpc.aio.AioRpcError, TimeoutError) as exc:
                # Best effort: the user insisted on leaving. The others keep this member until a manager
                # with a quorum demotes and removes the node.
                log.warning("node %s leaves without being removed from the Raft group: %s", self.state.node_id,
                            exc.details() if isinstance(exc, grpc.aio.AioRpcError) else repr(exc))
        if self.worker is not None:
            await self.worker.shut_down_tasks()
        await self.stop()
        await asyncio.to_thread(self.data_dir.erase_swarm_state)

    def _manager_leave_warning(self) -> str:
        """docker's refusal of `swarm leave` on a manager, with what leaving would do to the quorum."""
        message = "You are attempting to leave the swarm on a node that is participating as a manager. "
        assert self.manager is not None
        driver = self.manager.driver
        status = driver.status() if driver is not None and driver.running else None
        if status is None or not driver.is_leader:
            # Only the leader tracks who is reachable; a follower cannot count.
            message += "Doing so may lose the consensus of your cluster. "
        else:
            reachable = sum(
                1 for v in status.voters
                if v == status.id or (v in status.progress and status.progress[v].ticks_since_heard <= driver.config.election_tick)
            )
            total = len(status.voters)
            if total == 1:
                return message + "Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message."
            if reachable - 1 < (total - 1) // 2 + 1:
                message += (f"Removing this node leaves {reachable - 1} managers out of {total - 1}. Without a Raft"
                            " quorum your swarm will be inaccessible. ")
        return message + ("The only way to restore a swarm that has lost consensus is to reinitialize it with"
                          " `--force-new-cluster`. Use `--force` to suppress this message.")

    async def _join_managers(self) -> None:
        """Ask the leader to add this node to the Raft group, then run a manager that follows it."""
        assert self.credentials is not None
        # A promoted node asks the managers the swarm told its agent about: the ones it knew at join time
        # may be gone, or be itself (a demoted founder, whose swarm port closed with its manager).
        learnt = self.worker.known_managers() if self.worker is not None else []
        candidates = [a for a in dict.fromkeys([*learnt, *self.state.managers]) if a != self.state.advertise_addr]
        try:
            raft_id, members = await join_raft(self.credentials, candidates, self.state.advertise_addr)
        except RaftJoinFailed as exc:
            raise LocalNodeError(grpc.StatusCode.UNAVAILABLE, str(exc)) from exc
        self.state.role = "manager"
        self.state.raft_id = raft_id
        await self._start_manager(None, known_members={m.raft_id: m.addr for m in members if m.addr})
        # Added as a learner: it counts toward no quorum until the leader promotes it, once caught up.
        assert self.manager is not None
        try:
            await self.manager.wait_until_voter(PROMOTION_TIMEOUT)
        except RaftError as exc:
            await self._give_up_joining()
            raise LocalNodeError(grpc.StatusCode.DEADLINE_EXCEEDED, str(exc)) from exc

    async def _give_up_joining(self) -> None:
        """A learner that was not promoted: ask to be removed (best effort), and be a worker again."""
        assert self.manager is not None
        try:
            await self.manager.leave_raft(LEAVE_RAFT_TIMEOUT)
        except (RaftError, grpc.aio.AioRpcError, TimeoutError) as exc:
            log.warning("node %s: a learner that gave up joining was not removed from the Raft group: %s",
                        self.state.node_id, exc.details() if isinstance(exc, grpc.aio.AioRpcError) else repr(exc))
        manager, self.manager = self.manager, None
        await manager.stop()
        self.state.role = "worker"
        self.state.raft_id = 0
        await asyncio.to_thread(shutil.rmtree, self.data_dir.raft, ignore_errors=True)

    async def _start_manager(self, bootstrap: ClusterBootstrap | None, known_members: dict[int, str] | None = None) -> None:
        assert self.credentials is not None
        if not self.credentials.raft_dek:
            # The first time this node manages: a key to encrypt its Raft data, stored with its TLS key
            # before any Raft data exists.
            self.credentials = dataclasses.replace(self.credentials, raft_dek=new_raft_key())
            await save_node_credentials(self.data_dir.root, self.credentials)
            if self.worker is not None:
                self.worker.credentials = self.credentials
        self.manager = Manager(
            node_id=self.state.node_id,
            cluster_id=self.state.cluster_id,
            raft_id=self.state.raft_id,
            raft_dir=str(self.data_dir.raft),
            listen_addr=self.state.listen_addr,
            advertise_addr=self.state.advertise_addr,
            credentials=self.credentials,
            known_members=known_members,
            raft_config=raft_config_from_environment(),
            protect_raft_key=self._protect_raft_key,
            pinned_tick=pinned_raft_tick(),
        )
        await self.manager.start(bootstrap)

    async def _start_worker(self) -> None:
        assert self.credentials is not None
        managers = list(self.state.managers)
        if (self.manager is not None or not managers) and self.state.advertise_addr not in managers:
            # A manager restarted at a new address may know only its own old one.
            managers.append(self.state.advertise_addr)
        self.worker = WorkerSide(
            node_id=self.state.node_id,
            hostname=self.hostname,
            managers=managers,
            credentials=self.credentials,
            data_dir=str(self.data_dir.worker),
            on_node=self._on_node_update,
            on_root_ca=self._on_root_ca,
            data_path_addr=self.state.data_path_addr or split_host_port(self.state.advertise_addr)[0],
        )
        await self.worker.start()
        if self._role_task is None:
            self._role_task = asyncio.create_task(self._follow_role(), name=f"role-{self.state.node_id}")
        if self._renewal_task is None:
            self._renewal_task = asyncio.create_task(
                self._keep_certificate_fresh(), name=f"cert-renewal-{self.state.node_id}"
            )

    # -- promotion and demotion -------------------------------------------------------------

    def _on_node_update(self, node: objects_pb2.Node) -> None:
        self._latest_node = node
        self._node_changed.set()
        recorded = node.certificate.certificate
        ours = self.credentials.cert_pem if self.credentials is not None else b""
        # A ROTATE about an older certificate than ours is old news (this node renewed since), and so is
        # one more about the certificate a renewal is already replacing (several messages carry it).
        already = bool(self._rotated_from) and (recorded or ours) == self._rotated_from
        if node.certificate.status.state == objects_pb2.IssuanceStatus.ROTATE and recorded in (b"", ours) and not already:
            self._rotate_asked = True
            self._certificate_news.set()

    def _on_root_ca(self, bundle: bytes) -> None:
        if self.credentials is not None and bundle != self.credentials.root_cert_pem:
            self._offered_roots = bundle
            self._certificate_news.set()

    async def _follow_role(self) -> None:
        """Become a manager or a worker when the swarm says this node's role changed (rolemanager.py)."""
        while True:
            await self._node_changed.wait()
            self._node_changed.clear()
            node = self._latest_node
            if node is None:
                continue
            try:
                if node.role == objects_pb2.MANAGER and self.manager is None:
                    await self._become_manager()
                elif node.role == objects_pb2.WORKER and self.manager is not None:
                    await self._become_worker()
            except (CAError, LocalNodeError, grpc.aio.AioRpcError) as exc:
                log.warning("node %s: role change failed, will retry: %s", self.state.node_id, exc)
                await asyncio.sleep(ROLE_RETRY_DELAY)
                self._node_changed.set()

    async def _renew_certificate(self, want_role: int | None) -> None:
        """A fresh certificate from a manager; `want_role` None takes whatever role the swarm gives."""
        assert self.credentials is not None and self.worker is not None
        if want_role is not None and parse_node_certificate(self.credentials.cert_pem).role == want_role:
            return  # a retry after a failed Raft join: the certificate already changed
        addr = self.worker.manager_addr() or self.state.managers[0]
        key, cert = await renew_node_certificate(
            addr, self.credentials.key_pem, self.credentials.cert_pem, self.credentials.root_cert_pem
        )
        if want_role is not None and parse_node_certificate(cert).role != want_role:
            raise LocalNodeError(grpc.StatusCode.UNAVAILABLE, "the renewed certificate does not carry the new role yet")
        await self._use_credentials(dataclasses.replace(self.credentials, key_pem=key, cert_pem=cert))

    async def _use_credentials(self, credentials: NodeCredentials) -> None:
        """Store new credentials, then hand them to the worker side and the manager; sessions stay open."""
        assert self.worker is not None
        await save_node_credentials(self.data_dir.root, credentials)
        self.credentials = credentials
        self.worker.credentials_changed(credentials)
        if self.manager is not None:
            self.manager.update_credentials(credentials)

    async def _keep_certificate_fresh(self) -> None:
        """Renew at a random point in 50-80% of the certificate's life (swarmkit's rule), or at once when a
        CA rotation asks; trust the roots the swarm sends. Tasks and sessions are untouched."""
        while True:
            assert self.credentials is not None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(renewal_delay(self.credentials.cert_pem)):
                    await self._certificate_news.wait()
            self._certificate_news.clear()
            asked = self._rotate_asked
            due = not self._offered_roots and not asked
            try:
                if self._offered_roots:
                    roots, self._offered_roots = self._offered_roots, b""
                    await self._use_credentials(dataclasses.replace(self.credentials, root_cert_pem=roots))
                    log.info("node %s: now trusts the swarm's root CA bundle of %d certificate(s)",
                             self.state.node_id, roots.count(b"BEGIN CERTIFICATE"))
                if asked or due:
                    if asked:
                        self._rotated_from = self.credentials.cert_pem
                    self._rotate_asked = False
                    await self._renew_certificate(None)
                    log.info("node %s: certificate renewed%s", self.state.node_id, "" if due else " (CA rotation)")
            except (CAError, LocalNodeError, grpc.aio.AioRpcError) as exc:
                log.warning("node %s: certificate renewal failed, will retry: %s", self.state.node_id, exc)
                self._rotate_asked = self._rotate_asked or asked
                self._rotated_from = b""
                await asyncio.sleep(ROLE_RETRY_DELAY)
                if self._rotate_asked:
                    self._certificate_news.set()

    async def _become_manager(self) -> None:
        log.info("node %s: promoted; joining the managers", self.state.node_id)
        await self._renew_certificate(objects_pb2.MANAGER)
        await self._join_managers()
        await asyncio.to_thread(self.data_dir.save, self.state)

    async def _become_worker(self) -> None:
        log.info("node %s: demoted; stopping the manager", self.state.node_id)
        await self._renew_certificate(objects_pb2.WORKER)
        assert self.manager is not None
        manager, self.manager = self.manager, None
        await manager.stop()
        if self.credentials is not None and self.credentials.lock_key:
            await self._protect_raft_key(False, "")  # autolock locks managers only
        self.state.role = "worker"
        self.state.raft_id = 0
        await asyncio.to_thread(self.data_dir.save, self.state)
        await asyncio.to_thread(shutil.rmtree, self.data_dir.raft, ignore_errors=True)

    # -- what the local socket asks ---------------------------------------------------------

    def control(self) -> Any:
        if self.locked:
            raise NoControl(autolock.LOCKED_MESSAGE)
        if self.manager is None:
            # A manager's role with no Manager object: it is being started (or stopped by a demotion).
            raise NoControl(WORKER_NODE, starting=self.state.role == "manager")
        return self.manager.control

    def info(self, version: str) -> control_pb2.InfoResponse:
        info = control_pb2.InfoResponse(
            state=control_pb2.InfoResponse.LOCKED if self.locked else control_pb2.InfoResponse.ACTIVE,
            node_id=self.state.node_id,
            node_addr=split_host_port(self.state.advertise_addr)[0],
            control_available=self.manager is not None,
            cluster_id=self.state.cluster_id,
            daemon_version=version,
        )
        for addr in self.state.managers:
            info.remote_managers.add(addr=addr)
        return info


def _with_port(addr: str) -> str:
    return addr if ":" in addr.rsplit("]", 1)[-1] else f"{addr}:{DEFAULT_PORT}"


def _resolved(addr: str) -> str:
    """An interface name (`eth0`, `eth0:2377`) stands for its address, as docker takes it."""
    try:
        return resolve_addr(addr)
    except InterfaceError as exc:
        raise LocalNodeError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None


def _addresses(listen_addr: str, advertise_addr: str) -> tuple[str, str]:
    """docker's rules: listen defaults to 0.0.0.0:2377; advertise defaults to the listen host, or this host's address."""
    listen_addr, advertise_addr = _resolved(listen_addr), _resolved(advertise_addr)
    listen = _with_port(listen_addr or f"0.0.0.0:{DEFAULT_PORT}")
    listen_host, listen_port = split_host_port(listen)
    if advertise_addr:
        host, _, port = advertise_addr.rpartition(":") if ":" in advertise_addr else (advertise_addr, "", "")
        return listen, f"{host}:{port or listen_port}" if port else f"{advertise_addr}:{listen_port}"
    if listen_host not in ("0.0.0.0", "::", ""):
        return listen, listen
    return listen, f"{_default_address()}:{listen_port}"


def _default_address() -> str:
    """The address of the interface with the default route (no packet is sent), else loopback."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: connect() on UDP only picks a route
        return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()

