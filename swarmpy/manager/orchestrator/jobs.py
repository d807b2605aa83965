"""The jobs orchestrator: services whose tasks run to completion (`--mode replicated-job|global-job`).

Theory of operation
-------------------
A job's run is its spec version: every change of the service's spec (a `service update`, `--force`
included) starts a new run, and the runnable tasks of older runs are retired. Within the current run,
`plan_job` decides, purely:
- replicated job: slots 1..total_completions; a slot is done once a task in it COMPLETED, busy while it
  has a runnable task that has not completed (running, or failed and waiting for the restart supervisor,
  which restarts failed job tasks by their restart policy and never completed ones). New tasks fill the
  lowest free slots, no more than max_concurrent busy slots at once and no more than the slots left;
  A task that has not completed on a node that is gone, DOWN or drained is retired and its slot
  refilled elsewhere, as swarmkit's jobs orchestrator does, until the completions are met;
- global job: every eligible node (READY, ACTIVE, matching the constraints) without a task of the
  current run gets one; a completed or failed one counts, so a node runs the job once. A node that
  goes away has its unfinished task retired; if it comes back it runs the job again.
A deleted service's tasks get desired REMOVE, as for the other modes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from swarmpy.api import objects_pb2
from swarmpy.manager.constraint import matches
from swarmpy.manager.store import Change, ReadView

from .common import is_finished, is_runnable, node_takes_new_tasks, service_constraints, stranded_tasks, write_plan
from .loop import ServiceReconcileLoop
from .update import UpdateRunner

log = logging.getLogger(__name__)

COMPLETE = objects_pb2.COMPLETE
RAN_TO_AN_OUTCOME = (objects_pb2.COMPLETE, objects_pb2.FAILED, objects_pb2.REJECTED)


def is_job(service: objects_pb2.Service) -> bool:
    return service.spec.WhichOneof("mode") in ("replicated_job", "global_job")


def current_run(service: objects_pb2.Service, task: objects_pb2.Task) -> bool:
    return task.spec_version.index == service.spec_version.index


@dataclass
class JobPlan:
    retire: list[objects_pb2.Task] = field(default_factory=list)
    create_slots: list[int] = field(default_factory=list)
    create_on: list[str] = field(default_factory=list)  # node IDs (global jobs)

    def __bool__(self) -> bool:
        return bool(self.retire or self.create_slots or self.create_on)


def plan_job(service: objects_pb2.Service, tasks: list[objects_pb2.Task], nodes: list[objects_pb2.Node]) -> JobPlan:
    plan = JobPlan()
    current = [task for task in tasks if current_run(service, task)]
    plan.retire.extend(task for task in tasks if is_runnable(task) and not current_run(service, task))
    if service.spec.WhichOneof("mode") == "replicated_job":
        job = service.spec.replicated_job
        done = {task.slot for task in current if task.status.state == COMPLETE}
        unfinished = [task for task in current if is_runnable(task) and task.status.state != COMPLETE]
        stranded = stranded_tasks(unfinished, {node.id: node for node in nodes})
        plan.retire.extend(stranded)
        stranded_ids = {task.id for task in stranded}
        busy = {task.slot for task in unfinished if task.id not in stranded_ids} - done
        room = min(job.max_concurrent - len(busy), job.total_completions - len(done) - len(busy))
        slot = 1
        while room > 0 and slot <= job.total_completions:
            if slot not in done and slot not in busy:
                plan.create_slots.append(slot)
                room -= 1
            slot += 1
        return plan
    constraints = service_constraints(service, log)
    if constraints is None:
        return plan
    by_id = {node.id: node for node in nodes}
    unfinished = [task for task in current if is_runnable(task) and not is_finished(task)]
    stranded = {task.id for task in stranded_tasks(unfinished, by_id)}
    plan.retire.extend(task for task in unfinished if task.id in stranded)
    # Ran (or runs) the job on its node: a task with an outcome, or one still wanted there. One retired
    # before it had one (its node went away) does not count, so the node runs the job if it comes back.
    ran = {task.node_id for task in current
           if task.status.state in RAN_TO_AN_OUTCOME or (is_runnable(task) and task.id not in stranded)}
    for node in sorted(nodes, key=lambda n: n.id):
        if node.id not in ran and node_takes_new_tasks(node) and matches(constraints, node):
            plan.create_on.append(node.id)
    return plan


def job_counts(service: objects_pb2.Service, tasks, eligible_nodes: int) -> tuple[int, int, int, int]:
    """(running, desired, completed, total) of the current run, for `service ls`."""
    current = [task for task in tasks if current_run(service, task)]
    running = sum(1 for t in current if t.status.state == objects_pb2.RUNNING and is_runnable(t))
    if service.spec.WhichOneof("mode") == "replicated_job":
        job = service.spec.replicated_job
        completed = len({t.slot for t in current if t.status.state == COMPLETE})
        return running, min(job.max_concurrent, job.total_completions - completed), completed, job.total_completions
    completed = len({t.node_id for t in current if t.status.state == COMPLETE})
    return running, max(eligible_nodes - completed, 0), completed, eligible_nodes


class JobsOrchestrator(ServiceReconcileLoop):
    """Reconciles job services; reads services, tasks, nodes; writes tasks."""

    def _owns(self, service: objects_pb2.Service) -> bool:
        return is_job(service)

    def _note(self, event: Change, dirty: set[str], updates: UpdateRunner) -> None:
        view = self._store.view()
        if event.kind == "service":
            self._note_service(event, dirty, updates)
        elif event.kind == "task":
            old, new = event.old, event.new
            if new is not None and old is not None and new.status.state == old.status.state \
                    and new.desired_state == old.desired_state:
                return
            service = view.get_service(event.obj.service_id)
            if service is not None and is_job(service):
                dirty.add(service.id)
        elif event.kind == "node":  # a node's coming (global jobs) or going (tasks to replace, both modes)
            dirty.update(s.id for s in view.services() if is_job(s))

    def _nodes(self, view: ReadView) -> Any:
        return list(view.nodes())

    def _plan(self, service: objects_pb2.Service, tasks: list[objects_pb2.Task], nodes: Any) -> Any:
        return plan_job(service, tasks, nodes)

    async def _apply(self, service: objects_pb2.Service, plan: JobPlan) -> None:
        log.info("job %s: starting %d tasks, retiring %d", service.spec.annotations.name,
                 len(plan.create_slots) + len(plan.create_on), len(plan.retire))
        await write_plan(self._store, service, plan.retire, plan.create_slots, plan.create_on)
