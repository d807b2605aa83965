"""What the scheduler knows about one node, kept up to date incrementally from store events.

A task *uses* its node from the moment it is assigned until its worker reports it stopped (observed
state ASSIGNED..RUNNING), whatever its desired state: a task being shut down still holds its CPU,
memory and host ports until it is gone. The scheduler records its own assignments here before they are
committed, so that the next decision already sees them, and takes them back if the write fails.
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
    return TaskUsage(task.service_id, reservations.nano_cpus, reservations.memory_bytes, host_ports(task), generic)


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
                 "service_counts", "used_ports")

    def __init__(self, node: objects_pb2.Node) -> None:
        self.id = node.id
        self.tasks: dict[str, TaskUsage] = {}
        self.service_counts: dict[str, int] = {}
        self.used_ports: set[HostPort] = set()
        self.set_node(node)

    def set_node(self, node: objects_pb2.Node) -> None:
        self.node = node
        self.ready = node.status.state == NodeState.READY and node.spec.availability == NodeAvailability.ACTIVE
        resources = node.description.resources
        self.available_cpus = resources.nano_cpus - sum(usage.nano_cpus for usage in self.tasks.values())
        self.available_memory = resources.memory_bytes - sum(usage.memory_bytes for usage in self.tasks.values())
        self.available_generic = generic_counts(resources.generic)
        for usage in self.tasks.values():
            self._take_generic(usage.generic, -1)

    def _take_generic(self, generic: tuple[tuple[str, int], ...], sign: int) -> None:
        for kind, count in generic:
            self.available_generic[kind] = self.available_generic.get(kind, 0) + sign * count

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
        if usage.generic:
            self._take_generic(usage.generic, -1)
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
        if usage.generic:
            self._take_generic(usage.generic, 1)
        self.used_ports.difference_update(usage.host_ports)
        return True
