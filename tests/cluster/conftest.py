"""Multi-host fixtures: several real `swarmpyd` processes on their own 127.0.0.x addresses, one swarm.

Each `ClusterDaemon` is one swarmpyd subprocess (tests.integration's SwarmDaemon, reused for its process,
CLI and container helpers) listening on its own loopback address, started with a short Raft tick
(SWARMPY_RAFT_TICK=0.1: an election takes 1-2 s instead of 10-20 s). A `Cluster` is the swarm they
form: the first initialises it with a 1 s dispatcher heartbeat (a silent node is DOWN after ~3 s), the
others join with the manager or worker token through the first manager.

The machine has one Docker engine and every daemon uses it; each owns the containers labelled with its
node ID, and teardown kills every daemon and removes every container labelled with any of the swarm's
node IDs, including the IDs of nodes that left or were replaced.

Polling goes over the daemons' local sockets with the gRPC stubs (no process per poll); what a user
would see -- exit codes, messages, `node ls` -- goes through the real CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from swarmpy.api import control_pb2, control_pb2_grpc, objects_pb2
from tests.conftest import docker_client
from tests.integration.conftest import CliResult, SwarmDaemon, wait_until
from tests import daemon_logs

RAFT_TICK = 0.1  # seconds; election timeout 10-20 ticks
ELECTION_TIMEOUT = 20 * RAFT_TICK  # the longest randomized timeout
HEARTBEAT = "1s"  # dispatcher heartbeat: DOWN after 3 missed periods
GRACE = 3.0
RPC_TIMEOUT = 5.0
JOIN_TIMEOUT = 60.0

# Each test module gets its own third octet, so clusters of different modules (and any daemons people
# run by hand on 127.0.0.2..) never share an address.
_octets = iter(random.sample(range(40, 250), 200))


def free_port_on(ip: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((ip, 0))
        return probe.getsockname()[1]


class ClusterDaemon(SwarmDaemon):
    """One host of a multi-host swarm: swarmpyd on `ip`, with a short Raft tick."""

    def __init__(self, workdir: Path, docker, ip: str, name: str, *, listen_port: int | None = None,
                 launcher: tuple[str, ...] = ()) -> None:
        """`launcher` prefixes the daemon's command line (e.g. `ip netns exec NS`, to run it in its own
        network namespace, where `ip` is not bindable from here: then `listen_port` must be given)."""
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir, docker)
        self.ip = ip
        self.name = name
        self.hostname = f"{name}-{uuid.uuid4().hex[:6]}"
        self.listen_port = listen_port if listen_port is not None else free_port_on(ip)
        self.launcher = launcher
        self.known_node_ids: set[str] = set()  # every ID this host had: teardown removes their containers
        self._channel: grpc.Channel | None = None

    @property
    def addr(self) -> str:
        return f"{self.ip}:{self.listen_port}"

    def start(self) -> None:
        self._starts += 1
        daemon_logs.started(self.log_path)
        with open(self.log_path, "a") as log:
            log.write(f"---- start #{self._starts} ----\n")
            log.flush()
            env = dict(os.environ, SWARMPY_RAFT_TICK=str(RAFT_TICK))
            self.process = subprocess.Popen(
                [*self.launcher, sys.executable, "-c", "from swarmpy.daemon import main; main()",
                 "--data-dir", str(self.data_dir), "--socket", str(self.socket_path), "--hostname", self.hostname],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env,
            )
        wait_until(self._socket_answers, timeout=15, what=f"swarmpyd {self.name} to serve its socket",
                   details=self.log_tail)

    @property
    def running_process(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the host dies with no chance to clean up (its containers keep running)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None
        self._close_channel()

    def freeze(self) -> None:
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def restart(self) -> None:
        self.kill()
        self.start()

    # -- identity ------------------------------------------------------------------------------

    def state(self) -> dict | None:
        try:
            return json.loads((self.data_dir / "node.json").read_text())
        except FileNotFoundError:
            return None

    def refresh_node_id(self) -> str:
        state = self.state()
        self.node_id = state["node_id"] if state else ""
        if self.node_id:
            self.known_node_ids.add(self.node_id)
        return self.node_id

    def certificate_ou(self) -> str:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        # swarm-node.pem holds the key, then the certificate
        pem = (self.data_dir / "certificates" / "swarm-node.pem").read_bytes()
        cert = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE-----"):])
        return cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value

    # -- Control over the local socket, for polling ----------------------------------------------

    def _stub(self) -> control_pb2_grpc.ControlStub:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.host)
        return control_pb2_grpc.ControlStub(self._channel)

    def _close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def rpc(self, method: str, request, timeout: float = RPC_TIMEOUT):
        return getattr(self._stub(), method)(request, timeout=timeout)

    def try_rpc(self, method: str, request, timeout: float = RPC_TIMEOUT):
        """The answer, or None when the daemon cannot answer now (no leader, frozen, dead)."""
        if not self.running_process:
            return None
        try:
            return self.rpc(method, request, timeout)
        except grpc.RpcError:
            return None

    def nodes(self) -> list[objects_pb2.Node] | None:
        answer = self.try_rpc("ListNodes", control_pb2.ListNodesRequest())
        return None if answer is None else list(answer.nodes)

    def leader_node_id(self) -> str:
        """The node this manager's store says leads ("" if it cannot answer)."""
        for node in self.nodes() or []:
            if node.manager_status.leader:
                return node.id
        return ""

    def service_tasks(self, service: str) -> list[objects_pb2.Task] | None:
        answer = self.try_rpc("ListTasks", control_pb2.ListTasksRequest())
        if answer is None:
            return None
        return [t for t in answer.tasks if t.service_annotations.name == service]

    def services(self) -> list[objects_pb2.Service] | None:
        answer = self.try_rpc("ListServices", control_pb2.ListServicesRequest())
        return None if answer is None else list(answer.services)

    def teardown(self) -> None:
        self.kill()
        self.refresh_node_id()
        for node_id in self.known_node_ids:
            self.node_id = node_id
            self.remove_containers()
        for leftover in (self.socket_path, self._socket_dir):
            try:
                leftover.rmdir() if leftover.is_dir() else leftover.unlink()
            except OSError:
                pass


