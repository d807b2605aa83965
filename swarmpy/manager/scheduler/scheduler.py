"""The scheduler loop: assigns PENDING tasks to nodes.

Theory of operation
-------------------
The loop keeps a NodeInfo per node (what its tasks use) and the set of PENDING tasks waiting for a
node, both loaded from a view at start and then kept current from the store's node and task events;
it never rescans the store. Pending tasks arriving together are scheduled together: after the first
one, the loop waits until no event has come for 50 ms (at most 1 s in all), then runs one pass:
- tasks created with a node (global services) are checked against that node and assigned or not;
- the others are grouped by (service, spec version) and each group is placed in one go by
  `placement.place_group`, which records every assignment in the NodeInfo at once.
The pass writes all assignments (node_id, state ASSIGNED, "scheduler assigned task to node", and the
generic-resource units claimed for it on that node, nodeinfo.py) and the explanations of tasks that fit nowhere (status.err; they stay PENDING) in one store batch. A task that
changed meanwhile is skipped and its NodeInfo entry taken back; if a proposal is refused, every
decision is checked against the store and the ones that did not land are undone.

Tasks that fit nowhere are set aside and tried again only when capacity may have appeared: a node was
added or changed, or a task stopped using a node.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from swarmpy.api import objects_pb2
from swarmpy.manager.store import Change, MemoryStore, ReadView, StoreError, Watch
from swarmpy.manager.store.memory import Batch, clone

from .nodeinfo import NodeInfo, task_usage, uses_node
from .placement import place_group, place_preassigned

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 0.05
MAX_DELAY_SECONDS = 1.0
ASSIGNED_MESSAGE = "scheduler assigned task to node"


def waits_for_node(task: objects_pb2.Task) -> bool:
    # A PENDING task without the addresses its networks need waits for the allocator, not for a node.
    return (
        task.status.state == objects_pb2.PENDING
        and task.desired_state <= objects_pb2.RUNNING
        and len(task.networks) >= len(task.spec.networks)
    )


class Scheduler:
    """Reads nodes and tasks; writes tasks (node_id and ASSIGNED, or status.err when nothing fits)."""

    def __init__(
        self,
        store: MemoryStore,
        *,
        debounce_seconds: float = DEBOUNCE_SECONDS,
        max_delay_seconds: float = MAX_DELAY_SECONDS,
    ) -> None:
        self._store = store
        self._debounce_seconds = debounce_seconds
        self._max_delay_seconds = max_delay_seconds
        self.nodes: dict[str, NodeInfo] = {}
        self._task_node: dict[str, str] = {}  # task ID -> node whose NodeInfo counts it
        self._pending: dict[str, objects_pb2.Task] = {}
        self._unplaceable: dict[str, objects_pb2.Task] = {}

    async def run(self) -> None:
        view, watch = self._store.view_and_watch(["node", "task"])
        with watch:
            self.load(view)
            while True:
                if self._pending:
                    await self._debounce(watch)
                    await self.schedule_pass()
                else:
                    self.apply_events([await watch.get(), *watch.drain()])

    # -- keeping the picture current ---------------------------------------------------------

    def load(self, view: ReadView) -> None:
        self.nodes = {node.id: NodeInfo(node) for node in view.nodes()}
        self._task_node.clear()
        self._pending.clear()
        self._unplaceable.clear()
        for task in view.tasks():
            self._track(task)

    def apply_events(self, events: Iterable[object]) -> None:
        for event in events:
            if not isinstance(event, Change):
                continue
            if event.kind == "task":
                if event.new is None:
                    self._forget(event.old.id)
                else:
                    self._track(event.new)
            elif event.kind == "node":
                self._track_node(event)

    def _track_node(self, event: Change) -> None:
        if event.new is None:
            self.nodes.pop(event.old.id, None)
            for task_id in [task_id for task_id, node_id in self._task_node.items() if node_id == event.old.id]:
                del self._task_node[task_id]
            return
        info = self.nodes.get(event.new.id)
        if info is None:
            info = self.nodes[event.new.id] = NodeInfo(event.new)
            for task in self._store.view().tasks_by_node(event.new.id):
                self._track(task)
        else:
            info.set_node(event.new)
        self._capacity_may_have_appeared()

    def _track(self, task: objects_pb2.Task) -> None:
        counted_on = self._task_node.get(task.id)
        if uses_node(task):
            if counted_on is not None and counted_on != task.node_id:
                self._uncount(task.id)
            info = self.nodes.get(task.node_id)
            if info is not None:
                info.add(task.id, task_usage(task))
                self._task_node[task.id] = task.node_id
        elif counted_on is not None:
            self._uncount(task.id)
            self._capacity_may_have_appeared()
        if waits_for_node(task):
            if task.id in self._unplaceable:
                self._unplaceable[task.id] = task
            else:
                self._pending[task.id] = task
        else:
            self._pending.pop(task.id, None)
            self._unplaceable.pop(task.id, None)

    def _forget(self, task_id: str) -> None:
        if self._uncount(task_id):
            self._capacity_may_have_appeared()
        self._pending.pop(task_id, None)
        self._unplaceable.pop(task_id, None)

    def _uncount(self, task_id: str) -> bool:
        node_id = self._task_node.pop(task_id, None)
        info = self.nodes.get(node_id) if node_id is not None else None
        return info.remove(task_id) if info is not None else False

    def _capacity_may_have_appeared(self) -> None:
        if self._unplaceable:
            self._pending.update(self._unplaceable)
            self._unplaceable.clear()

    async def _debounce(self, watch: Watch) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_delay_seconds
        while True:
            timeout = min(self._debounce_seconds, deadline - loop.time())
            if timeout <= 0:
                return
            try:
                # asyncio.timeout rather than wait_for: on 3.11, wait_for can swallow a cancellation that
                # races the result, which would leave this loop running after its owner stopped it.
                async with asyncio.timeout(timeout):
                    event = await watch.get()
            except TimeoutError:
                return
            self.apply_events([event, *watch.drain()])

    # -- one scheduling pass -----------------------------------------------------------------

    async def schedule_pass(self) -> None:
        """Place every pending task that fits and write the outcome."""
        pending, self._pending = self._pending, {}
        assigned: list[tuple[objects_pb2.Task, str]] = []
        unplaced: list[tuple[objects_pb2.Task, str]] = []
        groups: dict[tuple[str, int], list[objects_pb2.Task]] = {}
        for task in pending.values():
            if task.node_id:
                explanation = place_preassigned(task, self.nodes.get(task.node_id))
                if explanation is None:
                    assigned.append((task, task.node_id))
                else:
                    unplaced.append((task, explanation))
            else:
                groups.setdefault((task.service_id, task.spec_version.index), []).append(task)
        for key in sorted(groups):
            placement = place_group(groups[key], self.nodes.values())
            assigned.extend((task, info.id) for task, info in placement.assigned)
            unplaced.extend((task, placement.explanation) for task in placement.unplaced)
            if placement.unplaced:
                log.debug("%d tasks of service %s unplaced: %s", len(placement.unplaced), key[0], placement.explanation)
        for task, node_id in assigned:
            self._task_node[task.id] = node_id
        for task, _ in unplaced:
            self._unplaceable[task.id] = task
        if assigned or unplaced:
            await self._commit(assigned, unplaced)

    async def _commit(
        self, assigned: list[tuple[objects_pb2.Task, str]], unplaced: list[tuple[objects_pb2.Task, str]]
    ) -> None:
        now = time.time_ns()
        stale: list[str] = []

        def write(batch: Batch) -> None:
            for task, node_id in assigned:
                current = batch.get_task(task.id)
                if current is None or not waits_for_node(current) or (current.node_id and current.node_id != node_id):
                    stale.append(task.id)
                    continue
                update = clone(current)
                update.node_id = node_id
                update.ClearField("assigned_generic_resources")
                claim = self.nodes[node_id].claims.get(task.id) if node_id in self.nodes else None
                if claim:
                    update.assigned_generic_resources.extend(claim.to_proto())
                status = update.status
                status.state = objects_pb2.ASSIGNED
                status.timestamp = now
                status.message = ASSIGNED_MESSAGE
                status.err = ""
                batch.update("task", update)
            for task, explanation in unplaced:
                current = batch.get_task(task.id)
                if current is None or not waits_for_node(current) or current.status.err == explanation:
                    continue
                update = clone(current)
                update.status.err = explanation
                update.status.timestamp = now
                batch.update("task", update)

        try:
            await self._store.batch(write)
        except StoreError as error:
            log.debug("some scheduling decisions raced other writes; checking which landed: %s", error)
            view = self._store.view()
            stale = [
                task.id
                for task, node_id in assigned
                if (current := view.get_task(task.id)) is None
                or current.node_id != node_id
                or current.status.state < objects_pb2.ASSIGNED
            ]
        if stale:
            view = self._store.view()
            for task_id in stale:
                self._uncount(task_id)
                current = view.get_task(task_id)
                if current is not None:
                    self._track(current)
