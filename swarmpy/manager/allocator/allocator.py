"""The allocator: gives services their endpoints and lets their new tasks go to the scheduler.

Theory of operation
-------------------
A service's endpoint is allocated when `service.endpoint.spec` equals `service.spec.endpoint`; the
allocator makes it so on every service create and update. Each published port of the spec becomes an
entry of `endpoint.ports`:
- ingress mode with published_port 0: a free port from 30000-32767 is assigned (a port the service
  already had for the same target and protocol is kept, so an update does not move it);
- ingress mode with a published port: that port, which no other service may hold;
- host mode: as given (each node's port is the scheduler's business: one task per node and port).
`PortAllocator` is the pure bookkeeping of ingress ports (cluster-wide, per protocol), rebuilt from the
store when the loop starts and released when a service is deleted.

A task is NEW when an orchestrator creates it. Once its service's endpoint is allocated, the allocator
copies the endpoint into the task and moves it to PENDING ("pending task scheduling"), in batches; the
scheduler takes it from there. Tasks no longer wanted (desired state beyond RUNNING) are left NEW.
If a service's ports cannot be allocated (a published port taken by another service), its tasks stay NEW
and the error is logged; the control API is expected to refuse such specs up front.
"""

from __future__ import annotations

import asyncio
import logging
import time

from swarmpy.api import objects_pb2
from swarmpy.manager.store import Change, MemoryStore, StoreError
from swarmpy.manager.store.memory import Batch, clone

log = logging.getLogger(__name__)

INGRESS_PORT_START = 30000
INGRESS_PORT_END = 32767  # inclusive
PublishMode = objects_pb2.PortConfig.PublishMode
Protocol = objects_pb2.PortConfig.Protocol


class PortConflict(Exception):
    """A service asks for an ingress port another service holds (the request's fault), or none are left."""

    def __init__(self, service_name: str, message: str) -> None:
        super().__init__(f"service {service_name}: {message}")
        self.service_name = service_name


class PortAllocator:
    """Which ingress ports (protocol, port) are held by which service."""

    def __init__(self) -> None:
        self._holders: dict[tuple[int, int], str] = {}
        self._next = INGRESS_PORT_START

    def holder(self, protocol: int, port: int) -> str | None:
        return self._holders.get((protocol, port))

    def restore(self, service: objects_pb2.Service) -> None:
        """Record the ports an already allocated service holds."""
        for port in service.endpoint.ports:
            if port.publish_mode == PublishMode.INGRESS and port.published_port:
                self._holders[(port.protocol, port.published_port)] = service.id

    def release(self, service_id: str) -> None:
        for key in [key for key, holder in self._holders.items() if holder == service_id]:
            del self._holders[key]

    def allocate(self, service: objects_pb2.Service) -> list[objects_pb2.PortConfig]:
        """The endpoint ports for the service's current spec; commits them only if all can be had."""
        previous = {
            (port.protocol, port.target_port): port.published_port
            for port in service.endpoint.ports
            if port.publish_mode == PublishMode.INGRESS
        }
        wanted: dict[tuple[int, int], None] = {}
        ports: list[objects_pb2.PortConfig] = []
        dynamic: list[objects_pb2.PortConfig] = []
        name = service.spec.annotations.name
        for spec_port in service.spec.endpoint.ports:
            port = clone(spec_port)
            ports.append(port)
            if port.publish_mode != PublishMode.INGRESS:
                continue
            if port.published_port == 0:
                dynamic.append(port)
                continue
            key = (port.protocol, port.published_port)
            holder = self._holders.get(key)
            if (holder is not None and holder != service.id) or key in wanted:
                raise PortConflict(
                    name,
                    f"published port {port.published_port}/{Protocol.Name(port.protocol).lower()}"
                    f" is already in use{' by service ' + holder if holder and holder != service.id else ''}",
                )
            wanted[key] = None
        for port in dynamic:
            kept = previous.get((port.protocol, port.target_port))
            if kept and self._holders.get((port.protocol, kept)) in (None, service.id) and (port.protocol, kept) not in wanted:
                port.published_port = kept
            else:
                port.published_port = self._free_port(port.protocol, wanted, name)
            wanted[(port.protocol, port.published_port)] = None
        self.release(service.id)
        for key in wanted:
            self._holders[key] = service.id
        return ports

    def _free_port(self, protocol: int, wanted: dict[tuple[int, int], None], name: str) -> int:
        span = INGRESS_PORT_END - INGRESS_PORT_START + 1
        for offset in range(span):
            port = INGRESS_PORT_START + (self._next - INGRESS_PORT_START + offset) % span
            if (protocol, port) not in self._holders and (protocol, port) not in wanted:
                # Hand out ports round-robin so a port just freed is not reused at once.
                self._next = port + 1 if port < INGRESS_PORT_END else INGRESS_PORT_START
                return port
        raise PortConflict(name, f"no free ingress port left in {INGRESS_PORT_START}-{INGRESS_PORT_END}")