class Cluster:
    """A swarm of ClusterDaemons. `daemons` keeps the order they were made in (m1, m2, m3, w1, ...)."""

    def __init__(self, root: Path, docker) -> None:
        self.root = root
        self.docker = docker
        self.octet = next(_octets)
        self.daemons: dict[str, ClusterDaemon] = {}
        self.tokens: dict[str, str] = {}

    def add(self, name: str) -> ClusterDaemon:
        ip = f"127.0.{self.octet}.{len(self.daemons) + 2}"
        daemon = ClusterDaemon(self.root / name, self.docker, ip, name)
        self.daemons[name] = daemon
        daemon.start()
        return daemon

    def __getitem__(self, name: str) -> ClusterDaemon:
        return self.daemons[name]

    # -- forming it ------------------------------------------------------------------------------

    def init(self, name: str) -> ClusterDaemon:
        first = self.add(name)
        first.ok("swarm", "init", "--advertise-addr", first.ip, "--listen-addr", first.addr,
                 "--dispatcher-heartbeat", HEARTBEAT)
        first.refresh_node_id()
        self.refresh_tokens(first)
        return first

    def refresh_tokens(self, manager: ClusterDaemon) -> None:
        for role in ("manager", "worker"):
            self.tokens[role] = manager.ok("swarm", "join-token", "-q", role).stdout.strip()

    def join(self, name: str, role: str, through: ClusterDaemon | None = None) -> ClusterDaemon:
        daemon = self.daemons.get(name) or self.add(name)
        via = through or next(iter(self.daemons.values()))
        daemon.ok("swarm", "join", "--token", self.tokens[role], "--listen-addr", daemon.addr,
                  "--advertise-addr", daemon.ip, via.addr, timeout=JOIN_TIMEOUT)
        daemon.refresh_node_id()
        return daemon

    def join_cli(self, daemon: ClusterDaemon, token: str, through: ClusterDaemon) -> CliResult:
        return daemon.cli("swarm", "join", "--token", token, "--listen-addr", daemon.addr,
                          "--advertise-addr", daemon.ip, through.addr, timeout=JOIN_TIMEOUT)

    # -- looking at it ---------------------------------------------------------------------------

    def managers(self) -> list[ClusterDaemon]:
        return [d for d in self.daemons.values() if (d.state() or {}).get("role") == "manager"]

    def live_managers(self) -> list[ClusterDaemon]:
        return [d for d in self.managers() if d.running_process]

    def by_node_id(self, node_id: str) -> ClusterDaemon:
        return next(d for d in self.daemons.values() if d.node_id == node_id)

    def agreed_leader(self, among: list[ClusterDaemon] | None = None) -> ClusterDaemon | None:
        """The leader every manager in `among` (default: every live one) names, if they all agree."""
        among = among if among is not None else self.live_managers()
        named = {m.leader_node_id() for m in among}
        if len(named) != 1 or "" in named:
            return None
        leader_id = named.pop()
        leader = next((d for d in self.daemons.values() if d.node_id == leader_id), None)
        return leader if leader is not None and leader.running_process else None

    def wait_leader(self, among: list[ClusterDaemon] | None = None, timeout: float = 30.0) -> ClusterDaemon:
        return wait_until(lambda: self.agreed_leader(among), timeout=timeout, interval=0.1,
                          what="the managers to agree on a live leader", details=self.status)

    def wait_ready(self, timeout: float = 30.0, among: list[ClusterDaemon] | None = None) -> None:
        """Every node of `among` (default: all) READY, every manager REACHABLE, one leader."""
        among = among if among is not None else list(self.daemons.values())
        wanted = {d.node_id for d in among}

        def ready() -> bool:
            leader = self.agreed_leader()
            if leader is None:
                return False
            nodes = {n.id: n for n in leader.nodes() or []}
            for node_id in wanted:
                node = nodes.get(node_id)
                if node is None or node.status.state != objects_pb2.NodeStatus.READY:
                    return False
                if node.role == objects_pb2.MANAGER and (
                        node.manager_status.reachability != objects_pb2.ManagerStatus.REACHABLE):
                    return False
            return True

        wait_until(ready, timeout=timeout, interval=0.2, what="every node ready and every manager reachable",
                   details=self.status)

    def running_containers(self, service: str) -> list:
        return self.docker.containers.list(filters={
            "label": [f"com.docker.swarm.service.name={service}"], "status": "running",
        })

    def our_running_containers(self, service: str) -> list:
        ours = set().union(*(d.known_node_ids for d in self.daemons.values()))
        return [c for c in self.running_containers(service) if c.labels.get("swarmpy.node.id") in ours]

    def status(self) -> str:
        lines = []
        for daemon in self.daemons.values():
            alive = "up" if daemon.running_process else "down"
            lines.append(f"{daemon.name} {daemon.addr} {daemon.node_id} ({alive}): "
                         f"{[(n.description.hostname, objects_pb2.NodeStatus.State.Name(n.status.state), n.manager_status.leader, n.manager_status.reachability) for n in daemon.nodes() or []]}")
        for daemon in self.daemons.values():
            lines.append(f"-- {daemon.name}\n{daemon.log_tail(25)}")
        return "\n".join(lines)

    @contextlib.contextmanager
    def torn_down(self) -> Iterator[Cluster]:
        """`with cluster.torn_down():` tears the cluster down when the body ends, printing its status
        first when the body failed (a test's or a fixture's whole life, setup included)."""
        try:
            yield self
        except BaseException:
            print(self.status())
            raise
        finally:
            self.teardown()

    def teardown(self) -> None:
        for daemon in self.daemons.values():
            try:
                if daemon.process is not None:
                    daemon.thaw()
            except (ProcessLookupError, PermissionError):
                pass
        # Every daemon dies before any container is removed: a live leader would otherwise reschedule
        # the tasks of the hosts already torn down, and start containers for them meanwhile.
        for daemon in self.daemons.values():
            daemon.kill()
        for daemon in self.daemons.values():
            daemon.teardown()


