"""What the scheduler knows about one node, kept up to date incrementally from store events.

A task *uses* its node from the moment it is assigned until its worker reports it stopped (observed
state ASSIGNED..RUNNING), whatever its desired state: a task being shut down still holds its CPU,
memory and host ports until it is gone. The scheduler records its own assignments here before they are
committed, so that the next decision already sees them, and takes them back if the write fails.

Generic resources (--generic-resource kind=N) are claimed unit by unit, as swarmkit's genericresource
package does: a node offers named units (`gpu=UUID1`, one each) and counts (`ssd=4`); a task asking for
N of a kind gets N free named units of it, in the order the node lists them, and what is still missing
from the kind's count. The claim is written into the task (assigned_generic_resources), so a task read
back from the store (a new leader loading, or the scheduler's own write coming back) holds exactly the
units it was given rather than fresh ones; a named unit is free while no task on the node holds it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from swarmpy.api import objects_pb2

NodeState = objects_pb2.NodeStatus.State
NodeAvailability = objects_pb2.NodeSpec.Availability
HOST_MODE = objects_pb2.PortConfig.PublishMode.HOST

HostPort = tuple[int, int]  # (protocol, published port)


@dataclass(frozen=True, slots=True)
class TaskUsage:
    """What one task takes from its node."""

    service_id: str
    nano_cpus: int
    memory_bytes: int
    host_ports: tuple[HostPort, ...]
    generic: tuple[tuple[str, int], ...] = ()  # (kind, count) of the user-defined resources reserved
    assigned: GenericClaim | None = None  # the units the store says the task holds (None: claim afresh)


@dataclass(frozen=True, slots=True)
class GenericClaim:
    """The generic-resource units one task holds on its node."""

    named: tuple[tuple[str, str], ...] = ()  # (kind, unit), e.g. ("gpu", "GPU-9f2c")
    discrete: tuple[tuple[str, int], ...] = ()  # (kind, count)

    def __bool__(self) -> bool:
        return bool(self.named or self.discrete)

    @classmethod
    def of(cls, resources: Iterable[objects_pb2.GenericResource]) -> GenericClaim:
        named, discrete = [], []
        for resource in resources:
            if resource.WhichOneof("value") == "named":
                named.append((resource.kind, resource.named))
            else:
                discrete.append((resource.kind, resource.discrete))
        return cls(tuple(named), tuple(discrete))

    def to_proto(self) -> list[objects_pb2.GenericResource]:
        return [objects_pb2.GenericResource(kind=kind, named=unit) for kind, unit in self.named] + [
            objects_pb2.GenericResource(kind=kind, discrete=count) for kind, count in self.discrete]


def generic_counts(resources: Iterable[objects_pb2.GenericResource]) -> dict[str, int]:
    """Units per kind: a discrete entry counts its value, a named one (a GPU's UUID) one unit."""
    counts: dict[str, int] = {}
    for resource in resources:
        units = resource.discrete if resource.WhichOneof("value") == "discrete" else 1
        counts[resource.kind] = counts.get(resource.kind, 0) + units
    return counts


def task_usage(task: objects_pb2.Task) -> TaskUsage:
    reservations = task.spec.resources.reservations
    generic = tuple(sorted(generic_counts(reservations.generic).items())) if reservations.generic else ()
    assigned = GenericClaim.of(task.assigned_generic_resources) if task.assigned_generic_resources else None
    return TaskUsage(task.service_id, reservations.nano_cpus, reservations.memory_bytes, host_ports(task), generic,
                     assigned)


def host_ports(task: objects_pb2.Task) -> tuple[HostPort, ...]:
    """The host-mode ports the task publishes on its node (0: any free port, which never conflicts)."""
    return tuple(
        (port.protocol, port.published_port)
        for port in task.endpoint.ports
        if port.publish_mode == HOST_MODE and port.published_port
    )


def uses_node(task: objects_pb2.Task) -> bool:
    return bool(task.node_id) and objects_pb2.ASSIGNED <= task.status.state <= objects_pb2.RUNNING


class NodeInfo:
    __slots__ = ("id", "node", "ready", "available_cpus", "available_memory", "available_generic", "tasks",
                 "service_counts", "used_ports", "claims", "_offered_named", "_offered_discrete", "_held_named")

    def __init__(self, node: objects_pb2.Node) -> None:
        self.id = node.id
        self.tasks: dict[str, TaskUsage] = {}
        self.service_counts: dict[str, int] = {}
        self.used_ports: set[HostPort] = set()
        self.claims: dict[str, GenericClaim] = {}  # task ID -> the generic units it holds (if any)
        self._held_named: dict[tuple[str, str], int] = {}  # (kind, unit) -> tasks holding it (1, unless the store disagrees)
        self.set_node(node)

    def set_node(self, node: objects_pb2.Node) -> None:
        self.node = node
        self.ready = node.status.state == NodeState.READY and node.spec.availability == NodeAvailability.ACTIVE
        resources = node.description.resources
        self.available_cpus = resources.nano_cpus - sum(usage.nano_cpus for usage in self.tasks.values())
        self.available_memory = resources.memory_bytes - sum(usage.memory_bytes for usage in self.tasks.values())
        offered = GenericClaim.of(resources.generic)
        self._offered_named = offered.named
        self._offered_discrete: dict[str, int] = {}
        for kind, count in offered.discrete:
            self._offered_discrete[kind] = self._offered_discrete.get(kind, 0) + count
        self._recount_generic()

    def _recount_generic(self) -> None:
        """available_generic from what the node offers and what its tasks hold (units the node no longer
        offers stay with their tasks but count for nothing)."""
        available = dict(self._offered_discrete)
        for claim in self.claims.values():
            for kind, count in claim.discrete:
                if kind in available:
                    available[kind] -= count
        for kind, unit in self._offered_named:
            if not self._held_named.get((kind, unit)):
                available[kind] = available.get(kind, 0) + 1
            else:
                available.setdefault(kind, 0)
        self.available_generic = available

    def free_named_units(self, kind: str) -> list[str]:
        return [unit for k, unit in self._offered_named if k == kind and not self._held_named.get((k, unit))]

    def _claim_generic(self, task_id: str, usage: TaskUsage) -> None:
        if usage.assigned is not None:
            claim = usage.assigned
        else:  # a fresh decision: named units first (node order), the rest of the count from the discrete pool
            named: list[tuple[str, str]] = []
            discrete: list[tuple[str, int]] = []
            for kind, count in usage.generic:
                units = self.free_named_units(kind)[:count]
                named.extend((kind, unit) for unit in units)
                if count > len(units):
                    discrete.append((kind, count - len(units)))
            claim = GenericClaim(tuple(named), tuple(discrete))
        if not claim:
            return
        self.claims[task_id] = claim
        for key in claim.named:
            self._held_named[key] = self._held_named.get(key, 0) + 1
        self._recount_generic()

    def _release_generic(self, task_id: str) -> None:
        claim = self.claims.pop(task_id, None)
        if claim is None:
            return
        for key in claim.named:
            remaining = self._held_named.get(key, 0) - 1
            if remaining > 0:
                self._held_named[key] = remaining
            else:
                self._held_named.pop(key, None)
        self._recount_generic()

    @property
    def total_tasks(self) -> int:
        return len(self.tasks)

    def add(self, task_id: str, usage: TaskUsage) -> None:
        if task_id in self.tasks:
            self.remove(task_id)
        self.tasks[task_id] = usage
        self.service_counts[usage.service_id] = self.service_counts.get(usage.service_id, 0) + 1
        self.available_cpus -= usage.nano_cpus
        self.available_memory -= usage.memory_bytes
        if usage.generic or usage.assigned:
            self._claim_generic(task_id, usage)
        self.used_ports.update(usage.host_ports)

    def remove(self, task_id: str) -> bool:
        usage = self.tasks.pop(task_id, None)
        if usage is None:
            return False
        remaining = self.service_counts[usage.service_id] - 1
        if remaining:
            self.service_counts[usage.service_id] = remaining
        else:
            del self.service_counts[usage.service_id]
        self.available_cpus += usage.nano_cpus
        self.available_memory += usage.memory_bytes
        self._release_generic(task_id)
        self.used_ports.difference_update(usage.host_ports)
        return True
