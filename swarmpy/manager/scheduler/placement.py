"""The scheduler's decisions, without I/O: which nodes may take a task, and which one gets it.

Filters, in swarmkit's order (a node is turned down by the first that fails):
  Ready        node status READY and availability ACTIVE
  Resources    reserved CPU, memory and generic resources (--generic-resource) fit in what the node has left
  Constraints  the placement constraints hold on the node
  Platform     the node's OS/architecture is one the service lists (if it lists any)
  HostPort     the task's host-mode published ports are free on the node
  MaxReplicas  fewer than placement.max_replicas tasks of the service on the node (0: no limit)

Spread: among the nodes that pass, the one with the fewest tasks of the service wins; ties go to the one
with the fewest tasks in all, then to the lower node ID, so the result is deterministic.

Identical tasks (one service, one spec version) are placed as a group: every node runs the filters once
for the whole group, and the nodes that pass sit in a heap keyed by (tasks of the service, all tasks,
node ID). Each task takes the heap's top; the three filters whose answer changes as tasks land
(Resources, HostPort, MaxReplicas; it only ever gets worse within a group) are re-checked for that node
only, and a node that no longer passes leaves the heap. So a group of T tasks over N nodes costs
O(N + T log N) rather than O(T * N).

When a task fits nowhere, the explanation counts the nodes each filter turned down, most first, as in
swarmkit: "no suitable node (scheduling constraints not satisfied on 3 nodes; insufficient resources on
1 node)".
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from swarmpy.api import objects_pb2
from swarmpy.manager.constraint import Constraint, ConstraintError, matches, parse_constraints

from .nodeinfo import NodeInfo, TaskUsage, task_usage

READY = "ready"
RESOURCES = "resources"
CONSTRAINTS = "constraints"
PLATFORM = "platform"
HOST_PORT = "host-port"
MAX_REPLICAS = "max-replicas"
FILTER_ORDER = (READY, RESOURCES, CONSTRAINTS, PLATFORM, HOST_PORT, MAX_REPLICAS)

_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64", "armhf": "arm", "armv7l": "arm", "i386": "386"}


def _nodes(count: int) -> str:
    return "1 node" if count == 1 else f"{count} nodes"


def _explain_one(filter_name: str, count: int) -> str:
    if filter_name == READY:
        return f"{_nodes(count)} not available for new tasks"
    if filter_name == RESOURCES:
        return f"insufficient resources on {_nodes(count)}"
    if filter_name == CONSTRAINTS:
        return f"scheduling constraints not satisfied on {_nodes(count)}"
    if filter_name == PLATFORM:
        return f"unsupported platform on {_nodes(count)}"
    if filter_name == HOST_PORT:
        return f"host-mode port already in use on {_nodes(count)}"
    return "max replicas per node limit exceed"


def explain(failures: Counter[str]) -> str:
    """The message a task that fits nowhere carries in status.err."""
    order = {name: index for index, name in enumerate(FILTER_ORDER)}
    parts = [
        _explain_one(name, count)
        for name, count in sorted(failures.items(), key=lambda item: (-item[1], order[item[0]]))
        if count
    ]
    return "no suitable node" + (f" ({'; '.join(parts)})" if parts else "")


def _normalise_arch(arch: str) -> str:
    arch = arch.casefold()
    return _ARCH_ALIASES.get(arch, arch)


@dataclass(slots=True)
class Requirements:
    """What a group of identical tasks asks of a node."""

    service_id: str
    usage: TaskUsage
    constraints: list[Constraint] | None  # None: the constraints do not parse, nothing matches
    platforms: list[tuple[str, str]]  # (os, arch), lower-cased; empty: any
    max_replicas: int

    @classmethod
    def of(cls, task: objects_pb2.Task) -> Requirements:
        placement = task.spec.placement
        try:
            constraints: list[Constraint] | None = parse_constraints(list(placement.constraints))
        except ConstraintError:
            constraints = None
        platforms = [(p.os.casefold(), _normalise_arch(p.architecture)) for p in placement.platforms]
        return cls(task.service_id, task_usage(task), constraints, platforms, placement.max_replicas)

    def static_failure(self, info: NodeInfo) -> str | None:
        """The first filter the node fails right now, in swarmkit's order, or None if it passes all."""
        if not info.ready:
            return READY
        failure = self.resource_failure(info)
        if failure is not None:
            return failure
        if self.constraints is None or (self.constraints and not matches(self.constraints, info.node)):
            return CONSTRAINTS
        if self.platforms and not self._platform_ok(info.node):
            return PLATFORM
        return self.landing_failure(info)

    def resource_failure(self, info: NodeInfo) -> str | None:
        usage = self.usage
        if (usage.nano_cpus and info.available_cpus < usage.nano_cpus) or (
            usage.memory_bytes and info.available_memory < usage.memory_bytes
        ):
            return RESOURCES
        if usage.generic and any(info.available_generic.get(kind, 0) < count for kind, count in usage.generic):
            return RESOURCES
        return None

    def landing_failure(self, info: NodeInfo) -> str | None:
        """The filters (after Resources) whose answer changes as tasks land on the node."""
        if self.usage.host_ports and not info.used_ports.isdisjoint(self.usage.host_ports):
            return HOST_PORT
        if self.max_replicas and info.service_counts.get(self.service_id, 0) >= self.max_replicas:
            return MAX_REPLICAS
        return None

    def _platform_ok(self, node: objects_pb2.Node) -> bool:
        node_os = node.description.platform.os.casefold()
        node_arch = _normalise_arch(node.description.platform.architecture)
        return any((not os or os == node_os) and (not arch or arch == node_arch) for os, arch in self.platforms)