def form_cluster(root: Path, docker, managers: int, workers: int) -> Cluster:
    """A swarm of `managers` managers (m1 initialises it) and `workers` workers, all ready."""
    cluster = Cluster(root, docker)
    try:
        first = cluster.init("m1")
        for i in range(2, managers + 1):
            cluster.join(f"m{i}", "manager", through=first)
        for i in range(1, workers + 1):
            cluster.join(f"w{i}", "worker", through=first)
        cluster.wait_ready()
    except BaseException:
        print(cluster.status())
        cluster.teardown()
        raise
    return cluster


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def create_service(manager: ClusterDaemon, name: str, image: str, replicas: int, *extra: str) -> str:
    result = manager.ok("service", "create", "-d", "--name", name, "--replicas", str(replicas),
                        "--stop-grace-period", "1s", *extra, image, "sleep", "100000")
    return result.stdout.strip()


def wait_running(cluster: Cluster, service: str, count: int, timeout: float = 40.0) -> list:
    """Exactly `count` running containers of `service` on the swarm's hosts."""
    return wait_until(lambda: (lambda found: found if len(found) == count else None)(cluster.our_running_containers(service)),
                      timeout=timeout, interval=0.25, what=f"{count} running containers of {service}",
                      details=cluster.status)


def ok_despite_elections(manager: ClusterDaemon, *args: str, within: float = 15.0) -> CliResult:
    """Run the CLI, retrying only "no leader" refusals for `within` seconds, as a user would: on a loaded
    machine (2 cores shared with other test runs) a 0.1 s tick can cost a fresh leader its quorum check
    and start one more election. Every retry is printed, so a run that needed them says so."""
    deadline = time.monotonic() + within
    while True:
        result = manager.cli(*args)
        if result.code == 0:
            return result
        if "the swarm does not have a leader" not in result.stderr or time.monotonic() > deadline:
            raise AssertionError(f"{result}\n{manager.log_tail()}")
        print(f"retrying `swarmpy {' '.join(args)}` on {manager.name}: {result.stderr.strip()}")
        time.sleep(0.5)


