"""The reconcile loop both orchestrators run, around their own rules.

Reconcile every service of the orchestrator's mode once at start, then wait for store changes; each
batch of changes marks some services dirty (the orchestrator's `_note` decides which), and those are
reconciled before waiting again. Rolling updates run beside the loop, owned by its TaskGroup.
"""

from __future__ import annotations

import asyncio

from swarmpy.api import objects_pb2
from swarmpy.manager.store import Change, MemoryStore, ReadView

from .common import next_events
from .update import UpdateRunner


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

    async def _reconcile(self, dirty: set[str], updates: UpdateRunner) -> set[str]:
        """Reconcile the dirty services; returns those still dirty (to try again at once)."""
        raise NotImplementedError

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
