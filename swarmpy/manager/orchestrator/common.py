"""What the orchestrators share: making tasks, grouping them into slots, and the task predicates.

A *slot* is the place one replica lives in: `(service_id, slot number)` for a replicated service and
`(service_id, node_id)` for a global one (whose tasks all have slot 0). A slot accumulates history: each
restart, replacement or update adds a task and retires the previous one by raising its desired state
to SHUTDOWN. The task reaper trims that history.

A task is *runnable* while managers want it to run (desired state RUNNING or below): that is the slot's
current task. It is *finished* once the worker reports it stopped (observed state beyond RUNNING).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from swarmpy.api import objects_pb2
from swarmpy.api.objects_pb2 import (  # noqa: F401 - re-exported for the orchestrators
    ASSIGNED,
    COMPLETE,
    FAILED,
    NEW,
    ORPHANED,
    PENDING,
    READY,
    REJECTED,
    REMOVE,
    RUNNING,
    SHUTDOWN,
)
from swarmpy.identity import new_id
from swarmpy.manager.constraint import ConstraintError, parse_constraints
from swarmpy.manager.store import Change, Commit, Watch


NodeAvailability = objects_pb2.NodeSpec.Availability
NodeState = objects_pb2.NodeStatus.State

SlotKey = tuple[str, int | str]  # (service_id, slot number) or (service_id, node_id)


def is_replicated(service: objects_pb2.Service) -> bool:
    return service.spec.WhichOneof("mode") == "replicated"


def is_global(service: objects_pb2.Service) -> bool:
    return service.spec.WhichOneof("mode") == "global"


def new_task(
    cluster: objects_pb2.Cluster | None,
    service: objects_pb2.Service,
    slot: int,
    node_id: str = "",
    desired_state: int = RUNNING,
) -> objects_pb2.Task:
    """A fresh task of `service` for a slot (replicated) or a node (global: slot 0, node_id set).

    `cluster` is taken for cluster-wide task defaults; none apply yet.
    """
    del cluster
    name = service.spec.annotations.name
    task = objects_pb2.Task(
        id=new_id(),
        service_id=service.id,
        slot=slot,
        node_id=node_id,
        desired_state=desired_state,
    )
    task.spec.CopyFrom(service.spec.task)
    task.spec_version.CopyFrom(service.spec_version)
    task.annotations.name = f"{name}.{node_id}" if node_id and slot == 0 else f"{name}.{slot}"
    task.service_annotations.CopyFrom(service.spec.annotations)
    task.status.state = NEW
    task.status.timestamp = time.time_ns()
    task.status.message = "created"
    return task


def is_task_dirty(service: objects_pb2.Service, task: objects_pb2.Task) -> bool:
    """True when the task was made from a different task spec, or given a different endpoint spec, than
    the service's current ones.

    A service spec change that leaves both alone (a scale, a new label) must not restart every task, so
    the spec_version alone does not make a task dirty; nor does an endpoint change the task's container
    does not see (see endpoint_needs_new_task). A task not yet allocated has no endpoint: it gets
    the current one when the allocator moves it to PENDING.
    """
    if task.spec != service.spec.task:
        return True
    if not task.HasField("endpoint"):
        return False
    return endpoint_needs_new_task(task, service.spec.endpoint)


def _host_ports(endpoint: objects_pb2.EndpointSpec) -> list[bytes]:
    return sorted(port.SerializeToString() for port in endpoint.ports if port.publish_mode == objects_pb2.PortConfig.HOST)


def endpoint_needs_new_task(task: objects_pb2.Task, wanted: objects_pb2.EndpointSpec) -> bool:
    """Whether an endpoint change reaches into the task's container. Ingress ports live in every node's
    mesh, not in the container: adding or removing one leaves a task alone (issue 12: publish-add/rm
    without restarts), unless the task still lacks the ingress address its service now needs. Host-mode
    ports are the container's own bindings, and the resolution mode decides its VIPs: those restart it."""
    have = task.endpoint.spec
    if have.mode != wanted.mode or _host_ports(have) != _host_ports(wanted):
        return True
    wants_ingress = wanted.mode != objects_pb2.EndpointSpec.DNSRR and any(
        port.publish_mode == objects_pb2.PortConfig.INGRESS for port in wanted.ports
    )
    return wants_ingress and not any(attachment.network.spec.ingress for attachment in task.networks)


