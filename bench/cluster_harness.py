"""Real manager processes for the benchmarks: start swarmpyd, init a swarm, talk Control over its socket.

Theory of operation
-------------------
Each manager is a `swarmpyd` child process (the real daemon, unchanged) with its own data dir and local
socket under one temporary directory. The first runs `swarm init` through the CLI, by default drained
(`--availability drain`) so that no task lands on the manager's own Docker-backed worker: the tasks of
a benchmark go to the simulated nodes only. Further managers join with the manager token
(`swarm join --token <manager token>`), also drained.

The benchmark then speaks the Control API over the first daemon's local socket with grpc.aio
(`ControlClient`), and reads the leader's peak RSS and CPU time from /proc (`ProcessUsage`).
Everything started here is stopped by `ManagerCluster.stop()` (SIGTERM, then SIGKILL after a grace).
The daemons run in sessions of their own (a Ctrl-C at the terminal is the bench's to handle), so a
bench ended by SIGTERM (`timeout`, a CI runner) would leave them running: a cluster's creation turns
SIGTERM into SystemExit, so the bench's `finally: cluster.stop()` runs then too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from swarmpy.api import control_pb2, control_pb2_grpc, objects_pb2
from swarmpy.daemon.state import DataDir
from swarmpy.worker.executor.container_config import NODE_LABEL

DAEMON_START_TIMEOUT = 30.0
STOP_GRACE = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# The Raft driver's log lines that tell of elections (swarmpy.raft.driver_core, swarmpy.raft.driver before
# the core was shared with the simulator) and of a starved event loop (swarmpy.raft.driver).
ELECTED_LINE = re.compile(r"module=swarmpy\.raft\.driver(?:_core)? msg=node [0-9a-f]+: became leader$", re.M)
STARVED_LINE = re.compile(r"module=swarmpy\.raft\.driver msg=node [0-9a-f]+: event loop starved for ([0-9.]+) s", re.M)


@dataclass(frozen=True)
class RaftEvents:
    elections: int  # "became leader" lines, over every manager's log
    starved_by_manager: tuple[tuple[float, ...], ...]  # each manager's starved-loop warnings (seconds late)

    @property
    def starved(self) -> list[float]:
        return [late for lates in self.starved_by_manager for late in lates]

    def since(self, earlier: RaftEvents) -> RaftEvents:
        """What the logs gained after `earlier` was read (logs only grow)."""
        return RaftEvents(
            self.elections - earlier.elections,
            tuple(now[len(before):] for now, before in zip(self.starved_by_manager, earlier.starved_by_manager)),
        )


def raft_events(managers: Sequence[ManagerProcess]) -> RaftEvents:
    """Elections and starved-loop warnings so far in the managers' logs."""
    logs = [manager.log_path.read_text(errors="replace") for manager in managers]
    return RaftEvents(
        elections=sum(len(ELECTED_LINE.findall(text)) for text in logs),
        starved_by_manager=tuple(tuple(float(late) for late in STARVED_LINE.findall(text)) for text in logs),
    )


# The dispatcher's log lines that tell of a node written DOWN, and of a Session stream that broke (given the
# short grace, or the heartbeat grace when among many: liveness.BreakBursts).
DOWN_LINE = re.compile(r"module=swarmpy\.manager\.dispatcher\.dispatcher msg=node \w+ is down: ", re.M)
BROKE_LINE = re.compile(r"module=swarmpy\.manager\.dispatcher\.dispatcher msg=node \w+: session stream broke", re.M)


@dataclass(frozen=True)
class NodeEvents:
    down: int  # nodes written DOWN, over every manager's log
    breaks: int  # Session streams that broke

    def since(self, earlier: NodeEvents) -> NodeEvents:
        return NodeEvents(self.down - earlier.down, self.breaks - earlier.breaks)


