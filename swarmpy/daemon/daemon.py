"""swarmpyd: one per host. Serves the local socket and, once in a swarm, runs this node's part of it.

Theory of operation
-------------------
The daemon starts outside any swarm, serving `LocalNode` and `Control` on a unix socket (mode 0660;
root's trust boundary, as docker's socket). `swarm init` or `swarm join` makes it a member: a
`SwarmNode` (swarmnode.py) that runs a manager (Raft member, store, swarm port, leader loops) and/or
the worker side (agent and Docker executor). What it becomes is written to the data dir before it
answers, so a restart resumes the same membership: same node, same Raft log, and running containers
adopted rather than restarted. `swarm leave` stops it and erases the swarm state from the data dir.

The daemon owns every task it starts; `run()` returns only after everything is stopped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path
from typing import Any

import grpc

from swarmpy.api import control_pb2, control_pb2_grpc
from swarmpy.autolock import LOCKED_MESSAGE
from swarmpy.raft.encryption import RecordCipher
from swarmpy.raft.errors import RaftError

from .force_new_cluster import rebuild_raft_as_sole_member
from .control_proxy import NOT_IN_SWARM, ControlProxy, NoControl
from .localnode import LocalNodeError, LocalNodeServicer
from .state import DataDir
from .swarmnode import SwarmNode

log = logging.getLogger(__name__)

VERSION = "0.1.0"
DEFAULT_SOCKET = "/var/run/swarmpy/swarmpy.sock"
DEFAULT_DATA_DIR = "/var/lib/swarmpy"
FORCE_NEW_CLUSTER_SERVE_TIMEOUT = 30.0  # a sole voter elects itself at once; this only bounds a bug


class Daemon:
    def __init__(self, data_dir: str, socket_path: str, hostname: str | None = None, engine_api: Any = None) -> None:
        """`engine_api`: a swarmpy.engineapi.server.Listeners to serve the Docker Engine API on (None: not served)."""
        self.data_dir = DataDir(data_dir)
        self.socket_path = socket_path
        self.hostname = hostname or socket.gethostname()
        self.swarm: SwarmNode | None = None
        self._membership_lock = asyncio.Lock()  # one of init / join / leave at a time
        self._server: grpc.aio.Server | None = None
        self._engine_api_listeners = engine_api
        self._engine_api: Any = None

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set, then shut everything down."""
        # The membership is known before the socket answers, so a restarting manager never tells a
        # caller it is not in a swarm; its calls wait for the manager to start (control_proxy).
        state = await asyncio.to_thread(self.data_dir.load)
        if state is not None:
            self.swarm = SwarmNode(self.data_dir, state, self.hostname)
        await self._serve_socket()
        try:
            await self._serve_engine_api()
            if self.swarm is not None:
                log.info("resuming swarm membership as node %s (%s)", state.node_id, state.role)
                await self.swarm.start()
            await stop.wait()
        finally:
            if self._engine_api is not None:
                await self._engine_api.stop()
            if self.swarm is not None:
                await self.swarm.stop()
            if self._server is not None:
                await self._server.stop(grace=1)
            Path(self.socket_path).unlink(missing_ok=True)

    async def _serve_socket(self) -> None:
        path = Path(self.socket_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            if _socket_answers(path):
                raise RuntimeError(f"another swarmpyd is already serving {path}")
            path.unlink()  # left behind by a daemon that died
        server = grpc.aio.server()
        control_pb2_grpc.add_LocalNodeServicer_to_server(LocalNodeServicer(self), server)
        control_pb2_grpc.add_ControlServicer_to_server(ControlProxy(self.control), server)
        server.add_insecure_port(f"unix://{path}")
        await server.start()
        os.chmod(path, 0o660)
        self._server = server

    async def _serve_engine_api(self) -> None:
        listeners = self._engine_api_listeners
        if listeners is None:
            return
        from swarmpy.engineapi.proxy import DEFAULT_ENGINE_SOCKET
        from swarmpy.engineapi.server import EngineApiServer

        if listeners.socket_path and Path(listeners.socket_path).exists() and _socket_answers(Path(listeners.socket_path)):
            raise RuntimeError(f"another server is already serving {listeners.socket_path}")
        server = EngineApiServer(self, listeners, os.environ.get("SWARMPY_ENGINE_SOCKET", DEFAULT_ENGINE_SOCKET))
        await server.start()
        self._engine_api = server

    # -- what the local socket asks -------------------------------------------------------

    def control(self) -> control_pb2_grpc.ControlServicer:
        if self.swarm is None:
            raise NoControl(NOT_IN_SWARM)
        return self.swarm.control()

    def info(self) -> control_pb2.InfoResponse:
        if self.swarm is None:
            return control_pb2.InfoResponse(state=control_pb2.InfoResponse.INACTIVE, daemon_version=VERSION)
        return self.swarm.info(VERSION)

    async def init(self, request: control_pb2.InitRequest) -> str:
        async with self._membership_lock:
            if request.force_new_cluster and self.swarm is not None:
                return await self._force_new_cluster()
            self._refuse_if_member()
            self.swarm = await SwarmNode.init(self.data_dir, self.hostname, request)
            return self.swarm.state.node_id

    async def _force_new_cluster(self) -> str:
        assert self.swarm is not None
        state = self.swarm.state
        if self.swarm.locked:
            raise LocalNodeError(grpc.StatusCode.FAILED_PRECONDITION, LOCKED_MESSAGE)
        if state.role != "manager":
            raise LocalNodeError(
                grpc.StatusCode.FAILED_PRECONDITION, "--force-new-cluster needs a manager: this node is a worker"
            )
        credentials = self.swarm.credentials
        cipher = RecordCipher(credentials.raft_dek) if credentials is not None and credentials.raft_dek else None
        await self.swarm.stop()
        self.swarm = None
        await asyncio.to_thread(
            rebuild_raft_as_sole_member, self.data_dir.raft, state.raft_id, state.node_id, state.advertise_addr, cipher
        )
        state.managers = [state.advertise_addr]
        await asyncio.to_thread(self.data_dir.save, state)  # fsyncs
        self.swarm = SwarmNode(self.data_dir, state, self.hostname)
        await self.swarm.start()
        # Answer only once this manager leads and serves: the CLI asks for the join tokens right after.
        try:
            async with asyncio.timeout(FORCE_NEW_CLUSTER_SERVE_TIMEOUT):
                await self.swarm.manager.driver.wait_for_leader()
                await self.swarm.manager.driver.read_index()
        except (TimeoutError, RaftError) as exc:
            raise LocalNodeError(
                grpc.StatusCode.UNAVAILABLE,
                f"node {state.node_id}: the Raft state was rebuilt, but this manager did not start leading within"
                f" {FORCE_NEW_CLUSTER_SERVE_TIMEOUT:.0f} s ({exc!r}); see the daemon's log",
            ) from exc
        return state.node_id

    async def unlock(self, unlock_key: str) -> None:
        async with self._membership_lock:
            if self.swarm is None:
                raise LocalNodeError(grpc.StatusCode.FAILED_PRECONDITION, NOT_IN_SWARM)
            await self.swarm.unlock(unlock_key)

    async def join(self, request: control_pb2.JoinRequest) -> None:
        async with self._membership_lock:
            self._refuse_if_member()
            self.swarm = await SwarmNode.join(self.data_dir, self.hostname, request)

    async def leave(self, force: bool) -> None:
        async with self._membership_lock:
            if self.swarm is None:
                raise LocalNodeError(grpc.StatusCode.FAILED_PRECONDITION, "This node is not part of a swarm")
            await self.swarm.leave(force)
            self.swarm = None

    def _refuse_if_member(self) -> None:
        if self.swarm is not None:
            raise LocalNodeError(
                grpc.StatusCode.FAILED_PRECONDITION,
                'This node is already part of a swarm. Use "swarmpy swarm leave" to leave this swarm and join another one.',
            )


def _socket_answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()
