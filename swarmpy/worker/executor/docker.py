"""Running tasks as containers of the local Docker engine.

Theory of operation. A DockerExecutor belongs to one worker node. Several worker daemons may share one
engine, so a node owns exactly the containers labelled swarmpy.node.id=<its node id>: it lists, adopts,
watches and removes only those. Each task gets a DockerController, which finds its container by the task
ID label (so a restarted daemon adopts what its predecessor created, instead of creating a second one),
creates it from the task spec (never pulling: a missing image rejects the task), starts it at most once,
stops it with the task's grace period and removes it. Waiting for a container to stop (on its own, or
after the stop signal during its grace period) is not a blocked thread per container: the executor's one
engine-events watcher wakes the waiter, which then inspects.

The Docker SDK is blocking; every call goes through asyncio.to_thread, and only short calls do: the
engine's own stop (which holds its caller for the whole grace period) is never used, since a small
thread pool would then stop containers a few at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import docker
import docker.errors

from swarmpy.api import objects_pb2
from swarmpy.worker.executor import container_config, host_ports
from swarmpy.worker.executor.base import (
    ContainerExited,
    ContainerVanished,
    EngineError,
    UNHEALTHY,
    ImageNotFound,
    InvalidSpec,
    stop_grace_seconds,
)
from swarmpy.worker.executor.container_config import NODE_LABEL, TASK_ID_LABEL
from swarmpy.worker.executor.events import ContainerChanges, EngineEventsWatcher
from swarmpy.worker.executor.logs import LogLine, container_logs
from swarmpy.worker.executor.task_files import TaskFiles
from swarmpy.worker.task_states import NO_CONTAINER, Container, ContainerFacts, Health, HostPort

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_STOP_SIGNAL = "SIGTERM"  # the engine's, for a container whose image and spec name none
KILL_EXIT_TIMEOUT = 30.0  # SIGKILL cannot be ignored; a container still up after this is the engine's fault
EXIT_RECHECK_INTERVAL = 2.0

_CONDITIONS = {
    "created": Container.CREATED,
    "running": Container.RUNNING,
    "paused": Container.RUNNING,
    "restarting": Container.RUNNING,
    "exited": Container.EXITED,
    "dead": Container.EXITED,
    "removing": Container.EXITED,
}


_HEALTH = {"starting": Health.STARTING, "healthy": Health.HEALTHY, "unhealthy": Health.UNHEALTHY}


def _labelled_host_ports(labels: dict[str, str] | None) -> tuple[HostPort, ...]:
    """The host-mode ports the node's data plane publishes for a container on overlay networks."""
    text = (labels or {}).get(container_config.HOST_PORTS_LABEL, "")
    return container_config.parse_host_ports_label(text) if text else ()


def _labelled_dns_servers(labels: dict[str, str] | None) -> tuple[str, ...]:
    """The --dns servers a container on overlay networks has its embedded resolver ask."""
    text = (labels or {}).get(container_config.DNS_SERVERS_LABEL, "")
    return tuple(server for server in text.split(",") if server)


def _host_ports(inspected: dict[str, Any]) -> tuple[HostPort, ...]:
    """The bound ports, once per port and host port (the engine lists an IPv4 and an IPv6 binding), or
    the data plane's for a task on overlay networks."""
    labelled = _labelled_host_ports((inspected.get("Config") or {}).get("Labels"))
    if labelled:
        return labelled
    found: dict[tuple[int, str, int], None] = {}
    for port, bindings in ((inspected.get("NetworkSettings") or {}).get("Ports") or {}).items():
        target, _, protocol = port.partition("/")
        for binding in bindings or ():
            if binding.get("HostPort"):
                found[(int(target), protocol or "tcp", int(binding["HostPort"]))] = None
    return tuple(HostPort(*key) for key in found)


def facts_from_inspect(inspected: dict[str, Any]) -> ContainerFacts:
    state = inspected.get("State", {})
    health = state.get("Health") or {}
    return ContainerFacts(
        condition=_CONDITIONS.get(state.get("Status", ""), Container.EXITED),
        container_id=inspected["Id"],
        pid=int(state.get("Pid") or 0),
        exit_code=int(state.get("ExitCode") or 0),
        health=_HEALTH.get(health.get("Status", ""), Health.NONE),
        host_ports=_host_ports(inspected),
        dns_servers=_labelled_dns_servers((inspected.get("Config") or {}).get("Labels")),
    )