def elapsed_since(start: float) -> float:
    return time.monotonic() - start


@pytest.fixture(scope="session")
def docker(busybox_image):
    client = docker_client()
    yield client
    client.close()


@pytest.fixture
def image(busybox_image) -> str:
    return busybox_image.removesuffix(":latest")


def running_tasks(manager: ClusterDaemon, service: str) -> list[objects_pb2.Task] | None:
    """Tasks of `service` that should run and do, as `manager` answers (None if it cannot answer)."""
    tasks = manager.service_tasks(service)
    if tasks is None:
        return None
    return [t for t in tasks if t.desired_state == objects_pb2.RUNNING and t.status.state == objects_pb2.RUNNING]


def wait_converged(cluster: Cluster, manager: ClusterDaemon, service: str, count: int, timeout: float = 40.0,
                   on_live_hosts_only: bool = False) -> list[objects_pb2.Task]:
    """`count` running tasks, one per slot, on nodes with a live daemon, each with its running container."""
    live = {d.node_id for d in cluster.daemons.values() if d.running_process}

    def converged():
        tasks = running_tasks(manager, service)
        if tasks is None or len(tasks) != count or len({t.slot for t in tasks}) != count:
            return None
        if any(t.node_id not in live for t in tasks):
            return None
        containers = {c.labels.get("com.docker.swarm.task.id") for c in cluster.our_running_containers(service)}
        if not {t.id for t in tasks} <= containers:
            return None
        if not on_live_hosts_only and len(containers) != count:
            return None
        return tasks

    return wait_until(converged, timeout=timeout, interval=0.25,
                      what=f"{count} running tasks of {service} on live hosts, as {manager.name} says",
                      details=lambda: f"{manager.cli('service', 'ps', service)}\n{cluster.status()}")
