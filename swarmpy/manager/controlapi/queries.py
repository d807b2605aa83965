"""The read side of the control API as pure functions: list filters and service status counts.

They take objects already read from a store view and return what the RPC answers, so they can be
tested without a store, a server or an event loop. Every filter list is "any of" within a field and
"all of" across fields, as swarmkit's List* filters are; an empty list does not filter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from swarmpy.manager.orchestrator.common import is_task_dirty
from swarmpy.api import control_pb2, objects_pb2
from swarmpy.manager import constraint
from swarmpy.manager.constraint import Constraint


def matches_prefix(value: str, prefixes: Sequence[str]) -> bool:
    return not prefixes or any(value.startswith(prefix) for prefix in prefixes)


def matches_labels(labels: dict[str, str] | object, wanted: dict[str, str] | object) -> bool:
    """Every wanted label is present; an empty wanted value asks only for the key (docker's label=key)."""
    for key, value in wanted.items():  # type: ignore[attr-defined]
        if key not in labels:  # type: ignore[operator]
            return False
        if value and labels[key] != value:  # type: ignore[index]
            return False
    return True


def filter_nodes(
    nodes: Iterable[objects_pb2.Node], filters: control_pb2.ListNodesRequest.Filters
) -> list[objects_pb2.Node]:
    roles = set(filters.roles)
    return sorted(
        (
            node
            for node in nodes
            if matches_prefix(node.id, filters.ids)
            and matches_prefix(node.description.hostname, filters.names)
            and (not roles or node.role in roles)
        ),
        key=lambda node: (node.description.hostname, node.id),
    )


def filter_services(
    services: Iterable[objects_pb2.Service], filters: control_pb2.ListServicesRequest.Filters
) -> list[objects_pb2.Service]:
    return sorted(
        (
            service
            for service in services
            if matches_prefix(service.id, filters.ids)
            and matches_prefix(service.spec.annotations.name, filters.names)
            and matches_labels(service.spec.annotations.labels, filters.labels)
        ),
        key=lambda service: (service.spec.annotations.name, service.id),
    )


def is_up_to_date(task: objects_pb2.Task, services_by_id: dict[str, objects_pb2.Service]) -> bool:
    """The task is what its service's current spec asks for (swarmkit's `!IsTaskDirty`): made from the
    current spec, or from an older one whose task spec and endpoint are the same (a scale, a new label:
    the tasks it kept are current). A task of a removed service never is."""
    service = services_by_id.get(task.service_id)
    if service is None:
        return False
    return task.spec_version.index == service.spec_version.index or not is_task_dirty(service, task)


def filter_tasks(
    tasks: Iterable[objects_pb2.Task],
    filters: control_pb2.ListTasksRequest.Filters,
    services_by_id: dict[str, objects_pb2.Service],
) -> list[objects_pb2.Task]:
    service_ids = set(filters.service_ids)
    node_ids = set(filters.node_ids)
    desired_states = set(filters.desired_states)
    return sorted(
        (
            task
            for task in tasks
            if matches_prefix(task.id, filters.ids)
            and (not service_ids or task.service_id in service_ids)
            and (not node_ids or task.node_id in node_ids)
            and (not desired_states or task.desired_state in desired_states)
            and (not filters.up_to_date or is_up_to_date(task, services_by_id))
        ),
        key=lambda task: (task.service_id, task.slot, task.node_id, -task.meta.created_at, task.id),
    )


def is_eligible_for_global(node: objects_pb2.Node, constraints: list[Constraint]) -> bool:
    """A node a global service should run a task on: up, accepting work, and within its constraints."""
    return (
        node.status.state != objects_pb2.NodeStatus.DOWN
        and node.spec.availability == objects_pb2.NodeSpec.ACTIVE
        and constraint.matches(constraints, node)
    )


def service_status(
    service: objects_pb2.Service, tasks: Iterable[objects_pb2.Task], nodes: Iterable[objects_pb2.Node]
) -> control_pb2.ServiceStatus:
    """REPLICAS as `service ls` shows it: running tasks out of desired ones."""
    running = sum(
        1
        for task in tasks
        if task.status.state == objects_pb2.RUNNING and task.desired_state == objects_pb2.RUNNING
    )
    mode = service.spec.WhichOneof("mode")
    if mode in ("replicated_job", "global_job"):
        return _job_status(service, tasks, nodes)
    if mode == "global":
        try:
            constraints = constraint.parse_constraints(list(service.spec.task.placement.constraints))
        except constraint.ConstraintError:
            # Stored before a stricter parser: the orchestrator cannot place it either.
            desired = 0
        else:
            desired = sum(1 for node in nodes if is_eligible_for_global(node, constraints))
    else:
        desired = service.spec.replicated.replicas
    return control_pb2.ServiceStatus(service_id=service.id, running_tasks=running, desired_tasks=desired)


def _job_status(service: objects_pb2.Service, tasks, nodes) -> control_pb2.ServiceStatus:
    """A job's running and desired tasks of its current run, and how many completed."""
    from swarmpy.manager.orchestrator.jobs import job_counts

    tasks = list(tasks)
    eligible = 0
    if service.spec.WhichOneof("mode") == "global_job":
        try:
            constraints = constraint.parse_constraints(list(service.spec.task.placement.constraints))
        except constraint.ConstraintError:
            constraints = None
        if constraints is not None:
            eligible = sum(1 for node in nodes if is_eligible_for_global(node, constraints))
    running, desired, completed, _ = job_counts(service, tasks, eligible)
    return control_pb2.ServiceStatus(service_id=service.id, running_tasks=running, desired_tasks=desired,
                                     completed_tasks=completed)