class DockerExecutor:
    """One node's view of the engine. Use `async with`, or start() and close(): they own the events watcher."""

    def __init__(self, node_id: str, client: docker.DockerClient, task_files: TaskFiles | None = None,
                 description: objects_pb2.NodeDescription | None = None) -> None:
        self.node_id = node_id
        self.client = client
        # Secrets and configs: without TaskFiles, a task that uses one fails (nothing to deliver them).
        self.task_files = task_files
        self.description = description  # this node, as service templates see it ({{.Node.Hostname}})
        self.events = EngineEventsWatcher(client, node_id)
        # Awaited after the engine starts a container on overlay networks (the worker's NodeNetworking):
        # the task is reported RUNNING only once the data plane plumbed it.
        self.on_started: Callable[[str, str], Awaitable[None]] | None = None
        self.host_port_lock = asyncio.Lock()  # held while a task's host-mode ports are picked and recorded

    async def start(self) -> None:
        await self.events.start()

    async def close(self) -> None:
        await self.events.close()

    async def __aenter__(self) -> DockerExecutor:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def controller(self, task: objects_pb2.Task) -> DockerController:
        return DockerController(self, task)

    async def owned_containers(self) -> dict[str, ContainerFacts]:
        """This node's containers, by task ID (facts without pid or exit code: listing does not carry them)."""
        listed = await asyncio.to_thread(
            self.client.api.containers, all=True, filters={"label": f"{NODE_LABEL}={self.node_id}"}
        )
        owned: dict[str, ContainerFacts] = {}
        for entry in listed:
            task_id = (entry.get("Labels") or {}).get(TASK_ID_LABEL, "")
            condition = _CONDITIONS.get(entry.get("State", ""), Container.EXITED)
            labels = entry.get("Labels")
            owned[task_id] = ContainerFacts(condition, container_id=entry["Id"],
                                            host_ports=_labelled_host_ports(labels),
                                            dns_servers=_labelled_dns_servers(labels))
        return owned

    async def remove_container(self, container_id: str, task_id: str = "") -> None:
        """Remove one of this node's containers, running or not; a missing one is already removed."""
        try:
            await asyncio.to_thread(self.client.api.remove_container, container_id, v=True, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: a removal is already in progress
                raise EngineError(
                    task_id, f"node {self.node_id}: removing container {container_id[:12]} (task {task_id}): {exc}"
                ) from exc
        await self.forget_task_files(task_id)

    async def forget_task_files(self, task_id: str) -> None:
        if self.task_files is not None and task_id:
            await asyncio.to_thread(self.task_files.remove, task_id)

    def logs(
        self, container_id: str, *, follow: bool = False, tail: int = -1, since_ns: int = 0, details: bool = False
    ) -> AsyncIterator[LogLine]:
        """The container's log lines (see swarmpy.worker.executor.logs); close it with contextlib.aclosing."""
        return container_logs(self.client, container_id, follow=follow, tail=tail, since_ns=since_ns, details=details)


class DockerController:
    """The container of one task. Implements swarmpy.worker.executor.base.Controller."""

    def __init__(self, executor: DockerExecutor, task: objects_pb2.Task) -> None:
        self._executor = executor
        self._api = executor.client.api
        self._task = task
        self.container_id = ""  # known once the container was created or found
        self._known_absent = False  # the engine said there is none, and prepare() has not run since

    @property
    def task_id(self) -> str:
        return self._task.id

    def _describe(self) -> str:
        container = self.container_id[:12] or container_config.container_name(self._task)
        return f"task {self._task.id} (container {container})"

    async def _call(self, doing: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking SDK call; engine failures other than NotFound become EngineError naming the task."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except docker.errors.NotFound:
            raise
        except docker.errors.DockerException as exc:
            raise EngineError(self._task.id, f"{self._describe()}: {doing}: {exc}") from exc

    async def _find(self) -> ContainerFacts:
        if self._known_absent:
            return NO_CONTAINER
        listed = await self._call(
            "listing containers",
            self._api.containers,
            all=True,
            filters={"label": [f"{NODE_LABEL}={self._executor.node_id}", f"{TASK_ID_LABEL}={self._task.id}"]},
        )
        if not listed:
            # Only this controller creates the task's container (a concurrent create loses on the name and
            # finds it again), so until prepare() there is no need to ask the engine again.
            self._known_absent = True
            return NO_CONTAINER
        self.container_id = listed[0]["Id"]
        return await self._inspect_known()

    async def _inspect_known(self) -> ContainerFacts:
        try:
            inspected = await self._call("inspecting", self._api.inspect_container, self.container_id)
        except docker.errors.NotFound:
            return NO_CONTAINER
        return facts_from_inspect(inspected)

    async def inspect(self) -> ContainerFacts:
        if not self.container_id:
            return await self._find()
        return await self._inspect_known()

    async def prepare(self) -> None:
        if (await self.inspect()).exists:
            return  # created before (by this runner or a previous daemon): adopt it
        if container_config.on_overlay(self._task) and container_config.host_mode_ports(self._task):
            # Held until the container (and its label) exists, so two creations never pick one port.
            async with self._executor.host_port_lock:
                await self._create(await self._overlay_host_ports())
        else:
            await self._create([])

    async def _create(self, overlay_host_ports: list[HostPort]) -> None:
        kwargs = container_config.create_kwargs(self._task, self._executor.node_id, self._executor.description,
                                                overlay_host_ports)
        kwargs["mounts"] = kwargs.get("mounts", []) + await self._task_file_mounts()
        self._known_absent = False  # from here on the engine may hold it: ask again
        try:
            container = await asyncio.to_thread(self._executor.client.containers.create, **kwargs)
        except docker.errors.ImageNotFound as exc:
            raise ImageNotFound(self._task.id, kwargs["image"], self._executor.node_id) from exc
        except docker.errors.APIError as exc:
            if exc.status_code == 409 and (await self._find()).exists:
                return  # a concurrent prepare of the same task won the name
            raise EngineError(self._task.id, f"{self._describe()}: creating: {exc}") from exc
        self.container_id = container.id
        log.debug("%s: created", self._describe())

    async def _overlay_host_ports(self) -> list[HostPort]:
        """Its host-mode ports as this node publishes them for a task on overlay networks (host_ports.py),
        checked against the node's sockets and the ports of this node's other live containers."""
        owned = await self._executor.owned_containers()
        taken = [port for task_id, facts in owned.items()
                 if task_id != self._task.id and facts.condition is not Container.EXITED for port in facts.host_ports]
        try:
            return await asyncio.to_thread(host_ports.choose, container_config.host_mode_ports(self._task), taken)
        except host_ports.PortInUse as exc:
            raise EngineError(self._task.id, f"{self._describe()}: creating: {exc}") from exc

    async def _task_file_mounts(self) -> list[Any]:
        container = self._task.spec.container
        if not container.secrets and not container.configs:
            return []
        files = self._executor.task_files
        if files is None:
            raise InvalidSpec(self._task.id, f"node {self._executor.node_id} cannot deliver secrets or configs")
        return await asyncio.to_thread(files.prepare, self._task)

    async def start(self) -> None:
        facts = await self.inspect()
        if facts.condition is Container.ABSENT:
            raise ContainerVanished(self._task.id, self.container_id or container_config.container_name(self._task))
        if facts.condition is Container.EXITED:
            return  # started once already; a task's container is never started twice
        if facts.condition is Container.CREATED:
            try:
                await self._call("starting", self._api.start, self.container_id)
            except docker.errors.NotFound as exc:
                raise ContainerVanished(self._task.id, self.container_id) from exc
            log.debug("%s: started", self._describe())
            if self._executor.on_started is not None and container_config.on_overlay(self._task):
                await self._executor.on_started(self._task.id, self.container_id)
        await self.until_healthy()

    async def until_healthy(self) -> None:
        """swarm's rule: a container with a health check (its spec's or its image's) counts as started
        once the engine finds it healthy; one found unhealthy first is stopped and fails its task."""
        with self._executor.events.watch(self.container_id) as changes:
            while True:
                facts = await self._inspect_known()
                if facts.condition is Container.ABSENT:
                    raise ContainerVanished(self._task.id, self.container_id)
                if facts.condition is not Container.RUNNING or facts.health in (Health.NONE, Health.HEALTHY):
                    return  # an exited container is the task runner's to finish
                if facts.health is Health.UNHEALTHY:
                    await self._stop_unhealthy()
                await self._next_change(changes)

    async def _stop_unhealthy(self) -> None:
        log.info("%s: unhealthy; stopping it", self._describe())
        await self.shutdown()
        facts = await self._inspect_known()
        raise ContainerExited(self._task.id, self.container_id, facts.exit_code, cause=UNHEALTHY)

    async def _next_change(self, changes: ContainerChanges, timeout: float = EXIT_RECHECK_INTERVAL) -> None:
        """Sleep until the engine reports a change of the container; the cap re-inspects now and then in
        case an event was lost."""
        try:
            await asyncio.wait_for(changes.wait(), timeout)
        except TimeoutError:
            pass

    async def wait(self) -> ContainerFacts:
        if not self.container_id and not (await self.inspect()).exists:
            raise ContainerVanished(self._task.id, container_config.container_name(self._task))
        while True:
            # Register before inspecting, so a death between the two still wakes us.
            with self._executor.events.watch(self.container_id) as changes:
                facts = await self._inspect_known()
                if facts.condition is Container.ABSENT:
                    raise ContainerVanished(self._task.id, self.container_id)
                if facts.condition is Container.EXITED:
                    if facts.exit_code != 0:
                        raise ContainerExited(self._task.id, self.container_id, facts.exit_code)
                    return facts
                if facts.health is Health.UNHEALTHY:
                    await self._stop_unhealthy()
                await changes.wait()  # health_status events wake us too

    async def shutdown(self, grace: float | None = None) -> None:
        """The engine's stop, done here so that no thread waits out the grace period: the stop signal,
        then SIGKILL once `grace` seconds pass without the container exiting. Waiting is the events
        watcher's wake-up, so any number of containers stop at once, each bounded by its own grace."""
        if not self.container_id and not (await self.inspect()).exists:
            return
        if grace is None:
            grace = stop_grace_seconds(self._task)
        with self._executor.events.watch(self.container_id) as changes:
            try:
                inspected = await self._call("inspecting", self._api.inspect_container, self.container_id)
            except docker.errors.NotFound:
                return
            if facts_from_inspect(inspected).condition is not Container.RUNNING:
                return
            stop_signal = (inspected.get("Config") or {}).get("StopSignal") or DEFAULT_STOP_SIGNAL
            if grace > 0:
                if not await self._signal(stop_signal, "stopping"):
                    return
                if await self._exited_within(changes, grace):
                    log.debug("%s: stopped by %s", self._describe(), stop_signal)
                    return
            if not await self._signal("SIGKILL", "killing"):
                return
            if not await self._exited_within(changes, KILL_EXIT_TIMEOUT):
                raise EngineError(self._task.id, f"{self._describe()}: still running {KILL_EXIT_TIMEOUT:.0f}s after SIGKILL")
        log.debug("%s: killed after its grace period (%ss)", self._describe(), grace)

    async def _signal(self, signal: str, doing: str) -> bool:
        """Send `signal`; False if the container is not running (or gone): nothing left to stop."""
        try:
            await asyncio.to_thread(self._api.kill, self.container_id, signal=signal)
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # not running
                return False
            raise EngineError(self._task.id, f"{self._describe()}: {doing}: {exc}") from exc
        except docker.errors.DockerException as exc:
            raise EngineError(self._task.id, f"{self._describe()}: {doing}: {exc}") from exc
        return True

    async def _exited_within(self, changes: ContainerChanges, seconds: float) -> bool:
        """True once the container is no longer running, False if `seconds` pass first."""
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            if (await self._inspect_known()).condition is not Container.RUNNING:
                return True
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            await self._next_change(changes, min(remaining, EXIT_RECHECK_INTERVAL))

    async def terminate(self) -> None:
        if not self.container_id and not (await self.inspect()).exists:
            return
        try:
            await asyncio.to_thread(self._api.kill, self.container_id)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: it is not running, which is what we wanted
                raise EngineError(self._task.id, f"{self._describe()}: killing: {exc}") from exc

    async def remove(self) -> None:
        if not self.container_id and not (await self.inspect()).exists:
            await self._executor.forget_task_files(self._task.id)
            return
        await self._executor.remove_container(self.container_id, self._task.id)
        log.debug("%s: removed", self._describe())
