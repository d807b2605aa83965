"""The worker's owner of the node's data plane: when to apply, with what, and who waits for it.

Theory of operation
-------------------
One NodeNetworking per worker, holding one NodeDataPlane (dataplane.py) and one reconcile task. The
desired state is always rebuilt whole from two inputs, never patched:

- the latest network view from the dispatcher (`set_view`, called by the Worker for every assignments
  message that carries one: the view replaces the last one; the embedded resolver answers from it at
  once, for the names whose path the kernel already has, without waiting for the pass);
- the map task ID -> container ID of this node's running containers, read from the engine at each pass
  (only containers labelled with this node's ID: several daemons sharing an engine plumb only their own).

Anything that may change either input only *asks* for a pass (`request`): a new view, a task's status
going past RUNNING, a container started. Requests made while a pass runs are coalesced into the next one,
so a burst of 40 task starts costs a couple of passes, not 40. A pass that fails (netlink, nft) is logged
and retried with a backoff (0.5 s doubling to 30 s); a slow periodic pass (30 s) repairs anything an
event missed. Until the first view arrives nothing is applied: a restarted daemon must not tear down what
its predecessor plumbed before the managers have said what is still wanted; the first view's pass adopts
it (kernel.py finds everything by name).

The start-up race. The engine creates a network-"none" container's namespace and starts its process in
one call, with no hook between the two, so the process always starts before its interfaces exist. The
answer here is on the reporting side: the executor awaits `container_started` right after the engine's
start, which asks for a pass and waits (bounded) until a pass that began after the start has finished.
So a task is reported RUNNING only once it is plumbed, and since the managers put a task into DNS
answers and VIP rotation only while it is RUNNING, nobody is sent to it before its interfaces exist. The
task's own process may still run a few milliseconds unplumbed; one that needs the network at its very
first instruction must retry (as any networked program should), which the README says.

`close()` ends the reconcile task and the data plane's listeners and leaves the kernel as it is (for the
next daemon to adopt); `teardown()` (leaving the swarm) applies the empty model, removing everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from ipaddress import IPv4Address, ip_address

import docker.errors

from swarmpy.api import dispatcher_pb2
from swarmpy.worker.network.dataplane import NodeDataPlane
from swarmpy.worker.network.from_dispatcher import node_networks
from swarmpy.worker.network.model import DNS_ADDRESS, HostPortForward, ModelError, NodeNetworks
from swarmpy.worker.task_states import Container, ContainerFacts, HostPort

log = logging.getLogger(__name__)

RESYNC_INTERVAL = 30.0
RETRY_MIN = 0.5
RETRY_MAX = 30.0
SLOW_PASS = 1.0  # a pass longer than this is logged with where its time went
STARTED_WAIT = 10.0  # a container start waits at most this long for its plumbing before it is reported


def node_resolvers(path: str = "/etc/resolv.conf") -> tuple[IPv4Address, ...]:
    """The node's own IPv4 nameservers, where the embedded resolver forwards names that are not the swarm's."""
    found: list[IPv4Address] = []
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as exc:
        log.warning("cannot read %s (%s): the embedded resolver forwards nowhere", path, exc)
        return ()
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                address = ip_address(fields[1])
            except ValueError:
                continue
            if isinstance(address, IPv4Address) and address != DNS_ADDRESS and address not in found:
                found.append(address)
    return tuple(found)


class NodeNetworking:
    def __init__(
        self,
        node_id: str,
        running_containers: Callable[[], Awaitable[dict[str, str]]],
        *,
        plane: NodeDataPlane | None = None,
        underlay_addr: str = "",
        upstreams: tuple[IPv4Address, ...] | None = None,
        resync_interval: float = RESYNC_INTERVAL,
        container_facts: Callable[[], Mapping[str, ContainerFacts]] | None = None,
    ) -> None:
        """`running_containers`: this node's running task containers, task ID -> container ID.
        `underlay_addr`: this node's data path address, used when a view names none.
        `container_facts`: container ID -> what the executor recorded on each running task container (as
        of the last `running_containers` call): the host-mode ports the data plane publishes for an
        overlay task, and the --dns servers its embedded resolver asks."""
        self.node_id = node_id
        self.plane = plane if plane is not None else NodeDataPlane(node_id)
        self._running_containers = running_containers
        self._underlay_addr = underlay_addr
        self._upstreams = upstreams if upstreams is not None else node_resolvers()
        self._resync_interval = resync_interval
        self._container_facts = container_facts
        self._dns_warned: set[str] = set()  # containers whose --dns servers had no IPv4 address (logged)
        self._view: dispatcher_pb2.NetworkView | None = None
        self._containers: dict[str, str] = {}  # task ID -> container ID as the last pass found them
        self._wanted = asyncio.Event()
        self._requested = 0  # requests made so far
        self._covered = 0  # requests the last finished pass covered
        self._pass_done = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.passes = 0  # finished passes, for tests and logs
        self.last_error: str = ""

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"data-plane-{self.node_id}")

    async def close(self) -> None:
        """Stop reconciling; the kernel keeps what was plumbed, for the next daemon to adopt."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.plane.close()

    async def teardown(self) -> None:
        """Remove everything this node plumbed (leaving the swarm: no task, no network is left)."""
        self._view = None
        await self.plane.teardown()

    # ---------------------------------------------------------------- inputs

    def set_view(self, view: dispatcher_pb2.NetworkView) -> None:
        """Take the managers' latest view: the resolver answers from it at once (the names whose path the
        kernel already has, see NodeDataPlane.publish_names) and a pass is asked for the rest."""
        self._view = view
        try:
            self.plane.publish_names(self._model(view, self._containers))
        except ModelError:
            pass  # the pass logs it and retries
        self.request()

    def request(self) -> int:
        """Ask for a pass; returns the request's number (see `wait_applied`)."""
        self._requested += 1
        self._wanted.set()
        return self._requested

    async def container_started(self, task_id: str, container_id: str) -> None:
        """The engine started a task's container: return once it is plumbed (a pass begun after the
        start finished), or after STARTED_WAIT, logged, if the data plane cannot do it now."""
        if not await self.wait_applied(self.request(), STARTED_WAIT):
            log.warning("node %s: task %s (container %s) is running but not plumbed after %.0f s: %s",
                        self.node_id, task_id, container_id[:12], STARTED_WAIT, self.last_error or "still applying")

    async def wait_applied(self, request: int, timeout: float) -> bool:
        """Wait until a pass covering request number `request` finished; False on timeout."""
        try:
            async with asyncio.timeout(timeout), self._pass_done:
                await self._pass_done.wait_for(lambda: self._covered >= request)
        except TimeoutError:
            return False
        return True

    # ---------------------------------------------------------------- the reconcile task

    async def _run(self) -> None:
        retry = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(retry or self._resync_interval):
                    await self._wanted.wait()
            self._wanted.clear()
            covered = self._requested
            ok = await self._pass()
            retry = 0.0 if ok else min(max(retry * 2, RETRY_MIN), RETRY_MAX)
            self.passes += 1
            async with self._pass_done:
                self._covered = covered
                self._pass_done.notify_all()

    async def _pass(self) -> bool:
        view = self._view
        if view is None:
            return True  # nothing is known yet: keep what the kernel has (adoption waits for the view)
        started = time.monotonic()
        try:
            self._containers = await self._running_containers()
            listed = time.monotonic() - started
            model = self._model(view, self._containers)
            modelled = time.monotonic() - started - listed
            await self.plane.apply(model)
        except ModelError as exc:
            self.last_error = str(exc)
            log.error("node %s: the network view cannot be applied: %s", self.node_id, exc)
            return False
        except Exception as exc:  # netlink, nft, the engine: logged, retried with a backoff
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("node %s: applying the data plane failed; retrying", self.node_id)
            return False
        self.last_error = ""
        took = time.monotonic() - started
        if took > SLOW_PASS:
            phases = ", ".join(f"{name} {seconds:.2f}" for name, seconds in getattr(self.plane, "last_phases", {}).items())
            log.info("node %s: slow data-plane pass, %.2f s (containers listed %.2f, model %.2f, %s)",
                     self.node_id, took, listed, modelled, phases)
        return True

    def _model(self, view: dispatcher_pb2.NetworkView, containers: dict[str, str]) -> NodeNetworks:
        if not view.underlay_addr and self._underlay_addr:
            view = dispatcher_pb2.NetworkView(networks=view.networks, data_path_port=view.data_path_port,
                                              underlay_addr=self._underlay_addr)
        model = node_networks(view, containers, self._upstreams)
        if self._container_facts is None:
            return model
        facts = self._container_facts()
        model = with_host_ports(model, {c: f.host_ports for c, f in facts.items() if f.host_ports})
        self._dns_warned &= set(facts)  # forget containers that are gone
        return with_container_resolvers(model, {c: f.dns_servers for c, f in facts.items() if f.dns_servers},
                                        self._dns_warned)


