"""The log broker: `service logs` on the leader, gathered from the nodes that ran the tasks.

Theory of operation
-------------------
`subscribe(selector, options)` resolves the selector (service IDs and task IDs) to the nodes that hold
those tasks, sends each connected node a LogSubscription through its LogSubscriptions stream (the
Dispatcher hands those streams to `attach_node`), and yields the LogMessages the nodes send back through
PublishLogs (`publish`), each stamped with the sending node's ID whatever the node wrote there.

Without `follow`, the subscription ends once every node involved has closed its part (a PublishLogs
message with close), has dropped its publishing stream, or is not connected at all. With `follow` it
runs until the caller stops iterating; then every node is sent the subscription again with close set, so
it stops reading container logs. While following, `run()` (the leader-side loop) watches the task table
and sends the subscription to nodes that get new tasks of the selected services, and nodes that
reconnect are sent the subscriptions still waiting on them.

Messages are queued without bound between the nodes and a slow caller; a node sends at most what its
containers have, and a caller that stops reading ends the subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field

from swarmpy.api import dispatcher_pb2, objects_pb2
from swarmpy.identity import new_id
from swarmpy.manager.store import Change
from swarmpy.manager.store.memory import MemoryStore, ReadView

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _NodeDone:
    node_id: str


@dataclass(eq=False)
class _Subscription:
    message: dispatcher_pb2.LogSubscription
    nodes: set[str]  # every node sent this subscription
    waiting: set[str]  # nodes that have not closed their part yet
    queue: asyncio.Queue[dispatcher_pb2.LogMessage | _NodeDone] = field(default_factory=asyncio.Queue)

    @property
    def id(self) -> str:
        return self.message.id

    @property
    def follow(self) -> bool:
        return self.message.options.follow


def selects(selector: dispatcher_pb2.LogSelector, task: objects_pb2.Task) -> bool:
    return task.id in selector.task_ids or task.service_id in selector.service_ids


def selected_tasks(view: ReadView, selector: dispatcher_pb2.LogSelector) -> list[objects_pb2.Task]:
    tasks: dict[str, objects_pb2.Task] = {}
    for service_id in selector.service_ids:
        for task in view.tasks_by_service(service_id):
            tasks[task.id] = task
    for task_id in selector.task_ids:
        task = view.get_task(task_id)
        if task is not None:
            tasks[task.id] = task
    return list(tasks.values())


class LogBroker:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._subscriptions: dict[str, _Subscription] = {}
        self._listeners: dict[str, set[asyncio.Queue[dispatcher_pb2.LogSubscription]]] = {}

    # ---------------------------------------------------------------- the caller's side (controlapi)

    async def subscribe(
        self, selector: dispatcher_pb2.LogSelector, options: dispatcher_pb2.LogOptions
    ) -> AsyncIterator[dispatcher_pb2.LogMessage]:
        """Yield the selected tasks' log messages; see the module docstring for when it ends."""
        tasks = selected_tasks(self._store.view(), selector)
        nodes = {task.node_id for task in tasks if task.node_id}
        message = dispatcher_pb2.LogSubscription(id=new_id(), selector=selector, options=options)
        subscription = _Subscription(message=message, nodes=set(), waiting=set())
        self._subscriptions[subscription.id] = subscription
        try:
            for node_id in nodes:
                self._involve(subscription, node_id)
            while subscription.waiting or subscription.follow:
                item = await subscription.queue.get()
                if isinstance(item, _NodeDone):
                    subscription.waiting.discard(item.node_id)
                else:
                    yield item
        finally:
            del self._subscriptions[subscription.id]
            closing = dispatcher_pb2.LogSubscription()
            closing.CopyFrom(subscription.message)
            closing.close = True
            for node_id in subscription.nodes:
                for listener in self._listeners.get(node_id, ()):
                    listener.put_nowait(closing)

    def _involve(self, subscription: _Subscription, node_id: str) -> None:
        subscription.nodes.add(node_id)
        listeners = self._listeners.get(node_id)
        if not listeners and not subscription.follow:
            log.info("logs of subscription %s: node %s is not connected; its logs are left out", subscription.id, node_id)
            return
        subscription.waiting.add(node_id)
        for listener in listeners or ():
            listener.put_nowait(subscription.message)

    # ---------------------------------------------------------------- the nodes' side (dispatcher)

    @contextlib.contextmanager
    def attach_node(self, node_id: str) -> Iterator[asyncio.Queue[dispatcher_pb2.LogSubscription]]:
        """A node's LogSubscriptions stream: the queue of subscriptions to send it, for the block's duration."""
        queue: asyncio.Queue[dispatcher_pb2.LogSubscription] = asyncio.Queue()
        self._listeners.setdefault(node_id, set()).add(queue)
        for subscription in self._subscriptions.values():
            if node_id in subscription.waiting:
                queue.put_nowait(subscription.message)
        try:
            yield queue
        finally:
            listeners = self._listeners.get(node_id, set())
            listeners.discard(queue)
            if not listeners:
                self._listeners.pop(node_id, None)
                # A node gone for good would hold a bounded subscription open forever; following ones wait
                # for it to come back.
                for subscription in self._subscriptions.values():
                    if node_id in subscription.waiting and not subscription.follow:
                        subscription.queue.put_nowait(_NodeDone(node_id))

    def publish(self, node_id: str, message: dispatcher_pb2.PublishLogsMessage) -> None:
        subscription = self._subscriptions.get(message.subscription_id)
        if subscription is None:
            return  # the caller went away; the node is told through the close message
        if node_id not in subscription.nodes:
            log.warning("node %s published logs for subscription %s it was not sent: ignored", node_id, subscription.id)
            return
        for log_message in message.messages:
            log_message.context.node_id = node_id
            subscription.queue.put_nowait(log_message)
        if message.close:
            subscription.queue.put_nowait(_NodeDone(node_id))

    def publisher_gone(self, node_id: str, subscription_ids: Iterable[str]) -> None:
        """A node's PublishLogs stream ended: whatever it did not close, it will not send any more."""
        for subscription_id in subscription_ids:
            subscription = self._subscriptions.get(subscription_id)
            if subscription is not None and node_id in subscription.waiting:
                subscription.queue.put_nowait(_NodeDone(node_id))

    # ---------------------------------------------------------------- the leader-side loop

    async def run(self) -> None:
        """Send following subscriptions to nodes that get new tasks of the selected services."""
        with self._store.watch(["task"]) as watch:
            async for event in watch:
                if not isinstance(event, Change) or event.new is None or not event.new.node_id:
                    continue
                task = event.new
                for subscription in list(self._subscriptions.values()):
                    if subscription.follow and task.node_id not in subscription.nodes and selects(subscription.message.selector, task):
                        self._involve(subscription, task.node_id)
