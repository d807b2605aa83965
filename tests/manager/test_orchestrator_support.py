"""Builders and a stand-in worker shared by the orchestration tests (no tests here)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from swarmpy.api import objects_pb2
from swarmpy.identity import new_id
from swarmpy.manager.store import MemoryStore, StoreError
from swarmpy.manager.store.memory import clone

NodeState = objects_pb2.NodeStatus.State
Availability = objects_pb2.NodeSpec.Availability


def make_node(
    node_id: str,
    *,
    hostname: str = "",
    state: int = NodeState.READY,
    availability: int = Availability.ACTIVE,
    cpus: int = 4 * 10**9,
    memory: int = 8 * 2**30,
    labels: dict[str, str] | None = None,
    role: int = objects_pb2.WORKER,
    os: str = "linux",
    arch: str = "x86_64",
) -> objects_pb2.Node:
    node = objects_pb2.Node(id=node_id, role=role)
    node.description.hostname = hostname or node_id
    node.description.platform.os = os
    node.description.platform.architecture = arch
    node.description.resources.nano_cpus = cpus
    node.description.resources.memory_bytes = memory
    node.status.state = state
    node.spec.availability = availability
    node.spec.annotations.labels.update(labels or {})
    return node


def make_service(
    name: str = "web",
    *,
    replicas: int | None = 1,
    service_id: str | None = None,
    restart_delay_ns: int | None = 0,
    restart_condition: int = objects_pb2.RestartPolicy.Condition.ANY,
    max_attempts: int = 0,
    constraints: list[str] | None = None,
) -> objects_pb2.Service:
    service = objects_pb2.Service(id=service_id or new_id())
    service.spec.annotations.name = name
    service.spec.task.container.image = "busybox"
    if replicas is None:
        getattr(service.spec, "global").SetInParent()  # "global" is a Python keyword
    else:
        service.spec.replicated.replicas = replicas
    if restart_delay_ns is not None:
        service.spec.task.restart.condition = restart_condition
        service.spec.task.restart.delay = restart_delay_ns
        service.spec.task.restart.max_attempts = max_attempts
    service.spec.task.placement.constraints.extend(constraints or [])
    service.spec_version.index = 1
    return service


def make_task(
    service: objects_pb2.Service,
    slot: int,
    *,
    node_id: str = "",
    state: int = objects_pb2.RUNNING,
    desired: int = objects_pb2.RUNNING,
    created_at: int = 0,
    timestamp: int = 0,
) -> objects_pb2.Task:
    task = objects_pb2.Task(id=new_id(), service_id=service.id, slot=slot, node_id=node_id, desired_state=desired)
    task.spec.CopyFrom(service.spec.task)
    task.spec_version.CopyFrom(service.spec_version)
    task.status.state = state
    task.status.timestamp = timestamp
    task.meta.created_at = created_at
    return task


class FakeAgent:
    """Plays every worker: ASSIGNED tasks run (or, desired READY, are prepared), tasks asked to stop stop.
    Keeps loop tests realistic."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.hold: set[str] = set()  # task IDs it must not touch
        self.failing_images: set[str] = set()  # tasks of these images fail instead of running

    def _step(self, task: objects_pb2.Task) -> objects_pb2.Task | None:
        if task.id in self.hold or not task.node_id:
            return None
        state, desired = task.status.state, task.desired_state
        if desired >= objects_pb2.SHUTDOWN and objects_pb2.ASSIGNED <= state <= objects_pb2.RUNNING:
            target = objects_pb2.SHUTDOWN
        elif desired == objects_pb2.RUNNING and objects_pb2.ASSIGNED <= state < objects_pb2.RUNNING:
            target = objects_pb2.FAILED if task.spec.container.image in self.failing_images else objects_pb2.RUNNING
        elif desired == objects_pb2.READY and objects_pb2.ASSIGNED <= state < objects_pb2.READY:
            target = objects_pb2.READY  # prepared, then held until the manager asks for RUNNING
        else:
            return None
        update = clone(task)
        update.status.state = target
        update.status.timestamp = time.time_ns()
        return update

    async def run(self) -> None:
        view, watch = self._store.view_and_watch(["task"])
        with watch:
            dirty = {task.id for task in view.tasks()}
            while True:
                view = self._store.view()
                updates = [u for u in (self._step(t) for t in (view.get_task(i) for i in dirty) if t) if u]
                dirty = set()
                if updates:
                    try:
                        await self._store.batch(lambda batch: [batch.update("task", u) for u in updates])
                    except StoreError:  # a race with an orchestrator write: look again
                        dirty = {u.id for u in updates}
                        continue
                for event in [await watch.get(), *watch.drain()]:
                    if getattr(event, "kind", None) == "task" and event.new is not None:
                        dirty.add(event.new.id)


async def set_task_state(store: MemoryStore, task_id: str, state: int, err: str = "") -> None:
    def write(tx):
        task = clone(tx.get_task(task_id))
        task.status.state = state
        task.status.timestamp = time.time_ns()
        task.status.err = err
        tx.update("task", task)

    await store.update(write)


async def edit(store: MemoryStore, kind: str, object_id: str, change: Callable[[object], None]) -> None:
    def write(tx):
        obj = clone(tx.get(kind, object_id))
        change(obj)
        tx.update(kind, obj)

    await store.update(write)


async def eventually(predicate: Callable[[], bool], timeout: float = 3.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(*loops) -> AsyncIterator[None]:
    """Run reconcile loops (objects with `run()`) for the duration of the block, then cancel them."""
    tasks = [asyncio.create_task(loop.run()) for loop in loops]
    try:
        yield
        for task in tasks:
            if task.done():
                task.result()  # surface a loop that died
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
