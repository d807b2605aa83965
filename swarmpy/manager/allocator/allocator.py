"""The allocator: gives networks their subnets, services their endpoints, tasks their addresses, and lets
new tasks go to the scheduler.

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

Networks (networks.py holds the bookkeeping, ipam.py the arithmetic). Each pass allocates, in order:
networks not yet allocated (subnet, gateway, VNI); services whose endpoint or VIPs do not match their
spec (a VIP per attached network in vip mode); then tasks, which get one address per network of their
spec in the same write that moves them to PENDING. A task whose network has no address left is still
moved to PENDING, but with no attachments and an error naming the network; the scheduler leaves such a
task alone, and the allocator tries it again whenever an address is freed (a task terminating or being
deleted, a service's VIP dropped). Whenever a write of the allocator is refused, its bookkeeping is
rebuilt from the store, so what it holds is always what the store says.
"""

from __future__ import annotations

import asyncio
import logging
import time

from swarmpy.api import objects_pb2
from swarmpy.manager.store import Change, MemoryStore, StoreError
from swarmpy.manager.store.memory import Batch, ReadView, clone

from .ipam import IPAMError
from .networks import (
    AddressExhausted,
    ingress_network,
    node_ingress_address,
    NetworkAllocator,
    network_allocated,
    task_holds_addresses,
    task_networks_allocated,
    vips_allocated,
)

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
    return service.endpoint.spec == service.spec.endpoint and vips_allocated(service)


def wants_allocation(task: objects_pb2.Task) -> bool:
    """NEW and wanted, or PENDING without the addresses its networks need (an exhausted network)."""
    if task.desired_state > objects_pb2.RUNNING:
        return False
    if task.status.state == objects_pb2.NEW:
        return True
    return task.status.state == objects_pb2.PENDING and not task_networks_allocated(task)