def with_host_ports(model: NodeNetworks, ports: Mapping[str, tuple[HostPort, ...]]) -> NodeNetworks:
    """The model with the host-mode ports of its plumbed containers (a port of another protocol than TCP
    or UDP, or of a container on no overlay, is not the data plane's)."""
    plumbed = set(model.containers)
    forwards = tuple(sorted(
        HostPortForward(container, port.protocol, port.published_port, port.target_port)
        for container, bound in ports.items() if container in plumbed
        for port in bound if port.protocol in ("tcp", "udp")))
    return dataclasses.replace(model, host_ports=forwards) if forwards else model


def with_container_resolvers(model: NodeNetworks, servers: Mapping[str, tuple[str, ...]],
                             warned: set[str] | None = None) -> NodeNetworks:
    """The model with the --dns servers of its plumbed containers, as their embedded resolver's upstreams.
    Only IPv4 ones: the resolver forwards over IPv4 (a container given only IPv6 servers keeps the node's,
    logged once per container when `warned` remembers them: models are built on every view and pass)."""
    plumbed = set(model.containers)
    chosen = []
    for container, given in sorted(servers.items()):
        if container not in plumbed:
            continue
        usable = []
        for server in given:
            try:
                address = ip_address(server)
            except ValueError:
                address = None
            if isinstance(address, IPv4Address):
                usable.append(address)
        if usable:
            chosen.append((container, tuple(usable)))
        elif warned is None or container not in warned:
            if warned is not None:
                warned.add(container)
            log.warning("container %s: no IPv4 address among its --dns servers %s; its names are forwarded to "
                        "the node's resolvers", container[:12], ",".join(given))
    return dataclasses.replace(model, container_resolvers=tuple(chosen)) if chosen else model