def is_runnable(task: objects_pb2.Task) -> bool:
    """The managers still want this task to run: it is its slot's current task."""
    return task.desired_state <= RUNNING


def is_finished(task: objects_pb2.Task) -> bool:
    """The worker reported the task stopped (complete, shut down, failed, rejected or orphaned)."""
    return task.status.state > RUNNING


def slot_key(task: objects_pb2.Task) -> SlotKey:
    return (task.service_id, task.slot if task.slot else task.node_id)


def group_by_slot(tasks: Iterable[objects_pb2.Task]) -> dict[int | str, list[objects_pb2.Task]]:
    """A service's tasks by slot number (replicated) or node ID (global)."""
    slots: dict[int | str, list[objects_pb2.Task]] = defaultdict(list)
    for task in tasks:
        slots[task.slot if task.slot else task.node_id].append(task)
    return dict(slots)


def runnable_by_slot(tasks: Iterable[objects_pb2.Task]) -> dict[int | str, list[objects_pb2.Task]]:
    """Only the slots that have a current task, with only their current tasks."""
    return group_by_slot(task for task in tasks if is_runnable(task))


def node_gone_or_down(node: objects_pb2.Node | None) -> bool:
    """The node cannot keep running its tasks: deleted, reported DOWN, or drained by the operator."""
    return (
        node is None
        or node.status.state == NodeState.DOWN
        or node.spec.availability == NodeAvailability.DRAIN
    )


def stranded_tasks(tasks: Iterable[objects_pb2.Task], nodes: Mapping[str, objects_pb2.Node]) -> list[objects_pb2.Task]:
    """The tasks assigned to a node that is gone, down or drained (`nodes` by ID): they will not run
    there, so their slot is to be refilled elsewhere."""
    return [task for task in tasks if task.node_id and node_gone_or_down(nodes.get(task.node_id))]


def service_constraints(service: objects_pb2.Service, log: logging.Logger) -> list | None:
    """The service's placement constraints parsed; None (place nothing) for one that does not parse:
    the control API validates them, so a service that slipped through runs nowhere."""
    try:
        return parse_constraints(list(service.spec.task.placement.constraints))
    except ConstraintError as error:
        log.warning("service %s has an invalid constraint, placing nothing: %s", service.id, error)
        return None


def node_takes_new_tasks(node: objects_pb2.Node) -> bool:
    return node.status.state == NodeState.READY and node.spec.availability == NodeAvailability.ACTIVE


def retire(task: objects_pb2.Task, desired_state: int = SHUTDOWN) -> objects_pb2.Task:
    """A copy of the task with its desired state raised (never lowered)."""
    copy = objects_pb2.Task()
    copy.CopyFrom(task)
    copy.desired_state = max(copy.desired_state, desired_state)
    return copy


async def write_plan(store: Any, service: objects_pb2.Service, retiring: Iterable[objects_pb2.Task],
                     create_slots: Iterable[int] = (), create_on: Iterable[str] = ()) -> None:
    """One batch: retire tasks (desired SHUTDOWN), create tasks in slots (replicated) and on nodes
    (global); the plans of all three orchestrators are written this way."""
    def write(batch: Any) -> None:
        cluster = batch.get_cluster()
        for task in retiring:
            batch.update("task", retire(task))
        for slot in create_slots:
            batch.create("task", new_task(cluster, service, slot))
        for node_id in create_on:
            batch.create("task", new_task(cluster, service, 0, node_id))

    await store.batch(write)


async def mark_removed(store: Any, tasks: list[objects_pb2.Task]) -> None:
    """Desired REMOVE for tasks whose service is gone, in one batch."""
    if not tasks:
        return

    def write(batch: Any) -> None:
        for task in tasks:
            batch.update("task", retire(task, REMOVE))

    await store.batch(write)


async def next_events(watch: Watch) -> list[Change | Commit]:
    """Wait for at least one event, then take whatever else is already queued, so a loop works per batch."""
    first = await watch.get()
    return [first, *watch.drain()]
