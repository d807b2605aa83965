"""NodeSimulator: N simulated worker nodes in one process, each a real swarm member.

Theory of operation
-------------------
Joining: the swarm's root CA is fetched once and pinned with the join token's digest (as every joiner
does); then each node asks a manager for its own certificate with the real token
(`request_node_certificate`: a fresh ECDSA key, a CSR, the CA's answer), a bounded number at a time.
So every simulated node has its own identity, its own Node object in the store, and its own mutual-TLS
gRPC channel to the managers: one TCP connection per node, as on a real cluster. Channels are not
shared between nodes because a channel carries exactly one client certificate.

Running: each node is a real `swarmpy.worker.agent.Agent` (session, heartbeats, assignments, batched
status reports, failover and redirects, all the production code) feeding a `SimulatedExecutorWorker`
instead of the Docker-backed Worker. The simulator owns every node in one TaskGroup; `kill(node_id)`
ends one node's agent and worker (its connection closes; the dispatcher notices when heartbeats stop),
the way a host that loses power would look to the managers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from swarmpy.api import objects_pb2
from swarmpy.ca import tls
from swarmpy.ca.bootstrap import IssuedCertificate, fetch_root_ca, request_node_certificate
from swarmpy.ca.tokens import parse_join_token
from swarmpy.worker.agent import Agent, AgentSettings, TaskStatusReports

from .executor import SimulatedExecutorWorker, SimulationProfile

log = logging.getLogger(__name__)

DEFAULT_JOIN_CONCURRENCY = 32


def simulated_description(hostname: str) -> objects_pb2.NodeDescription:
    description = objects_pb2.NodeDescription(hostname=hostname)
    description.platform.os = "linux"
    description.platform.architecture = "x86_64"
    description.resources.nano_cpus = 4 * 1_000_000_000
    description.resources.memory_bytes = 8 * 2**30
    description.engine.engine_version = "swarmpy-simulator"
    return description


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards `wanted` (up to the hard limit); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def open_file_count() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass
class SimulatedNode:
    hostname: str
    identity: IssuedCertificate
    worker: SimulatedExecutorWorker
    agent: Agent
    task: asyncio.Task[None] | None = None

    @property
    def node_id(self) -> str:
        return self.identity.node_id


@dataclass
class JoinTimings:
    nodes: int = 0
    root_ca_seconds: float = 0.0
    join_seconds: float = 0.0  # all certificate requests (key generation included), wall time
    per_node_seconds: list[float] = field(default_factory=list)


class NodeSimulator:
    """Join and run simulated nodes against the managers at `managers` with the join `token`."""

    def __init__(
        self,
        managers: Sequence[str],
        token: str,
        *,
        profile: SimulationProfile | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        hostname_prefix: str = "sim",
        join_concurrency: int = DEFAULT_JOIN_CONCURRENCY,
        agent_settings: AgentSettings | None = None,
    ) -> None:
        if not managers:
            raise ValueError("node simulator: at least one manager address is needed")
        self.managers = list(managers)
        self.token = token
        self.profile = profile or SimulationProfile()
        self._own_data_dir = data_dir is None  # a temporary one, removed when run() ends
        self._data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="swarmpy-sim-"))
        self._hostname_prefix = hostname_prefix
        self._join_concurrency = join_concurrency
        self._agent_settings = agent_settings
        self._root_ca: bytes | None = None
        self.nodes: dict[str, SimulatedNode] = {}
        self.join_timings = JoinTimings()
        self._group: asyncio.TaskGroup | None = None
        self._ready = asyncio.Event()
        self._count = 0

    async def run(self) -> None:
        """Own every started node until cancelled."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                self._ready.set()
                try:
                    await asyncio.Event().wait()
                finally:
                    self._group = None
        finally:
            if self._own_data_dir:  # after the group: no agent writes into it any more
                shutil.rmtree(self._data_dir, ignore_errors=True)

    async def add_nodes(self, count: int) -> list[SimulatedNode]:
        """Join `count` new nodes and start them; returns once all joined (sessions open in the background)."""
        await self._ready.wait()
        if self._root_ca is None:
            started = time.perf_counter()
            self._root_ca = await fetch_root_ca(self.managers[0], parse_join_token(self.token).ca_digest)
            self.join_timings.root_ca_seconds = time.perf_counter() - started
        limit = asyncio.Semaphore(self._join_concurrency)
        first = self._count
        self._count += count

        async def join(index: int) -> SimulatedNode:
            async with limit:
                started = time.perf_counter()
                hostname = f"{self._hostname_prefix}-{index:05d}"
                identity = await request_node_certificate(self.managers[index % len(self.managers)], self._root_ca, self.token)
                self.join_timings.per_node_seconds.append(time.perf_counter() - started)
                return self._start(hostname, identity)

        started = time.perf_counter()
        nodes = await asyncio.gather(*(join(index) for index in range(first, first + count)))
        self.join_timings.join_seconds += time.perf_counter() - started
        self.join_timings.nodes += count
        return list(nodes)

    async def wait_connected(self, nodes: Sequence[SimulatedNode] | None = None, timeout: float = 60.0) -> None:
        """Until every node (or the given ones) has an open session; TimeoutError naming a missing node."""
        targets = list(nodes) if nodes is not None else list(self.nodes.values())
        try:
            async with asyncio.timeout(timeout):
                for node in targets:
                    await node.agent.connected.wait()
        except TimeoutError:
            missing = [node.hostname for node in targets if not node.agent.connected.is_set()]
            raise TimeoutError(
                f"node simulator: {len(missing)} of {len(targets)} nodes had no session after {timeout}s "
                f"(first: {missing[0]})"
            ) from None

    async def kill(self, node_id: str) -> None:
        """End one node's agent and worker, as if its host lost power: no goodbye to the managers."""
        node = self.nodes.pop(node_id)
        if node.task is not None:
            node.task.cancel()
            await asyncio.gather(node.task, return_exceptions=True)

    def task_states(self) -> dict[str, dict[str, int]]:
        """node_id → {task_id: observed state} of every running simulated node."""
        return {node_id: node.worker.states() for node_id, node in self.nodes.items()}

    def _start(self, hostname: str, identity: IssuedCertificate) -> SimulatedNode:
        if self._group is None:
            raise RuntimeError("node simulator: nodes can only be started while run() is running")
        root_ca = self._root_ca
        assert root_ca is not None
        credentials = tls.channel_credentials(identity.key_pem, identity.cert_pem, root_ca)
        options = tls.channel_options()

        def make_channel(addr: str) -> grpc.aio.Channel:
            return grpc.aio.secure_channel(addr, credentials, options=options)

        description = simulated_description(hostname)

        async def describe() -> objects_pb2.NodeDescription:
            return description

        reports = TaskStatusReports()
        worker = SimulatedExecutorWorker(identity.node_id, reports.report, self.profile)
        agent = Agent(
            identity.node_id,
            self.managers,
            make_channel,
            worker,
            describe,
            self._data_dir / hostname,
            reports=reports,
            settings=self._agent_settings,
        )
        node = SimulatedNode(hostname, identity, worker, agent)
        node.task = self._group.create_task(self._run_node(node), name=f"simulated-node-{hostname}")
        self.nodes[identity.node_id] = node
        return node

    @staticmethod
    async def _run_node(node: SimulatedNode) -> None:
        async with asyncio.TaskGroup() as group:
            worker = group.create_task(node.worker.run())
            try:
                await node.agent.run()
            finally:
                worker.cancel()
