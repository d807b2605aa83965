"""The global orchestrator: one task of each global service on every eligible node.

Theory of operation
-------------------
A global service's slots are nodes. `plan_global` decides, purely, from the service, its tasks and the
nodes:
- a node that is READY, ACTIVE and satisfies the placement constraints, and has no runnable task of the
  service, gets a new task with its node_id set at creation (the scheduler then only checks the node's
  resources and ports, and assigns it);
- a node that is gone, DOWN or drained, or no longer satisfies the constraints, has its runnable tasks
  retired (desired SHUTDOWN);
- a PAUSED node keeps its task but gets no new one.
A task that finished while wanted is left to the restart supervisor, which restarts it on the same node.
Updates of the task spec go through the same rolling updater as replicated services, slot = node. A
deleted service's tasks get desired REMOVE.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from swarmpy.api import objects_pb2
from swarmpy.manager.constraint import matches
from swarmpy.manager.store import Change, ReadView

from .common import (
    is_global,
    node_gone_or_down,
    node_takes_new_tasks,
    runnable_by_slot,
    service_constraints,
    write_plan,
)
from .loop import ServiceReconcileLoop
from .update import UpdateRunner

log = logging.getLogger(__name__)


@dataclass
class GlobalPlan:
    retire: list[objects_pb2.Task] = field(default_factory=list)
    create_on: list[str] = field(default_factory=list)  # node IDs

    def __bool__(self) -> bool:
        return bool(self.retire or self.create_on)


def plan_global(
    service: objects_pb2.Service, tasks: Iterable[objects_pb2.Task], nodes: Iterable[objects_pb2.Node]
) -> GlobalPlan:
    plan = GlobalPlan()
    constraints = service_constraints(service, log)
    by_node = runnable_by_slot(task for task in tasks if not task.slot)
    seen: set[str] = set()
    for node in sorted(nodes, key=lambda node: node.id):
        seen.add(node.id)
        current = by_node.get(node.id, [])
        eligible = constraints is not None and matches(constraints, node)
        if node_gone_or_down(node) or not eligible:
            plan.retire.extend(current)
        elif not current and node_takes_new_tasks(node):
            plan.create_on.append(node.id)
    for node_id, current in by_node.items():
        if node_id not in seen:
            plan.retire.extend(current)
    return plan


class GlobalOrchestrator(ServiceReconcileLoop):
    """Reconciles global services; reads services, tasks, nodes; writes tasks (and update_status)."""

    def _owns(self, service: objects_pb2.Service) -> bool:
        return is_global(service)

    def _note(self, event: Change, dirty: set[str], updates: UpdateRunner) -> None:
        view = self._store.view()
        if event.kind == "service":
            self._note_service(event, dirty, updates)
        elif event.kind == "task":
            if event.new is None or event.old is None or event.new.desired_state != event.old.desired_state:
                service = view.get_service(event.obj.service_id)
                if service is not None and is_global(service):
                    dirty.add(service.id)
        elif event.kind == "node":
            if event.action == "update" and not _eligibility_may_have_changed(event.old, event.new):
                return
            dirty.update(service.id for service in view.services() if is_global(service))

    def _nodes(self, view: ReadView) -> Any:
        return view.nodes()

    def _plan(self, service: objects_pb2.Service, tasks: list[objects_pb2.Task], nodes: Any) -> Any:
        return plan_global(service, tasks, nodes)

    async def _apply(self, service: objects_pb2.Service, plan: GlobalPlan) -> None:
        log.debug(
            "global service %s: creating %d tasks, retiring %d",
            service.spec.annotations.name,
            len(plan.create_on),
            len(plan.retire),
        )

        await write_plan(self._store, service, plan.retire, create_on=plan.create_on)


def _eligibility_may_have_changed(old: objects_pb2.Node, new: objects_pb2.Node) -> bool:
    return (
        old.status.state != new.status.state
        or old.spec != new.spec
        or old.description != new.description
        or old.role != new.role
        or old.status.addr != new.status.addr
    )
