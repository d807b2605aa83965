"""The worker half of every node: Docker executor, Worker (task runners) and Agent (session with a manager)."""

from __future__ import annotations

import asyncio
import logging
import os
import platform
from collections.abc import Callable
from typing import Any

import grpc

from swarmpy.api import objects_pb2
from swarmpy.ca import tls
from swarmpy.ca.keystore import NodeCredentials
from swarmpy.ca.rotation import tls_info
from swarmpy.worker.agent import Agent, TaskStatusReports
from swarmpy.worker.dependencies import TaskDependencies
from swarmpy.worker.executor.docker import DockerExecutor
from swarmpy.worker.executor.task_files import TaskFiles
from swarmpy.worker.logs import ExecutorLogSource
from swarmpy.worker.network.dataplane import NodeDataPlane
from swarmpy.worker.network.node_networking import NodeNetworking, OwnedContainers, pid_cache
from swarmpy.worker.worker import Worker

from .tuning import BLOCKING_CALL_THREADS

log = logging.getLogger(__name__)


def _memory_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def describe_node(hostname: str, engine_version: str = "", data_path_addr: str = "",
                  engine_labels: dict[str, str] | None = None) -> objects_pb2.NodeDescription:
    arch = {"x86_64": "x86_64", "aarch64": "aarch64"}.get(platform.machine(), platform.machine())
    description = objects_pb2.NodeDescription(hostname=hostname)
    description.platform.os = platform.system().lower()
    description.platform.architecture = arch
    description.resources.nano_cpus = (os.cpu_count() or 1) * 1_000_000_000
    description.resources.memory_bytes = _memory_bytes()
    description.engine.engine_version = engine_version
    description.engine.labels.update(engine_labels or {})  # engine.labels.* in constraints and spread
    description.resources.generic.extend(node_generic_resources())
    description.data_path_addr = data_path_addr
    return description


def engine_labels_of(info: dict) -> dict[str, str]:
    """The engine's own labels (dockerd --label k=v), from `docker info`."""
    labels = {}
    for item in info.get("Labels") or ():
        key, _, value = item.partition("=")
        labels[key] = value
    return labels


def node_generic_resources() -> list[objects_pb2.GenericResource]:
    """What SWARMPY_NODE_GENERIC_RESOURCES offers (dockerd's --node-generic-resource, comma-separated:
    `gpu=2,ssd=SSD-UUID-1`): counts, or named units. A bad entry stops the daemon from describing itself."""
    from swarmpy.cli.container_values import parse_generic_resource

    text = os.environ.get("SWARMPY_NODE_GENERIC_RESOURCES", "")
    return [parse_generic_resource(item, named_allowed=True) for item in text.split(",") if item.strip()]


