"""The replicated orchestrator: keeps `replicas` slots of each replicated service occupied.

Theory of operation
-------------------
A replicated service owns slots 1..N. A slot is occupied while it has a runnable task (desired RUNNING
or below), even one that has finished and waits for the restart supervisor: restarts are that
supervisor's job, so this loop never fills a slot whose task merely stopped.

`plan_replicated` decides, purely, from the service, its tasks and the nodes:
- a runnable task on a node that is gone, DOWN or drained is retired (desired SHUTDOWN) and replaced by
  a new task in the same slot, which the scheduler places elsewhere;
- with more occupied slots than replicas, whole slots are retired: first slots whose task is not running,
  then those whose task is the n-th copy of the service on its node for the highest n (so the most
  loaded nodes shed first, as swarmkit does), then the highest slot numbers;
- with fewer, new tasks fill the lowest free slot numbers.
The loop applies the plan, then hands slots whose current task was made from an older task spec to the
rolling updater (update.py). A deleted service's tasks get desired REMOVE; the task reaper deletes them
once their workers have stopped them. Tasks whose service no longer exists are treated the same way.

The loop watches services, tasks and nodes, and reconciles each affected service once per batch of
events. Only changes that can alter the plan make a service dirty (`task_change_may_alter_plan`): a
status report does not, so a large service is not re-planned once per task per state. A write refused for a stale read (Conflict) is simply retried from a fresh read.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from swarmpy.api import objects_pb2
from swarmpy.manager.store import Change, ReadView, StoreError

from .common import (
    REMOVE,
    RUNNING,
    is_replicated,
    is_runnable,
    mark_removed,
    node_gone_or_down,
    runnable_by_slot,
    stranded_tasks,
    write_plan,
)
from .loop import ServiceReconcileLoop
from .update import UpdateRunner

log = logging.getLogger(__name__)


@dataclass
class ReplicatedPlan:
    retire: list[objects_pb2.Task] = field(default_factory=list)  # desired SHUTDOWN
    create_slots: list[int] = field(default_factory=list)  # one new task per entry

    def __bool__(self) -> bool:
        return bool(self.retire or self.create_slots)


def scale_down_order(
    slots: Mapping[int, list[objects_pb2.Task]], replaced: set[int]
) -> list[int]:
    """Slots in the order they should be given up: not running first, most loaded node, highest slot."""
    copy_on_node: dict[int, int] = {}
    per_node: dict[str, int] = defaultdict(int)
    for slot in sorted(slots):
        node_id = slots[slot][0].node_id
        per_node[node_id] += 1
        copy_on_node[slot] = per_node[node_id] if node_id else 0

    def running(slot: int) -> bool:
        return slot not in replaced and any(task.status.state == RUNNING for task in slots[slot])

    return sorted(slots, key=lambda slot: (running(slot), -copy_on_node[slot], -slot))


def plan_replicated(
    service: objects_pb2.Service, tasks: list[objects_pb2.Task], nodes: Mapping[str, objects_pb2.Node]
) -> ReplicatedPlan:
    plan = ReplicatedPlan()
    slots = {slot: current for slot, current in runnable_by_slot(tasks).items() if isinstance(slot, int) and slot}
    replaced: set[int] = set()
    for slot, current in slots.items():
        stranded = stranded_tasks(current, nodes)
        if stranded:
            plan.retire.extend(stranded)
            if len(stranded) == len(current):
                replaced.add(slot)

    replicas = service.spec.replicated.replicas
    if len(slots) > replicas:
        for slot in scale_down_order(slots, replaced)[: len(slots) - replicas]:
            already = {task.id for task in plan.retire}
            plan.retire.extend(task for task in slots.pop(slot) if task.id not in already)
            replaced.discard(slot)
    plan.create_slots.extend(sorted(replaced))
    missing = replicas - len(slots)
    candidate = 1
    while missing > 0:
        if candidate not in slots:
            plan.create_slots.append(candidate)
            missing -= 1
        candidate += 1
    return plan


class ReplicatedOrchestrator(ServiceReconcileLoop):
    """Reconciles replicated services' tasks; reads services, tasks, nodes; writes tasks and services
    (update_status, through the updater)."""

    def _owns(self, service: objects_pb2.Service) -> bool:
        return is_replicated(service)

    async def _prepare(self, view: ReadView) -> None:
        await self._remove_orphaned_tasks(view)

    def _note(self, event: Change, dirty: set[str], updates: UpdateRunner) -> None:
        view = self._store.view()
        if event.kind == "service":
            self._note_service(event, dirty, updates)
        elif event.kind == "task":
            if not task_change_may_alter_plan(event.old, event.new, view.get_node):
                return
            service = view.get_service(event.obj.service_id)
            if service is not None and is_replicated(service):
                dirty.add(service.id)
        elif event.kind == "node":
            if event.action == "update" and not _availability_changed(event.old, event.new):
                return
            for task in view.tasks_by_node(event.obj.id):
                service = view.get_service(task.service_id)
                if service is not None and is_replicated(service):
                    dirty.add(service.id)

    def _nodes(self, view: ReadView) -> Any:
        return {node.id: node for node in view.nodes()}

    def _plan(self, service: objects_pb2.Service, tasks: list[objects_pb2.Task], nodes: Any) -> Any:
        return plan_replicated(service, tasks, nodes)

    async def _apply(self, service: objects_pb2.Service, plan: ReplicatedPlan) -> None:
        if plan.create_slots or len(plan.retire) > 1:
            log.info(
                "service %s: creating %d tasks, retiring %d",
                service.spec.annotations.name,
                len(plan.create_slots),
                len(plan.retire),
            )

        await write_plan(self._store, service, plan.retire, plan.create_slots)

    async def _remove_orphaned_tasks(self, view: ReadView) -> None:
        """Tasks whose service vanished while no orchestrator was watching (e.g. across a leader change)."""
        orphans = [
            task
            for task in view.tasks()
            if task.desired_state < REMOVE and view.get_service(task.service_id) is None
        ]
        try:
            await mark_removed(self._store, orphans)
        except StoreError as error:
            log.debug("marking orphaned tasks for removal raced another write: %s", error)


def task_change_may_alter_plan(
    old: objects_pb2.Task | None,
    new: objects_pb2.Task | None,
    get_node: Callable[[str], objects_pb2.Node | None],
) -> bool:
    """Whether a task change can change `plan_replicated`'s answer for its service.

    Most task writes are status reports (ASSIGNED → ... → RUNNING) and scheduler assignments; none of them
    frees or fills a slot, so re-planning a service of 10,000 tasks for each would be all waste. What can
    matter: a task created or deleted, its desired state changed (a slot freed), a runnable task on a node
    that cannot keep it (moved there, or reported while the node is down or drained), and a task that
    finished (it still holds its slot, but scale-down gives up slots that are not running first).
    """
    if old is None or new is None:
        return True
    if old.desired_state != new.desired_state:
        return True
    if not is_runnable(new):
        return False
    if new.node_id and (new.node_id != old.node_id or new.status.state != old.status.state):
        if node_gone_or_down(get_node(new.node_id)):
            return True
    return old.status.state <= RUNNING < new.status.state


def _availability_changed(old: objects_pb2.Node, new: objects_pb2.Node) -> bool:
    return old.status.state != new.status.state or old.spec.availability != new.spec.availability