def endpoint_allocated(service: objects_pb2.Service) -> bool:
    return service.endpoint.spec == service.spec.endpoint


class Allocator:
    """Reads services and tasks; writes service.endpoint and moves NEW tasks to PENDING."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.ports = PortAllocator()

    async def run(self) -> None:
        view, watch = self._store.view_and_watch(["service", "task"])
        with watch:
            for service in view.services():
                self.ports.restore(service)
            services = {service.id for service in view.services() if not endpoint_allocated(service)}
            tasks = {task.id for task in view.tasks() if task.status.state == objects_pb2.NEW}
            while True:
                if services:
                    services = await self._allocate_services(services)
                if tasks:
                    tasks = await self._move_to_pending(tasks)
                if services or tasks:
                    await asyncio.sleep(0)  # a write raced another: let the events in, then retry
                for event in [await watch.get(), *watch.drain()]:
                    if not isinstance(event, Change):
                        continue
                    if event.kind == "service":
                        if event.action == "remove":
                            self.ports.release(event.old.id)
                        elif not endpoint_allocated(event.new):
                            services.add(event.new.id)
                        else:
                            # An allocated service frees its NEW tasks.
                            tasks.update(
                                task.id
                                for task in self._store.view().tasks_by_service(event.new.id)
                                if task.status.state == objects_pb2.NEW
                            )
                    elif event.kind == "task" and event.new is not None and event.new.status.state == objects_pb2.NEW:
                        tasks.add(event.new.id)

    async def _allocate_services(self, service_ids: set[str]) -> set[str]:
        retry: set[str] = set()
        for service_id in service_ids:
            service = self._store.view().get_service(service_id)
            if service is None or endpoint_allocated(service):
                continue
            try:
                ports = self.ports.allocate(service)
            except PortConflict as error:
                log.warning("cannot allocate the endpoint: %s", error)
                continue
            updated = clone(service)
            updated.endpoint.spec.CopyFrom(service.spec.endpoint)
            del updated.endpoint.ports[:]
            updated.endpoint.ports.extend(ports)
            try:
                await self._store.update(lambda tx, updated=updated: tx.update("service", updated))
            except StoreError as error:
                log.debug("allocating service %s raced another write, retrying: %s", service_id, error)
                retry.add(service_id)
        return retry

    async def _move_to_pending(self, task_ids: set[str]) -> set[str]:
        view = self._store.view()
        ready: list[tuple[objects_pb2.Task, objects_pb2.Service]] = []
        allocated: dict[str, objects_pb2.Service | None] = {}  # per service: comparing endpoints costs
        for task_id in task_ids:
            task = view.get_task(task_id)
            if task is None or task.status.state != objects_pb2.NEW or task.desired_state > objects_pb2.RUNNING:
                continue
            if task.service_id not in allocated:
                service = view.get_service(task.service_id)
                allocated[task.service_id] = service if service is not None and endpoint_allocated(service) else None
            service = allocated[task.service_id]
            if service is None:
                continue  # the service's allocation brings the task back
            ready.append((task, service))
        if not ready:
            return set()
        now = time.time_ns()

        def write(batch: Batch) -> None:
            for task, service in ready:
                pending = clone(task)
                pending.endpoint.CopyFrom(service.endpoint)
                pending.status.state = objects_pb2.PENDING
                pending.status.timestamp = now
                pending.status.message = "pending task scheduling"
                batch.update("task", pending)

        try:
            await self._store.batch(write)
        except StoreError as error:
            log.debug("moving tasks to pending partly raced other writes, retrying: %s", error)
            view = self._store.view()
            return {
                task.id
                for task, _ in ready
                if (current := view.get_task(task.id)) is not None and current.status.state == objects_pb2.NEW
            }
        return set()
