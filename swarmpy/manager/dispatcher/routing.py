"""Task changes routed to the nodes they concern: one store watch for every Assignments stream.

Theory of operation
-------------------
Each node's Assignments stream needs the changes of the tasks on that node only. A store watch per
stream would copy every task change into every stream's queue (work per write grows with the number of
nodes, and a stream that falls behind holds copies of everything). Instead the dispatcher keeps one
`TaskRouter`: it drains a single task watch and hands each change to the inboxes of the node the task
was on before and the node it is on after (a task moved away must be removed from the first).

An `Inbox` keeps only the latest version of each changed task (None: deleted), so what a slow stream
holds is bounded by the tasks of its node, not by the number of writes.

Consistency: `subscribe` first routes whatever the watch holds right now, then reads the node's tasks
from a view and registers the inbox, all without yielding to the event loop. The store applies entries
synchronously on the same loop, so the view is exactly the state after the last routed change: the
inbox receives every later change and nothing earlier. The routing loop does the same (everything it
takes from the watch is routed before it awaits again).

A store restore (snapshot install, Commit(0)) replaces the state without changes; every inbox is then
marked `resync` and its stream sends a COMPLETE set again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from swarmpy.api import objects_pb2
from swarmpy.manager.store import Change, Commit
from swarmpy.manager.store.memory import MemoryStore, Watch


class Inbox:
    """The pending task changes of one node's Assignments stream: latest version per task."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.changed: dict[str, objects_pb2.Task | None] = {}
        self.resync = False
        self._ready = asyncio.Event()

    def put(self, task_id: str, task: objects_pb2.Task | None) -> None:
        self.changed[task_id] = task
        self._ready.set()

    def mark_resync(self) -> None:
        self.resync = True
        self.changed.clear()
        self._ready.set()

    def wake(self) -> None:
        """Wake the stream with nothing new (its session ended: it re-checks and leaves)."""
        self._ready.set()

    async def wait(self) -> None:
        """Until there is something to take."""
        await self._ready.wait()

    def take(self) -> tuple[dict[str, objects_pb2.Task | None], bool]:
        """The changes gathered so far and whether a full resync is needed; the inbox starts empty again."""
        changed, resync = self.changed, self.resync
        self.changed, self.resync = {}, False
        self._ready.clear()
        return changed, resync


class TaskRouter:
    """Owns the dispatcher's one task watch while `run()` runs; streams `subscribe` per node."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._watch: Watch | None = None
        self._inboxes: dict[str, set[Inbox]] = {}

    def open(self) -> None:
        """Start watching (before the dispatcher accepts streams, so that `subscribe` works at once)."""
        if self._watch is None:
            self._watch = self._store.watch(["task"])

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    async def run(self) -> None:
        """Route changes until cancelled; the watch is closed when this ends."""
        self.open()
        watch = self._watch
        assert watch is not None
        try:
            while True:
                first = await watch.get()
                self._route([first, *watch.drain()])
        finally:
            self.close()

    def subscribe(self, node_id: str) -> tuple[list[objects_pb2.Task], Inbox]:
        """The node's tasks now, and an inbox that will get every change after them. Close with `unsubscribe`."""
        if self._watch is None:
            raise RuntimeError("the task router is not running: subscribe only while the dispatcher runs")
        self._route(self._watch.drain())
        tasks = self._store.view().tasks_by_node(node_id)
        inbox = Inbox(node_id)
        self._inboxes.setdefault(node_id, set()).add(inbox)
        return tasks, inbox

    def unsubscribe(self, inbox: Inbox) -> None:
        inboxes = self._inboxes.get(inbox.node_id)
        if inboxes is not None:
            inboxes.discard(inbox)
            if not inboxes:
                del self._inboxes[inbox.node_id]

    def wake_all(self) -> None:
        """Wake every stream with no task change (something else it sends, such as the network view, may have changed)."""
        for node_inboxes in self._inboxes.values():
            for inbox in node_inboxes:
                inbox.wake()

    def wake(self, node_ids: Iterable[str]) -> None:
        """Wake the streams of these nodes only, with no task change."""
        for node_id in node_ids:
            for inbox in self._inboxes.get(node_id, ()):
                inbox.wake()

    def subscribers(self) -> int:
        return sum(len(inboxes) for inboxes in self._inboxes.values())

    def _route(self, events: Iterable[Change | Commit]) -> None:
        inboxes = self._inboxes
        for event in events:
            if isinstance(event, Commit):
                if event.index == 0:
                    for node_inboxes in inboxes.values():
                        for inbox in node_inboxes:
                            inbox.mark_resync()
                continue
            old, new = event.old, event.new
            task_id = new.id if new is not None else old.id
            old_node = old.node_id if old is not None else ""
            new_node = new.node_id if new is not None else ""
            if old_node:
                for inbox in inboxes.get(old_node, ()):
                    inbox.put(task_id, new)
            if new_node and new_node != old_node:
                for inbox in inboxes.get(new_node, ()):
                    inbox.put(task_id, new)