class Allocator:
    """Reads networks, services and tasks; writes their allocations and moves NEW tasks to PENDING."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.ports = PortAllocator()
        self.networks = NetworkAllocator()
        self._nodes_starved: set[str] = set()  # nodes the ingress network had no address left for

    def _restore(self, view: ReadView) -> None:
        """Forget everything held in memory and take what the store says (start, or a refused write)."""
        self.ports = PortAllocator()
        for service in view.services():
            self.ports.restore(service)
        self.networks.restore(view)

    async def run(self) -> None:
        view, watch = self._store.view_and_watch(["service", "task", "network", "cluster", "node"])
        with watch:
            self._restore(view)
            nodes = {node.id for node in view.nodes()}
            networks = {network.id for network in view.networks() if not network_allocated(network)}
            services = {service.id for service in view.services() if not endpoint_allocated(service)}
            tasks = {task.id for task in view.tasks() if wants_allocation(task)}
            while True:
                if networks:
                    networks, allocated_some = await self._allocate_networks(networks)
                    if allocated_some:  # whatever waited for a network may go on now
                        current = self._store.view()
                        services.update(s.id for s in current.services() if not endpoint_allocated(s))
                        tasks.update(t.id for t in current.tasks() if wants_allocation(t))
                if nodes:
                    nodes = await self._allocate_nodes(nodes)
                if services:
                    services = await self._allocate_services(services)
                if tasks:
                    tasks = await self._move_to_pending(tasks)
                if networks or services or tasks or nodes:
                    await asyncio.sleep(0)  # a write raced another: let the events in, then retry
                freed = False
                for event in [await watch.get(), *watch.drain()]:
                    if not isinstance(event, Change):
                        continue
                    if event.kind == "cluster":
                        # The address pools are set when the cluster is created, which a leader's loops
                        # may start before: take them from the store.
                        self._restore(self._store.view())
                    elif event.kind == "network":
                        if event.action == "remove":
                            self.networks.release_network(event.old.id)
                        elif not network_allocated(event.new):
                            networks.add(event.new.id)
                        elif event.new.spec.ingress:  # a new ingress network: every node needs an address
                            nodes.update(node.id for node in self._store.view().nodes())
                    elif event.kind == "node":
                        if event.action == "remove":
                            freed |= self.networks.holds(event.old.id)
                            self.networks.release_holder(event.old.id)
                        else:
                            nodes.add(event.new.id)
                    elif event.kind == "service":
                        if event.action == "remove":
                            self.ports.release(event.old.id)
                            freed |= self.networks.holds(event.old.id)
                            self.networks.release_holder(event.old.id)
                        elif not endpoint_allocated(event.new):
                            services.add(event.new.id)
                        else:
                            # An allocated service frees its NEW tasks.
                            tasks.update(
                                task.id
                                for task in self._store.view().tasks_by_service(event.new.id)
                                if wants_allocation(task)
                            )
                    elif event.kind == "task":
                        task = event.new
                        if (task is None or not task_holds_addresses(task)) and self.networks.holds(event.old.id if task is None else task.id):
                            self.networks.release_holder(event.old.id if task is None else task.id)
                            freed = True
                        if task is not None and wants_allocation(task):
                            tasks.add(task.id)
                if freed and self._nodes_starved:
                    nodes.update(self._nodes_starved)
                    self._nodes_starved.clear()
                if freed:  # addresses came free: tasks starved of them may have one now
                    tasks.update(t.id for t in self._store.view().tasks() if wants_allocation(t) and t.status.state == objects_pb2.PENDING)

    async def _allocate_networks(self, network_ids: set[str]) -> tuple[set[str], bool]:
        retry: set[str] = set()
        allocated_some = False
        for network_id in network_ids:
            network = self._store.view().get_network(network_id)
            if network is None or network_allocated(network):
                continue
            try:
                allocated = self.networks.allocate_network(network)
            except (IPAMError, ValueError) as error:
                log.error("cannot allocate network %s (%s): %s", network.spec.annotations.name, network.id, error)
                continue
            try:
                await self._store.update(lambda tx, allocated=allocated: tx.update("network", allocated))
            except StoreError as error:
                log.debug("allocating network %s raced another write, retrying: %s", network_id, error)
                self._restore(self._store.view())
                retry.add(network_id)
                continue
            allocated_some = True
            log.info(
                "network %s allocated: subnet %s, VXLAN ID %s",
                network.spec.annotations.name, allocated.ipam.configs[0].subnet, allocated.driver_state.options,
            )
        return retry, allocated_some

    async def _allocate_nodes(self, node_ids: set[str]) -> set[str]:
        """Give each node its address on the ingress network (and drop one on an ingress network that
        is gone). Returns the nodes whose write raced another and must be tried again."""
        retry: set[str] = set()
        view = self._store.view()
        ingress = ingress_network(view)
        ingress_id = ingress.id if ingress is not None and network_allocated(ingress) else ""
        for node_id in node_ids:
            node = view.get_node(node_id)
            if node is None:
                continue
            current = [a for a in node.attachments if a.network.id == ingress_id]
            if (not ingress_id or node_ingress_address(node, ingress_id)) and len(current) == len(node.attachments):
                continue
            attachment = None
            if ingress_id and ingress is not None:
                if node_id in self._nodes_starved:
                    continue  # tried again when an address comes free, not on every status change of the node
                try:
                    attachment = self.networks.allocate_node(node, ingress)
                except IPAMError as error:
                    log.warning("node %s gets no ingress address: %s", node_id, error)
                    self._nodes_starved.add(node_id)
                    continue

            def write(tx, node_id=node_id, attachment=attachment):
                fresh = tx.get("node", node_id)
                if fresh is None:
                    return
                updated = clone(fresh)
                del updated.attachments[:]
                if attachment is not None:
                    updated.attachments.append(attachment)
                tx.update("node", updated)

            try:
                await self._store.update(write)
            except StoreError as error:
                log.debug("allocating node %s's ingress address raced another write, retrying: %s", node_id, error)
                self._restore(self._store.view())
                retry.add(node_id)
        return retry

    async def _allocate_services(self, service_ids: set[str]) -> set[str]:
        retry: set[str] = set()
        for service_id in service_ids:
            view = self._store.view()
            service = view.get_service(service_id)
            if service is None or endpoint_allocated(service):
                continue
            try:
                vips = self.networks.allocate_vips(service, view)
            except AddressExhausted as error:
                log.warning("Failed allocation for service %s: %s", service_id, error)
                continue
            except IPAMError as error:
                log.debug("service %s waits for its networks: %s", service_id, error)
                continue
            try:
                ports = self.ports.allocate(service)
            except PortConflict as error:
                log.warning("cannot allocate the endpoint: %s", error)
                self._restore(view)
                continue
            updated = clone(service)
            updated.endpoint.spec.CopyFrom(service.spec.endpoint)
            del updated.endpoint.ports[:]
            updated.endpoint.ports.extend(ports)
            del updated.endpoint.virtual_ips[:]
            updated.endpoint.virtual_ips.extend(vips)
            try:
                await self._store.update(lambda tx, updated=updated: tx.update("service", updated))
            except StoreError as error:
                log.debug("allocating service %s raced another write, retrying: %s", service_id, error)
                self._restore(self._store.view())
                retry.add(service_id)
        return retry

    async def _move_to_pending(self, task_ids: set[str]) -> set[str]:
        view = self._store.view()
        ready: list[tuple[objects_pb2.Task, objects_pb2.Service, list[objects_pb2.NetworkAttachment] | None, AddressExhausted | None]] = []
        allocated: dict[str, objects_pb2.Service | None] = {}  # per service: comparing endpoints costs
        for task_id in task_ids:
            task = view.get_task(task_id)
            if task is None or not wants_allocation(task):
                continue
            if task.service_id not in allocated:
                service = view.get_service(task.service_id)
                allocated[task.service_id] = service if service is not None and endpoint_allocated(service) else None
            service = allocated[task.service_id]
            if service is None:
                continue  # the service's allocation brings the task back
            try:
                attachments: list[objects_pb2.NetworkAttachment] | None = self.networks.allocate_task(task, view)
                problem: AddressExhausted | None = None
            except AddressExhausted as error:
                log.warning("task allocation failure: %s", error)
                if task.status.state == objects_pb2.PENDING and task.status.err == str(error):
                    continue  # already says so; an address coming free brings it back
                attachments, problem = None, error
            except IPAMError as error:
                log.debug("task %s waits for its networks: %s", task_id, error)
                continue
            ready.append((task, service, attachments, problem))
        if not ready:
            return set()
        now = time.time_ns()

        def write(batch: Batch) -> None:
            for task, service, attachments, problem in ready:
                pending = clone(task)
                pending.endpoint.CopyFrom(service.endpoint)
                pending.status.state = objects_pb2.PENDING
                pending.status.timestamp = now
                del pending.networks[:]
                if problem is not None:
                    pending.status.message = f"waiting for a free address on network {problem.network_name}"
                    pending.status.err = str(problem)
                else:
                    pending.networks.extend(attachments or ())
                    pending.status.message = "pending task scheduling"
                    pending.status.err = ""
                batch.update("task", pending)

        try:
            await self._store.batch(write)
        except StoreError as error:
            log.debug("moving tasks to pending partly raced other writes, retrying: %s", error)
            view = self._store.view()
            self._restore(view)
            return {
                task.id
                for task, _, _, _ in ready
                if (current := view.get_task(task.id)) is not None and wants_allocation(current)
            }
        return set()