def node_events(managers: Sequence[ManagerProcess]) -> NodeEvents:
    """DOWN writes and broken Session streams so far in the managers' logs (the dispatchers')."""
    logs = [manager.log_path.read_text(errors="replace") for manager in managers]
    return NodeEvents(
        down=sum(len(DOWN_LINE.findall(text)) for text in logs),
        breaks=sum(len(BROKE_LINE.findall(text)) for text in logs),
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class ProcessUsage:
    peak_rss_bytes: int  # VmHWM
    rss_bytes: int  # VmRSS
    cpu_seconds: float  # utime + stime
    open_files: int

    @classmethod
    def of(cls, pid: int) -> ProcessUsage:
        status = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            status[key] = value.strip()
        # Fields 14 and 15 (1-based) of /proc/pid/stat, counted after the ")" closing the command name.
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        utime, stime = int(fields[11]), int(fields[12])
        return cls(
            peak_rss_bytes=int(status["VmHWM"].split()[0]) * 1024,
            rss_bytes=int(status["VmRSS"].split()[0]) * 1024,
            cpu_seconds=(utime + stime) / CLOCK_TICKS,
            open_files=len(os.listdir(f"/proc/{pid}/fd")),
        )


@dataclass
class ManagerProcess:
    name: str
    data_dir: Path
    socket_path: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    swarm_addr: str = ""
    log_start: int = 0  # where the running process's lines begin in its log (a restart appends)

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `swarmpy ARGS` against this daemon."""
        env = dict(os.environ, SWARMPY_HOST=self.host)
        result = subprocess.run([sys.executable, "-m", "swarmpy.cli.main", *args], env=env, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise RuntimeError(f"`swarmpy {' '.join(args)}` against manager {self.name} failed: {result.stderr.strip()}")
        return result

    def usage(self) -> ProcessUsage:
        return ProcessUsage.of(self.process.pid)

    @property
    def node_id(self) -> str:
        """The swarm node ID this daemon holds ("" before it joined)."""
        state = DataDir(self.data_dir).load()
        return state.node_id if state is not None else ""

    def own_log(self) -> str:
        """What the running process has logged (not the lines of its earlier lives)."""
        with open(self.log_path, "rb") as log_file:
            log_file.seek(self.log_start)
            return log_file.read().decode(errors="replace")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the host dies without a chance to clean up."""
        self.process.kill()
        self.process.wait()

    def restart(self) -> None:
        """Start the daemon again on its data dir (it rejoins its swarm by itself); its log goes on."""
        if self.alive:
            raise RuntimeError(f"manager {self.name} is still running")
        self.socket_path.unlink(missing_ok=True)
        self.log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.process = _spawn(self.data_dir, self.socket_path, self.log_path, self.name, log_mode="ab")
        _wait_for_socket(self)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def stop_daemons_on_sigterm() -> None:
    """SIGTERM unwinds the bench (SystemExit) instead of killing it where it stands, if nothing else
    handles SIGTERM already and this is the main thread (signal handlers can be set only there)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


@dataclass
class ManagerCluster:
    managers: list[ManagerProcess] = field(default_factory=list)
    workers: list[ManagerProcess] = field(default_factory=list)  # real worker daemons (add_workers)
    work_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="swarmpy-bench-")))
    worker_token: str = ""
    manager_token: str = ""

    def __post_init__(self) -> None:
        stop_daemons_on_sigterm()

    @property
    def leader(self) -> ManagerProcess:
        return self.managers[0]

    @property
    def swarm_addrs(self) -> list[str]:
        return [manager.swarm_addr for manager in self.managers]

    def stop(self, keep_logs_in: Path | None = None) -> None:
        """Stop every daemon, remove their containers and the work dir; `keep_logs_in` saves the logs first."""
        daemons = self.managers + self.workers
        for daemon in daemons:
            if daemon.process.poll() is None:
                daemon.process.send_signal(signal.SIGTERM)
        for daemon in daemons:
            try:
                daemon.process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                daemon.process.kill()
                daemon.process.wait()
        remove_containers_of({daemon.node_id for daemon in daemons} - {""})
        if keep_logs_in is not None:
            keep_logs_in.mkdir(parents=True, exist_ok=True)
            for daemon in daemons:
                shutil.copy(daemon.log_path, keep_logs_in / daemon.log_path.name)
        shutil.rmtree(self.work_dir, ignore_errors=True)


def remove_containers_of(node_ids: set[str]) -> None:
    """Remove the Docker containers of these swarm nodes: a killed worker's keep running on the engine."""
    if not node_ids:
        return
    import docker  # only benchmarks with real workers need the engine

    client = docker.from_env()
    try:
        for container in client.containers.list(all=True, filters={"label": NODE_LABEL}):
            if container.labels.get(NODE_LABEL) in node_ids:
                with contextlib.suppress(docker.errors.APIError):  # gone already
                    container.remove(force=True, v=True)
    finally:
        client.close()


def _spawn(data_dir: Path, socket_path: Path, log_path: Path, name: str, log_mode: str = "wb") -> subprocess.Popen[bytes]:
    # No Engine API unless the daemon's socket has a directory of its own (_start_daemon's engine_api):
    # the daemons' sockets share one directory, and the Engine API's default is docker.sock beside --socket.
    api_socket = [] if socket_path.parent.name == f"{name}-sockets" else ["--api-socket", ""]
    with open(log_path, log_mode) as log_file:
        return subprocess.Popen(
            [sys.executable, "-c", "from swarmpy.daemon import main; main()",
             "--data-dir", str(data_dir), "--socket", str(socket_path), "--hostname", name, *api_socket],
            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )


def _wait_for_socket(manager: ManagerProcess) -> None:
    deadline = time.monotonic() + DAEMON_START_TIMEOUT
    while not manager.socket_path.exists():
        if manager.process.poll() is not None:
            raise RuntimeError(f"swarmpyd {manager.name} exited with {manager.process.returncode} at start; "
                               f"log: {manager.log_path.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            manager.process.kill()
            raise RuntimeError(f"swarmpyd {manager.name} did not open its socket {manager.socket_path} "
                               f"within {DAEMON_START_TIMEOUT}s")
        time.sleep(0.05)


def _start_daemon(work_dir: Path, name: str, engine_api: bool = False) -> ManagerProcess:
    """`engine_api`: also serve the Engine API, at docker.sock beside this daemon's own socket (then in
    a directory of its own)."""
    data_dir = work_dir / name
    data_dir.mkdir(parents=True)
    if engine_api:
        (work_dir / f"{name}-sockets").mkdir()
        socket_path = work_dir / f"{name}-sockets" / "swarmpy.sock"
    else:
        socket_path = work_dir / f"{name}.sock"
    log_path = work_dir / f"{name}.log"
    manager = ManagerProcess(name, data_dir, socket_path, log_path, _spawn(data_dir, socket_path, log_path, name))
    _wait_for_socket(manager)
    return manager


def start_managers(count: int = 1, *, dispatcher_heartbeat: str = "5s", availability: str = "drain",
                   engine_api: bool = False) -> ManagerCluster:
    """`count` manager daemons in one swarm, the first the leader; drained by default, so tasks go to
    other (simulated) nodes; `availability="active"` lets the leader run real containers; `engine_api`:
    the first also serves the Engine API (docker.sock beside its socket)."""
    if count < 1:
        raise ValueError(f"a swarm needs at least one manager, asked for {count}")
    cluster = ManagerCluster()
    try:
        first = _start_daemon(cluster.work_dir, "manager-1", engine_api)
        cluster.managers.append(first)
        first.swarm_addr = f"127.0.0.1:{free_port()}"
        first.cli("swarm", "init", "--advertise-addr", first.swarm_addr, "--listen-addr", first.swarm_addr,
                  "--availability", availability, "--dispatcher-heartbeat", dispatcher_heartbeat)
        cluster.worker_token = first.cli("swarm", "join-token", "-q", "worker").stdout.strip()
        cluster.manager_token = first.cli("swarm", "join-token", "-q", "manager").stdout.strip()
        for index in range(2, count + 1):
            other = _start_daemon(cluster.work_dir, f"manager-{index}")
            cluster.managers.append(other)
            other.swarm_addr = f"127.0.0.1:{free_port()}"
            joined = other.cli("swarm", "join", "--token", cluster.manager_token, "--advertise-addr", other.swarm_addr,
                               "--listen-addr", other.swarm_addr, "--availability", availability, first.swarm_addr,
                               check=False)
            if joined.returncode != 0:
                raise RuntimeError(f"manager {other.name} could not join as a manager: {joined.stderr.strip()}")
        for manager in cluster.managers[1:]:
            _wait_until_it_knows_the_leader(manager)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def add_workers(cluster: ManagerCluster, count: int) -> list[ManagerProcess]:
    """`count` real worker daemons joined to the swarm: they run tasks as containers on the local engine."""
    added = []
    for _ in range(count):
        worker = _start_daemon(cluster.work_dir, f"worker-{len(cluster.workers) + 1}")
        cluster.workers.append(worker)
        worker.swarm_addr = f"127.0.0.1:{free_port()}"
        worker.cli("swarm", "join", "--token", cluster.worker_token, "--advertise-addr", worker.swarm_addr,
                   "--listen-addr", worker.swarm_addr, cluster.leader.swarm_addr)
        added.append(worker)
    return added


def _wait_until_it_knows_the_leader(manager: ManagerProcess) -> None:
    """A manager that just joined answers "the swarm does not have a leader" until it hears from the
    leader; nodes sent to it for certificates meanwhile would be refused."""
    deadline = time.monotonic() + DAEMON_START_TIMEOUT
    while True:
        listed = manager.cli("node", "ls", "-q", check=False)
        if listed.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"manager {manager.name} did not reach the leader within {DAEMON_START_TIMEOUT}s: "
                               f"{listed.stderr.strip()}")
        time.sleep(0.2)


def replicated_spec(name: str, replicas: int, image: str = "swarmpy-test/busybox", command: Sequence[str] = ("sleep", "100000")) -> objects_pb2.ServiceSpec:
    spec = objects_pb2.ServiceSpec()
    spec.annotations.name = name
    spec.task.container.image = image
    spec.task.container.command.extend(command)
    spec.replicated.replicas = replicas
    return spec


class ControlClient:
    """The Control API of one daemon, over its local socket."""

    def __init__(self, manager: ManagerProcess) -> None:
        self._channel = grpc.aio.insecure_channel(
            f"unix:{manager.socket_path}",
            options=[("grpc.max_receive_message_length", 256 * 2**20)],  # ListTasks of 10k tasks
        )
        self.control = control_pb2_grpc.ControlStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def create_service(self, spec: objects_pb2.ServiceSpec) -> objects_pb2.Service:
        return (await self.control.CreateService(control_pb2.CreateServiceRequest(spec=spec), timeout=60)).service

    async def running_count(self, service_id: str) -> tuple[int, int]:
        """(running, desired) of the service, as `service ls` shows them."""
        request = control_pb2.ListServicesRequest(filters=control_pb2.ListServicesRequest.Filters(ids=[service_id]))
        response = await self.control.ListServices(request, timeout=60)
        for service, status in zip(response.services, response.statuses):
            if service.id == service_id:
                return status.running_tasks, status.desired_tasks
        raise LookupError(f"service {service_id} is not listed by the manager")

    async def tasks(self, service_id: str) -> list[objects_pb2.Task]:
        request = control_pb2.ListTasksRequest(filters=control_pb2.ListTasksRequest.Filters(service_ids=[service_id]))
        return list((await self.control.ListTasks(request, timeout=60)).tasks)

    async def nodes(self) -> list[objects_pb2.Node]:
        return list((await self.control.ListNodes(control_pb2.ListNodesRequest(), timeout=60)).nodes)

    async def node(self, node_id: str) -> objects_pb2.Node:
        return (await self.control.GetNode(control_pb2.GetNodeRequest(ref=node_id), timeout=60)).node

    async def ready_nodes(self) -> int:
        """Nodes READY and active (the drained managers do not count)."""
        return sum(
            1 for node in await self.nodes()
            if node.status.state == objects_pb2.NodeStatus.READY and node.spec.availability == objects_pb2.NodeSpec.ACTIVE
        )

    async def wait_ready_nodes(self, count: int, timeout: float = 120.0, interval: float = 0.1) -> None:
        """Until at least `count` nodes are READY and active; TimeoutError saying how many were."""
        ready = 0
        try:
            async with asyncio.timeout(timeout):
                while (ready := await self.ready_nodes()) < count:
                    await asyncio.sleep(interval)
        except TimeoutError:
            raise TimeoutError(f"only {ready} of {count} nodes were READY after {timeout}s") from None

    async def wait_running(
        self, service_id: str, replicas: int, timeout: float, interval: float, progress: float | None = None,
        unavailable: list[str] | None = None,
    ) -> float:
        """Poll until `replicas` tasks of the service run; the perf_counter time it was first seen.
        With `progress`, print the running count every `progress` seconds (for long runs). With
        `unavailable`, a poll refused as UNAVAILABLE (no leader) is recorded there and polling goes on."""
        started = last_shown = time.perf_counter()
        async with asyncio.timeout(timeout):
            while True:
                try:
                    running, _ = await self.running_count(service_id)
                except grpc.aio.AioRpcError as error:
                    if unavailable is None or error.code() != grpc.StatusCode.UNAVAILABLE:
                        raise
                    unavailable.append(f"{time.perf_counter() - started:.1f} s: {error.details()}")
                    print(f"  poll refused: {unavailable[-1]}", flush=True)
                    continue
                now = time.perf_counter()
                if running >= replicas:
                    return now
                if progress is not None and now - last_shown >= progress:
                    print(f"  {now - started:6.1f} s: {running} of {replicas} running", flush=True)
                    last_shown = now
                await asyncio.sleep(interval)


@dataclass(frozen=True)
class PlacementCheck:
    running: int
    per_node: Counter[str]
    duplicate_slots: list[int]

    @property
    def spread(self) -> tuple[int, int]:
        counts = self.per_node.values()
        return (min(counts), max(counts)) if counts else (0, 0)


def check_placement(tasks: Sequence[objects_pb2.Task]) -> PlacementCheck:
    """Running tasks per node, and the slots that have more than one task meant to run."""
    live = [task for task in tasks if task.desired_state == objects_pb2.RUNNING]
    running = [task for task in live if task.status.state == objects_pb2.RUNNING]
    slots = Counter(task.slot for task in live)
    return PlacementCheck(
        running=len(running),
        per_node=Counter(task.node_id for task in running),
        duplicate_slots=sorted(slot for slot, count in slots.items() if count > 1),
    )
