"""Managers in one process talking Raft over real gRPC mutual TLS on 127.0.0.1: the raftnet test harness.

Each `NetManager` has its own certificate (signed by one test root CA), its own grpc.aio server wrapped
in AuthorizationInterceptor serving RaftServicer, a RaftDriver over DiskStorage in a tmp dir, and a
GrpcTransport that resolves peers from the members its state machine recorded (plus addresses it was
told, as a joining manager is by the Join answer).
"""

from __future__ import annotations

import asyncio
import json
import random
from functools import cache

import grpc

from swarmpy.api import objects_pb2
from swarmpy.ca import tls
from swarmpy.ca.authz import AuthorizationInterceptor
from swarmpy.ca.certs import create_root_ca, make_node_key_and_csr, sign_node_csr
from swarmpy.api import raft_pb2_grpc
from swarmpy.manager.raftnet import GrpcTransport, RaftServicer
from swarmpy.raft.driver import DriverConfig, RaftDriver
from swarmpy.raft.messages import ConfChange, ConfChangeType
from swarmpy.raft.wal import DiskStorage

CLUSTER_ID = "raftnettestcluster"
TICK = 0.02  # seconds: an election timeout is 10-20 ticks


@cache
def root_ca() -> tuple[bytes, bytes]:
    return create_root_ca()


@cache
def node_certificate(node_id: str, role: int = objects_pb2.MANAGER) -> tuple[bytes, bytes]:
    """(key_pem, cert_pem) for `node_id` in `role`, signed by the test root."""
    root_key, root_cert = root_ca()
    key, csr = make_node_key_and_csr()
    return key, sign_node_csr(root_key, root_cert, csr, node_id, role, CLUSTER_ID)


def channel_to(addr: str, node_id: str, role: int = objects_pb2.MANAGER) -> grpc.aio.Channel:
    key, cert = node_certificate(node_id, role)
    credentials = tls.channel_credentials(key, cert, root_ca()[1])
    return grpc.aio.secure_channel(addr, credentials, options=tls.channel_options())


class MembersMachine:
    """A trivial state machine: the list of applied payloads, and the members conf changes recorded."""

    def __init__(self, founders: dict[int, objects_pb2.RaftMember] | None = None) -> None:
        self.applied: list[bytes] = []
        self.members: dict[int, objects_pb2.RaftMember] = dict(founders or {})

    def apply(self, index: int, data: bytes) -> int:
        self.applied.append(data)
        return index

    def on_conf_change(self, index: int, change: ConfChange) -> None:
        if change.type == ConfChangeType.REMOVE_NODE:
            self.members.pop(change.node_id, None)
        elif change.context:  # founders' bootstrap entries carry no context: keep what we were told
            member = objects_pb2.RaftMember.FromString(change.context)
            member.raft_id = change.node_id
            self.members[change.node_id] = member

    def snapshot(self) -> bytes:
        return json.dumps(
            {
                "applied": [d.decode() for d in self.applied],
                "members": [[m.raft_id, m.node_id, m.addr] for m in self.members.values()],
            }
        ).encode()

    def restore(self, data: bytes) -> None:
        state = json.loads(data)
        self.applied = [d.encode() for d in state["applied"]]
        self.members = {
            raft_id: objects_pb2.RaftMember(raft_id=raft_id, node_id=node_id, addr=addr)
            for raft_id, node_id, addr in state["members"]
        }


class NetManager:
    def __init__(self, raft_id: int, node_id: str, data_dir: str, port: int = 0) -> None:
        self.raft_id = raft_id
        self.node_id = node_id
        self.data_dir = data_dir
        self.port = port
        self.known_addrs: dict[int, str] = {}
        self.machine = MembersMachine()
        self.driver: RaftDriver | None = None
        self.transport: GrpcTransport | None = None
        self.server: grpc.aio.Server | None = None
        self.servicer: RaftServicer | None = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def member(self) -> objects_pb2.RaftMember:
        return objects_pb2.RaftMember(raft_id=self.raft_id, node_id=self.node_id, addr=self.addr)

    def resolve_addr(self, raft_id: int) -> str | None:
        member = self.machine.members.get(raft_id)
        return member.addr if member is not None else self.known_addrs.get(raft_id)

    async def start_server(self) -> None:
        key, cert = node_certificate(self.node_id)
        root = root_ca()[1]
        server = grpc.aio.server(
            interceptors=[AuthorizationInterceptor(CLUSTER_ID, lambda: root)], options=tls.server_options()
        )
        self.servicer = RaftServicer(lambda: self.driver, lambda: list(self.machine.members.values()))
        raft_pb2_grpc.add_RaftServicer_to_server(self.servicer, server)
        self.port = server.add_secure_port(self.addr, tls.server_credentials(key, cert, root))
        await server.start()
        self.server = server

    async def start_driver(self, peers: tuple[int, ...], **config) -> RaftDriver:
        self.transport = GrpcTransport(self.resolve_addr, lambda addr: channel_to(addr, self.node_id))
        storage = await asyncio.to_thread(DiskStorage, self.data_dir)
        self.driver = RaftDriver(
            self.raft_id,
            peers,
            storage,
            self.transport,
            self.machine,
            DriverConfig(tick_interval=TICK, **config),
            rng=random.Random(self.raft_id),
        )
        await self.driver.start()
        return self.driver

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=None)
            self.server = None
        if self.driver is not None:
            await self.driver.stop()
            self.driver = None


class NetCluster:
    """Founding managers with raft ids 1..n, each knowing the others from the start."""

    def __init__(self, tmp_path, size: int = 3, **config) -> None:
        self.tmp_path = tmp_path
        self.config = config
        self.managers: dict[int, NetManager] = {
            raft_id: NetManager(raft_id, f"manager{raft_id}", str(tmp_path / f"m{raft_id}")) for raft_id in range(1, size + 1)
        }
        self.founders = tuple(self.managers)

    async def start(self) -> None:
        for manager in self.managers.values():
            await manager.start_server()
        founders = {m.raft_id: m.member() for m in self.managers.values()}
        for manager in self.managers.values():
            manager.machine = MembersMachine(founders)
            await manager.start_driver(self.founders, **self.config)

    async def restart(self, raft_id: int) -> NetManager:
        """Start a stopped manager again on the same port and data dir."""
        old = self.managers[raft_id]
        manager = NetManager(raft_id, old.node_id, old.data_dir, old.port)
        manager.machine = MembersMachine({m.raft_id: m.member() for m in self.managers.values()})
        await manager.start_server()
        await manager.start_driver(self.founders, **self.config)
        self.managers[raft_id] = manager
        return manager

    def running(self) -> list[NetManager]:
        return [m for m in self.managers.values() if m.driver is not None]

    async def leader(self, timeout: float = 5.0) -> NetManager:
        async with asyncio.timeout(timeout):
            while True:
                leaders = [m for m in self.running() if m.driver.is_leader]
                if len(leaders) == 1:
                    return leaders[0]
                await asyncio.sleep(TICK / 2)

    async def stop(self) -> None:
        for manager in self.managers.values():
            await manager.stop()


async def wait_until(predicate, timeout: float = 5.0, what: str = "condition") -> None:
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None