class WorkerSide:
    def __init__(
        self,
        *,
        node_id: str,
        hostname: str,
        managers: list[str],
        credentials: NodeCredentials,
        data_dir: str,
        on_node: Callable[[objects_pb2.Node], None] | None = None,
        on_root_ca: Callable[[bytes], None] | None = None,
        data_path_addr: str = "",
    ) -> None:
        self.node_id = node_id
        self.data_path_addr = data_path_addr
        self.hostname = hostname
        self.managers = managers
        self.credentials = credentials
        self.data_dir = data_dir
        self._on_node = on_node
        self._on_root_ca = on_root_ca
        self._docker: Any = None
        self._engine_version = ""
        self._engine_labels: dict[str, str] = {}
        self.executor: DockerExecutor | None = None
        self.worker: Worker | None = None
        self.networking: NodeNetworking | None = None
        self.agent: Agent | None = None
        self._agent_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        import docker  # the SDK is only needed on this path

        os.makedirs(self.data_dir, exist_ok=True)
        # One engine connection per blocking-call thread, so concurrent calls do not queue for a socket.
        self._docker = await asyncio.to_thread(docker.from_env, max_pool_size=BLOCKING_CALL_THREADS)
        version = await asyncio.to_thread(self._docker.version)
        self._engine_version = version.get("Version", "")
        info = await asyncio.to_thread(self._docker.info)
        self._engine_labels = engine_labels_of(info)
        dependencies = TaskDependencies()
        task_files = TaskFiles(self.node_id, dependencies, hostname=self.hostname)
        self.executor = DockerExecutor(self.node_id, self._docker, task_files,
                                       describe_node(self.hostname, self._engine_version,
                                                     engine_labels=self._engine_labels))
        await self.executor.start()
        owned = OwnedContainers(self.executor.owned_containers)
        self.networking = NodeNetworking(
            self.node_id,
            owned.running,
            plane=NodeDataPlane(self.node_id, pid_of=pid_cache(self._docker.api.inspect_container)),
            underlay_addr=self.data_path_addr,
            container_facts=lambda: owned.facts,
        )
        await self.networking.start()
        self.executor.on_started = self.networking.container_started
        reports = TaskStatusReports()
        self.worker = Worker(self.node_id, self.executor, reports.report, self.data_dir, dependencies,
                             networking=self.networking)
        await self.worker.start()
        # Files of tasks a previous daemon had and this one does not: nothing may use them any more.
        await asyncio.to_thread(task_files.remove_except, self.worker.tasks())
        self.agent = Agent(
            self.node_id,
            self.managers,
            self._channel,
            self.worker,
            self._describe,
            self.data_dir,
            reports=reports,
            log_source=ExecutorLogSource(self.executor, self.node_id),
            on_node=self._on_node,
            on_root_ca=self._on_root_ca,
        )
        self._agent_task = asyncio.create_task(self.agent.run(), name=f"agent-{self.node_id}")

    async def stop(self) -> None:
        await self._stop_agent()
        if self.worker is not None:
            await self.worker.close()
            self.worker = None
        if self.networking is not None:
            await self.networking.close()  # the kernel keeps the plumbing: the next daemon adopts it
            self.networking = None
        if self.executor is not None:
            await self.executor.close()
            self.executor = None
        if self._docker is not None:
            await asyncio.to_thread(self._docker.close)
            self._docker = None

    async def shut_down_tasks(self) -> None:
        """Leaving the swarm: every container of this node removed by force (Worker.close_and_remove_containers).

        The agent goes first: with its session open, the leader would see the tasks stop while still
        desired RUNNING, restart them, and send the replacements here."""
        await self._stop_agent()
        if self.worker is not None:
            await self.worker.close_and_remove_containers()
        if self.networking is not None:
            await self.networking.teardown()

    async def _stop_agent(self) -> None:
        if self.agent is not None and self._agent_task is not None:
            await self.agent.stop()
            self._agent_task.cancel()
            await asyncio.gather(self._agent_task, return_exceptions=True)
        self.agent = self._agent_task = None

    def manager_addr(self) -> str:
        """The manager of the agent's current session ("" if none)."""
        return self.agent.manager_addr if self.agent is not None else ""

    def known_managers(self) -> list[str]:
        """Managers to ask, best first: the current session's (the leader's dispatcher), then the swarm's list."""
        known = self.agent.managers if self.agent is not None else list(self.managers)
        return list(dict.fromkeys([a for a in (self.manager_addr(), *known) if a]))

    def _channel(self, addr: str) -> grpc.aio.Channel:
        return tls.secure_channel(addr, self.credentials)

    async def _describe(self) -> objects_pb2.NodeDescription:
        description = await asyncio.to_thread(describe_node, self.hostname, self._engine_version, self.data_path_addr,
                                              self._engine_labels)  # reads /proc
        # What this node trusts and who signed its certificate: a CA rotation's progress (`docker swarm ca`).
        description.tls_info.CopyFrom(tls_info(self.credentials.cert_pem, self.credentials.root_cert_pem))
        return description

    def credentials_changed(self, credentials: NodeCredentials) -> None:
        """A renewed certificate or a new root bundle: new connections use them, the description shows them."""
        renewed = credentials.cert_pem != self.credentials.cert_pem
        self.credentials = credentials
        if self.agent is not None:
            self.agent.description_changed()
            if renewed:
                self.agent.credentials_changed()