@dataclass
class GroupPlacement:
    assigned: list[tuple[objects_pb2.Task, NodeInfo]] = field(default_factory=list)
    unplaced: list[objects_pb2.Task] = field(default_factory=list)
    explanation: str = ""


def place_group(tasks: list[objects_pb2.Task], nodes: Iterable[NodeInfo]) -> GroupPlacement:
    """Place identical tasks (same service and spec version), recording each assignment in its NodeInfo.
    With placement preferences the nodes are split into spread groups first (swarmpy.manager.scheduler.spread)."""
    result = GroupPlacement()
    if not tasks:
        return result
    requirements = Requirements.of(tasks[0])
    failures: Counter[str] = Counter()
    passing = []
    for info in nodes:
        failure = requirements.static_failure(info)
        if failure is None:
            passing.append(info)
        else:
            failures[failure] += 1
    filler = Filler(tasks, requirements, failures, result)
    preferences = [p.spread for p in tasks[0].spec.placement.preferences]
    if preferences:
        from .spread import place_spread  # the spread tree; most services have no preferences

        place_spread(filler, passing, preferences)
    else:
        filler.fill(filler.heap_of(passing), len(tasks))
    if filler.next_task < len(tasks):
        result.unplaced = tasks[filler.next_task:]
        result.explanation = explain(failures)
    return result


class Filler:
    """Hands a group's tasks out to heaps of nodes, in order, and records each assignment."""

    __slots__ = ("tasks", "requirements", "failures", "result", "next_task", "changing")

    def __init__(self, tasks: list[objects_pb2.Task], requirements: Requirements, failures: Counter[str],
                 result: GroupPlacement) -> None:
        self.tasks = tasks
        self.requirements = requirements
        self.failures = failures
        self.result = result
        self.next_task = 0
        usage = requirements.usage
        self.changing = bool(usage.nano_cpus or usage.memory_bytes or usage.generic or usage.host_ports
                             or requirements.max_replicas)

    def heap_of(self, nodes: Iterable[NodeInfo]) -> list[tuple[int, int, str, NodeInfo]]:
        service_id = self.requirements.service_id
        heap = [(info.service_counts.get(service_id, 0), len(info.tasks), info.id, info) for info in nodes]
        heapq.heapify(heap)
        return heap

    def fill(self, heap: list[tuple[int, int, str, NodeInfo]], count: int) -> int:
        """Place up to `count` of the remaining tasks on the heap's nodes; returns how many were placed."""
        requirements, usage, service_id = self.requirements, self.requirements.usage, self.requirements.service_id
        placed = 0
        while placed < count and self.next_task < len(self.tasks):
            while heap and self.changing:
                failure = requirements.resource_failure(heap[0][3]) or requirements.landing_failure(heap[0][3])
                if failure is None:
                    break
                heapq.heappop(heap)
                self.failures[failure] += 1
            if not heap:
                break
            task = self.tasks[self.next_task]
            _, _, node_id, info = heap[0]
            info.add(task.id, usage)
            heapq.heapreplace(heap, (info.service_counts[service_id], len(info.tasks), node_id, info))
            self.result.assigned.append((task, info))
            self.next_task += 1
            placed += 1
        return placed


def place_preassigned(task: objects_pb2.Task, info: NodeInfo | None) -> str | None:
    """Check a task whose node was chosen at creation (global services); records it on success.

    Returns None when it was placed, else the explanation.
    """
    if info is None:
        return explain(Counter({READY: 1}))
    requirements = Requirements.of(task)
    failure = requirements.static_failure(info)
    if failure is not None:
        return explain(Counter({failure: 1}))
    info.add(task.id, requirements.usage)
    return None