class OwnedContainers:
    """The `running_containers` and `facts` of a NodeNetworking from one engine listing per pass."""

    def __init__(self, owned: Callable[[], Awaitable[dict[str, ContainerFacts]]]) -> None:
        self._owned = owned
        self.facts: dict[str, ContainerFacts] = {}  # container ID -> facts, of the running ones

    async def running(self) -> dict[str, str]:
        owned = await self._owned()
        self.facts = {facts.container_id: facts for facts in owned.values() if facts.condition is Container.RUNNING}
        return running_task_containers(owned)


def running_task_containers(owned: dict[str, ContainerFacts]) -> dict[str, str]:
    """Task ID -> container ID of the running ones, from `Executor.owned_containers()`."""
    return {
        task_id: facts.container_id
        for task_id, facts in owned.items()
        if task_id and facts.condition is Container.RUNNING
    }


def pid_cache(inspect: Callable[[str], dict]) -> Callable[[str], int | None]:
    """A `pid_of` for the data plane that asks the engine once per container: a task's container is
    never restarted, so its init pid holds for its life (checked against /proc before each use)."""
    pids: dict[str, int] = {}

    def pid_of(container: str) -> int | None:
        pid = pids.get(container)
        if pid and os.path.exists(f"/proc/{pid}/ns/net"):
            return pid
        pids.pop(container, None)
        try:
            state = inspect(container)["State"]
        except docker.errors.NotFound:
            return None
        if not (state.get("Running") and state.get("Pid")):
            return None
        pids[container] = int(state["Pid"])
        if len(pids) > 4096:  # containers long gone: forget the oldest
            del pids[next(iter(pids))]
        return pids[container]

    return pid_of
