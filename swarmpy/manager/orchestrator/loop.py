"""The reconcile loop both orchestrators run, around their own rules.

Reconcile every service of the orchestrator's mode once at start, then wait for store changes; each
batch of changes marks some services dirty (the orchestrator's `_note` decides which), and those are
reconciled before waiting again. Rolling updates run beside the loop, owned by its TaskGroup.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from swarmpy.api import objects_pb2
from swarmpy.manager.store import Change, MemoryStore, ReadView, StoreError

from .common import REMOVE, is_task_dirty, mark_removed, next_events
from .update import UpdateRunner

log = logging.getLogger(__name__)


class ServiceReconcileLoop:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def _owns(self, service: objects_pb2.Service) -> bool:
        """Whether this orchestrator is responsible for the service (its mode)."""
        raise NotImplementedError

    async def _prepare(self, view: ReadView) -> None:
        """Start-up work before the first reconcile (nothing by default)."""

    def _note(self, event: Change, dirty: set[str], updates: UpdateRunner) -> None:
        raise NotImplementedError

    def _note_service(self, event: Change, dirty: set[str], updates: UpdateRunner) -> None:
        """A service event, the same rule for every orchestrator: a service it owns is dirty, and a
        removed one's rolling update (if any) is cancelled."""
        if event.action == "remove":
            if self._owns(event.old):
                updates.cancel(event.old.id)
                dirty.add(event.old.id)
        elif self._owns(event.new):
            dirty.add(event.new.id)

    def _nodes(self, view: ReadView) -> Any:
        """The nodes in the form `_plan` wants, computed once per reconcile pass."""
        raise NotImplementedError

    def _plan(self, service: objects_pb2.Service, tasks: list[objects_pb2.Task], nodes: Any) -> Any:
        """What to change for one service (falsy: nothing)."""
        raise NotImplementedError

    async def _apply(self, service: objects_pb2.Service, plan: Any) -> None:
        raise NotImplementedError

    async def _remove_tasks(self, service_id: str) -> None:
        """The service is gone: its tasks are to be removed."""
        await mark_removed(self._store, [task for task in self._store.view().tasks_by_service(service_id)
                                         if task.desired_state < REMOVE])

    async def _reconcile(self, service_ids: set[str], updates: UpdateRunner) -> set[str]:
        """Reconcile the services; returns the ones to retry because a write raced another."""
        view = self._store.view()
        nodes = self._nodes(view)
        retry: set[str] = set()
        for service_id in sorted(service_ids):
            service = view.get_service(service_id)
            try:
                if service is None:
                    await self._remove_tasks(service_id)
                    continue
                if not self._owns(service):
                    continue
                plan = self._plan(service, view.tasks_by_service(service_id), nodes)
                if plan:
                    await self._apply(service, plan)
                    view = self._store.view()
                tasks = view.tasks_by_service(service_id)
                if any(is_task_dirty(service, task) for task in tasks if task.desired_state <= objects_pb2.RUNNING):
                    updates.ensure(service)
            except StoreError as error:
                log.debug("reconciling service %s raced another write, retrying: %s", service_id, error)
                retry.add(service_id)
        if retry:
            await asyncio.sleep(0)
        return retry

    async def run(self) -> None:
        view, watch = self._store.view_and_watch(["service", "task", "node"])
        with watch:
            async with asyncio.TaskGroup() as group:
                updates = UpdateRunner(self._store, group)
                await self._prepare(view)
                dirty = {service.id for service in view.services() if self._owns(service)}
                while True:
                    if dirty:
                        dirty = await self._reconcile(dirty, updates)
                        if dirty:
                            continue
                    for event in await next_events(watch):
                        if isinstance(event, Change):
                            self._note(event, dirty, updates)
