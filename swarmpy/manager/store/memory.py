"""The in-memory object store behind every manager, fed by the Raft log.

Theory of operation
-------------------
The store holds tables of protobuf objects (nodes, services, tasks, clusters, secrets, configs,
networks) plus the
Raft membership, with secondary indexes (tasks by service, tasks by node, and names: a service, secret,
config or network name is unique among its kind). It changes in
exactly one way: `apply(index, data)`, which the Raft driver calls on every manager, in log order, for
each committed entry. So every manager holds the same objects at the same applied index.

Reads go through `store.view()`, a live window onto the tables (see ReadView: consistent within one
synchronous stretch, current again after every await). Writers never touch the tables. `await store.update(fn)` runs `fn(tx)` synchronously against the
current state; `tx` sees its own staged writes. The staged actions become one `StoreProposal` handed
to the proposer (Raft); the call returns when that proposal has been committed *and applied*, or
raises. `apply` checks a proposal against the state it meets (an UPDATE or REMOVE must name the version
the writer read; CREATE must not collide with an ID or a service name) and applies all of it or none:
a stale write fails with `Conflict` on every manager alike, so the check is deterministic. The version
index of every object written is the Raft index of its entry, as in swarmkit.

Time stamps (created_at/updated_at) are set by the writer before proposing, never at apply time: apply
must give the same result on every manager.

Objects handed out by reads are the store's own: treat them as read-only. To change one, copy it
(`clone(obj)`), edit the copy and write it through a transaction.

Watchers (`store.watch()`) receive a `Change` per applied action and a `Commit` after each applied
proposal, so a loop can react once per batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from google.protobuf.message import DecodeError, Message

from swarmpy.api import objects_pb2, store_pb2

from .errors import Ambiguous, Conflict, Exists, NameConflict, NotFound, StoreError

# One proposal carries at most this many actions (swarmkit's transaction limit).
MAX_CHANGES_PER_PROPOSAL = 200

KINDS = ("node", "service", "task", "cluster", "secret", "config", "network")
NAMED_KINDS = ("service", "secret", "config", "network")  # a name is unique among the objects of its kind
_CREATE = store_pb2.StoreAction.CREATE
_UPDATE = store_pb2.StoreAction.UPDATE
_REMOVE = store_pb2.StoreAction.REMOVE

T = TypeVar("T")


def clone(obj: Message) -> Any:
    """A deep copy of a protobuf object, to edit and write back."""
    copy = type(obj)()
    copy.CopyFrom(obj)
    return copy


def now_ns() -> int:
    return time.time_ns()


class Proposer(Protocol):
    """Replicates a proposal; returns what `MemoryStore.apply` returned for it once applied here."""

    async def propose(self, data: bytes) -> Any: ...


@dataclass(frozen=True, slots=True)
class Change:
    """One applied action. `old` is the object before (None on create); `new` after (None on remove)."""

    action: str  # "create" | "update" | "remove"
    kind: str  # "node" | "service" | "task" | "cluster"
    new: Any
    old: Any

    @property
    def obj(self) -> Any:
        return self.new if self.new is not None else self.old


@dataclass(frozen=True, slots=True)
class Commit:
    """Every change of one proposal has been applied; `index` is its Raft index (0 after a restore)."""

    index: int


class Watch:
    """A subscription to the store's changes. Use as an async iterator or `await watch.get()`; close it when done."""

    def __init__(self, store: MemoryStore, kinds: frozenset[str] | None) -> None:
        self._store = store
        self._kinds = kinds
        self._queue: asyncio.Queue[Change | Commit] = asyncio.Queue()

    def _publish(self, event: Change | Commit) -> None:
        if isinstance(event, Change) and self._kinds is not None and event.kind not in self._kinds:
            return
        self._queue.put_nowait(event)

    async def get(self) -> Change | Commit:
        return await self._queue.get()

    def get_nowait(self) -> Change | Commit | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def drain(self) -> list[Change | Commit]:
        """Everything queued right now, without waiting."""
        events = []
        while not self._queue.empty():
            events.append(self._queue.get_nowait())
        return events

    def close(self) -> None:
        self._store._watches.discard(self)

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> Change | Commit:
        return await self._queue.get()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Tables:
    """The committed objects and their secondary indexes. Mutated only by MemoryStore.apply/restore."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        self.tasks_by_service: dict[str, set[str]] = {}
        self.tasks_by_node: dict[str, set[str]] = {}
        # (service ID, slot number or, for a global service's slot-0 tasks, node ID): a slot's history,
        # so that the updater's one-slot transactions cost the slot, not the service.
        self.tasks_by_slot: dict[tuple[str, int | str], set[str]] = {}
        self.ids_by_name: dict[str, dict[str, str]] = {kind: {} for kind in NAMED_KINDS}
        self.members: dict[int, objects_pb2.RaftMember] = {}

    def put(self, kind: str, obj: Any) -> Any:
        table = self.objects[kind]
        old = table.get(obj.id)
        if old is not None:
            self._unindex(kind, old)
        table[obj.id] = obj
        self._index(kind, obj)
        return old

    def delete(self, kind: str, object_id: str) -> Any:
        old = self.objects[kind].pop(object_id)
        self._unindex(kind, old)
        return old

    def _index(self, kind: str, obj: Any) -> None:
        if kind == "task":
            self.tasks_by_service.setdefault(obj.service_id, set()).add(obj.id)
            self.tasks_by_slot.setdefault(_slot_of(obj), set()).add(obj.id)
            if obj.node_id:
                self.tasks_by_node.setdefault(obj.node_id, set()).add(obj.id)
        elif kind in NAMED_KINDS:
            self.ids_by_name[kind][obj.spec.annotations.name] = obj.id

    def _unindex(self, kind: str, obj: Any) -> None:
        if kind == "task":
            _discard(self.tasks_by_service, obj.service_id, obj.id)
            _discard(self.tasks_by_slot, _slot_of(obj), obj.id)
            if obj.node_id:
                _discard(self.tasks_by_node, obj.node_id, obj.id)
        elif kind in NAMED_KINDS:
            names = self.ids_by_name[kind]
            if names.get(obj.spec.annotations.name) == obj.id:
                del names[obj.spec.annotations.name]


def _slot_of(task: objects_pb2.Task) -> tuple[str, int | str]:
    return (task.service_id, task.slot if task.slot else task.node_id)


def _discard(index: dict[Any, set[str]], key: Any, object_id: str) -> None:
    ids = index.get(key)
    if ids is not None:
        ids.discard(object_id)
        if not ids:
            del index[key]


class ReadView:
    """Live read access to the committed state. Objects returned are the store's own: do not mutate them.

    A view is a window onto the tables, not a snapshot: between two reads separated by an `await`, the
    Raft driver may apply entries, and the second read sees them. Within one synchronous stretch of code
    (no `await`) a view is consistent, because `apply` runs on the same event loop. So: read what one
    decision needs without awaiting in between, and after an await read again (or call `store.view()`
    anew, which is free). A copy per view, as swarmkit's memdb transaction gives, would cost a copy of
    every table for each of the thousands of reads per second the loops make; nothing here needs one.
    The objects themselves never change in place (apply replaces them), so an object read before an
    await stays what it was: a consistent record of that moment, possibly no longer current.
    """

    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def get(self, kind: str, object_id: str) -> Any | None:
        return self._t.objects[kind].get(object_id)

    def list(self, kind: str) -> list[Any]:
        return list(self._t.objects[kind].values())

    def count(self, kind: str) -> int:
        return len(self._t.objects[kind])

    def get_node(self, node_id: str) -> objects_pb2.Node | None:
        return self.get("node", node_id)

    def get_service(self, service_id: str) -> objects_pb2.Service | None:
        return self.get("service", service_id)

    def get_task(self, task_id: str) -> objects_pb2.Task | None:
        return self.get("task", task_id)

    def get_cluster(self) -> objects_pb2.Cluster | None:
        """The cluster object (there is exactly one once the swarm is initialised)."""
        for cluster in self._t.objects["cluster"].values():
            return cluster
        return None

    def nodes(self) -> list[objects_pb2.Node]:
        return self.list("node")

    def services(self) -> list[objects_pb2.Service]:
        return self.list("service")

    def tasks(self) -> list[objects_pb2.Task]:
        return self.list("task")

    def tasks_by_service(self, service_id: str) -> list[objects_pb2.Task]:
        table = self._t.objects["task"]
        return [table[i] for i in self._t.tasks_by_service.get(service_id, ())]

    def tasks_by_node(self, node_id: str) -> list[objects_pb2.Task]:
        table = self._t.objects["task"]
        return [table[i] for i in self._t.tasks_by_node.get(node_id, ())]

    def tasks_in_slot(self, service_id: str, slot: int | str) -> list[objects_pb2.Task]:
        """A slot's tasks: `slot` is the slot number, or the node ID for a global service."""
        table = self._t.objects["task"]
        return [table[i] for i in self._t.tasks_by_slot.get((service_id, slot), ())]

    def service_by_name(self, name: str) -> objects_pb2.Service | None:
        return self.by_name("service", name)

    def by_name(self, kind: str, name: str) -> Any | None:
        """The object of a named kind (service, secret, config) with this name, if any."""
        object_id = self._t.ids_by_name[kind].get(name)
        return None if object_id is None else self._t.objects[kind][object_id]

    def members(self) -> list[objects_pb2.RaftMember]:
        return list(self._t.members.values())

    def get_network(self, network_id: str) -> objects_pb2.Network | None:
        return self.get("network", network_id)

    def networks(self) -> list[objects_pb2.Network]:
        return self.list("network")

    def resolve(self, kind: str, ref: str) -> Any:
        """Find by full ID, then by name, then by unique ID prefix (docker's rules)."""
        if not ref:
            raise NotFound(kind, ref)
        table = self._t.objects[kind]
        exact = table.get(ref)
        if exact is not None:
            return exact
        by_name = [obj for obj in table.values() if _name_of(kind, obj) == ref]
        if len(by_name) == 1:
            return by_name[0]
        if len(by_name) > 1:
            raise Ambiguous(kind, ref, len(by_name))
        by_prefix = [obj for object_id, obj in table.items() if object_id.startswith(ref)]
        if len(by_prefix) == 1:
            return by_prefix[0]
        if len(by_prefix) > 1:
            raise Ambiguous(kind, ref, len(by_prefix))
        raise NotFound(kind, ref)


def _name_of(kind: str, obj: Any) -> str:
    if kind == "node":
        return obj.description.hostname
    if kind in ("service", "cluster", "task", "secret", "config", "network"):
        return obj.annotations.name if kind == "task" else obj.spec.annotations.name
    return ""


class Transaction(ReadView):
    """Stages writes on top of the committed state. Built by MemoryStore.update; never applied in place."""

    def __init__(self, tables: _Tables) -> None:
        super().__init__(tables)
        # (kind, id) -> staged object, or None for a staged removal
        self._staged: dict[tuple[str, str], Any] = {}
        self.actions: list[store_pb2.StoreAction] = []

    def get(self, kind: str, object_id: str) -> Any | None:
        key = (kind, object_id)
        if key in self._staged:
            return self._staged[key]
        return super().get(kind, object_id)

    def list(self, kind: str) -> list[Any]:
        return list(self._overlay(kind, super().list(kind), lambda obj: True))

    def tasks_by_service(self, service_id: str) -> list[objects_pb2.Task]:
        return list(self._overlay("task", super().tasks_by_service(service_id), lambda t: t.service_id == service_id))

    def tasks_by_node(self, node_id: str) -> list[objects_pb2.Task]:
        return list(self._overlay("task", super().tasks_by_node(node_id), lambda t: t.node_id == node_id))

    def tasks_in_slot(self, service_id: str, slot: int | str) -> list[objects_pb2.Task]:
        key = (service_id, slot)
        return list(self._overlay("task", super().tasks_in_slot(service_id, slot), lambda t: _slot_of(t) == key))

    def by_name(self, kind: str, name: str) -> Any | None:
        for obj in self.list(kind):
            if obj.spec.annotations.name == name:
                return obj
        return None

    def _overlay(self, kind: str, committed: Iterable[Any], matches: Callable[[Any], bool]) -> Iterator[Any]:
        if not self._staged:
            yield from committed
            return
        for obj in committed:
            if (kind, obj.id) not in self._staged:
                yield obj
        for (staged_kind, _), obj in self._staged.items():
            if staged_kind == kind and obj is not None and matches(obj):
                yield obj

    # -- writes ----------------------------------------------------------------------------

    def create(self, kind: str, obj: Any) -> Any:
        """Stage a new object. Its meta.created_at/updated_at are stamped now."""
        if self.get(kind, obj.id) is not None:
            raise Exists(kind, obj.id)
        stamp = now_ns()
        obj.meta.created_at = stamp
        obj.meta.updated_at = stamp
        obj.meta.version.index = 0
        self._stage(_CREATE, kind, obj)
        return obj

    def update(self, kind: str, obj: Any) -> Any:
        """Stage a changed copy. obj.meta.version must be the version it was read at."""
        current = self.get(kind, obj.id)
        if current is None:
            raise NotFound(kind, obj.id)
        obj.meta.updated_at = now_ns()
        self._stage(_UPDATE, kind, obj)
        return obj

    def delete(self, kind: str, object_id: str) -> None:
        current = self.get(kind, object_id)
        if current is None:
            raise NotFound(kind, object_id)
        self._stage(_REMOVE, kind, current)
        self._staged[(kind, object_id)] = None

    def _stage(self, action_kind: int, kind: str, obj: Any) -> None:
        action = store_pb2.StoreAction(kind=action_kind)
        getattr(action, kind).CopyFrom(obj)
        self.actions.append(action)
        self._staged[(kind, obj.id)] = obj


class InProcessProposer:
    """Applies proposals at once, with no replication: for unit tests and in-process benchmarks only.

    The daemon always writes through Raft (swarmpy.raft.driver), even with a single manager.
    """

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._index = 0

    async def propose(self, data: bytes) -> Any:
        self._index += 1
        return self._store.apply(self._index, data)


class MemoryStore:
    """See the module docstring. One instance per manager; `apply` is its only mutator."""

    def __init__(self, proposer: Proposer | None = None) -> None:
        self._tables = _Tables()
        self._watches: set[Watch] = set()
        self.proposer: Proposer = proposer if proposer is not None else InProcessProposer(self)
        self.applied_index = 0

    # -- reading ---------------------------------------------------------------------------

    def view(self) -> ReadView:
        return ReadView(self._tables)

    def watch(self, kinds: Iterable[str] | None = None) -> Watch:
        """Subscribe to changes from now on (optionally only of some kinds; Commit events always come)."""
        watch = Watch(self, frozenset(kinds) if kinds is not None else None)
        self._watches.add(watch)
        return watch

    def view_and_watch(self, kinds: Iterable[str] | None = None) -> tuple[ReadView, Watch]:
        """A consistent start for a reconcile loop: the state now, and every change after it."""
        return self.view(), self.watch(kinds)

    # -- writing ---------------------------------------------------------------------------

    async def update(self, fn: Callable[[Transaction], T]) -> T:
        """Run fn against the current state, replicate what it staged, return fn's result once applied.

        Raises StoreError subclasses when the store's rules refuse the write (nothing applied), and the
        proposer's errors (not leader, leadership lost) when it could not be replicated.
        """
        tx = Transaction(self._tables)
        result = fn(tx)
        if not tx.actions:
            return result
        if len(tx.actions) > MAX_CHANGES_PER_PROPOSAL:
            raise StoreError(
                f"a transaction may hold at most {MAX_CHANGES_PER_PROPOSAL} changes, this one has {len(tx.actions)}:"
                " use MemoryStore.batch"
            )
        await self._propose(tx.actions)
        return result

    async def batch(self, fn: Callable[[Batch], None]) -> None:
        """Like update, for many independent changes: they are cut into proposals of at most
        MAX_CHANGES_PER_PROPOSAL actions, replicated concurrently. Each proposal is atomic on its own;
        the first failure is raised after all have finished."""
        batch = Batch(self._tables)
        fn(batch)
        proposals = batch.proposals()
        if not proposals:
            return
        results = await asyncio.gather(*(self._propose(actions) for actions in proposals), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _propose(self, actions: list[store_pb2.StoreAction]) -> None:
        data = store_pb2.StoreProposal(actions=actions).SerializeToString()
        outcome = await self.proposer.propose(data)
        if isinstance(outcome, StoreError):
            raise outcome

    # -- the Raft state machine ------------------------------------------------------------

    def apply(self, index: int, data: bytes) -> StoreError | None:
        """Apply one committed proposal, all or nothing. Returns the refusal, if any, for the proposer."""
        self.applied_index = max(self.applied_index, index)
        if not data:  # a new leader's empty entry
            return None
        try:
            proposal = store_pb2.StoreProposal.FromString(data)
        except DecodeError:
            return StoreError(f"entry {index} is not a store proposal")
        refusal = self._check(proposal)
        if refusal is not None:
            return refusal
        changes = [self._apply_action(index, action) for action in proposal.actions]
        for change in changes:
            self._publish(change)
        self._publish(Commit(index))
        return None

    def _check(self, proposal: store_pb2.StoreProposal) -> StoreError | None:
        """Validate every action against the state it will meet, including earlier actions of the same proposal."""
        seen: dict[tuple[str, str], int | None] = {}  # (kind, id) -> version after earlier actions; None: removed
        names = {kind: dict(ids) for kind, ids in self._tables.ids_by_name.items()}
        for action in proposal.actions:
            kind = action.WhichOneof("target")
            if kind is None:
                return StoreError("store action without an object")
            obj = getattr(action, kind)
            key = (kind, obj.id)
            if key in seen:
                current_version = seen[key]
            else:
                current = self._tables.objects[kind].get(obj.id)
                current_version = None if current is None else current.meta.version.index
            if action.kind == _CREATE:
                if not obj.id:
                    return StoreError(f"{kind} without an ID")
                if current_version is not None:
                    return Exists(kind, obj.id)
                if kind in names:
                    name = obj.spec.annotations.name
                    if names[kind].get(name, obj.id) != obj.id:
                        return NameConflict(kind, name)
                    names[kind][name] = obj.id
                seen[key] = -1  # created in this proposal: later actions must not name a version
            elif action.kind in (_UPDATE, _REMOVE):
                if current_version is None:
                    return NotFound(kind, obj.id)
                if current_version != -1 and obj.meta.version.index != current_version:
                    return Conflict(kind, obj.id, obj.meta.version.index, current_version)
                if action.kind == _REMOVE:
                    seen[key] = None
                    if kind in names:
                        names[kind].pop(obj.spec.annotations.name, None)
                else:
                    seen[key] = -1
                    if kind in names:
                        name = obj.spec.annotations.name
                        if names[kind].get(name, obj.id) != obj.id:
                            return NameConflict(kind, name)
                        names[kind][name] = obj.id
            else:
                return StoreError(f"unknown store action {action.kind}")
        return None

    def _apply_action(self, index: int, action: store_pb2.StoreAction) -> Change:
        kind = action.WhichOneof("target")
        obj = getattr(action, kind)
        if action.kind == _REMOVE:
            old = self._tables.delete(kind, obj.id)
            return Change("remove", kind, None, old)
        stored = clone(obj)  # detach from the proposal message
        stored.meta.version.index = index
        old = self._tables.put(kind, stored)
        return Change("create" if action.kind == _CREATE else "update", kind, stored, old)

    def _publish(self, event: Change | Commit) -> None:
        for watch in list(self._watches):
            watch._publish(event)

    def set_member(self, member: objects_pb2.RaftMember) -> None:
        """Record a Raft member's identity (called when a conf change is applied)."""
        self._tables.members[member.raft_id] = clone(member)

    def remove_member(self, raft_id: int) -> None:
        self._tables.members.pop(raft_id, None)

    def snapshot(self) -> bytes:
        t = self._tables
        return store_pb2.StoreSnapshot(
            nodes=t.objects["node"].values(),
            services=t.objects["service"].values(),
            tasks=t.objects["task"].values(),
            clusters=t.objects["cluster"].values(),
            members=t.members.values(),
            secrets=t.objects["secret"].values(),
            configs=t.objects["config"].values(),
            networks=t.objects["network"].values(),
        ).SerializeToString()

    def restore(self, data: bytes) -> None:
        """Replace everything with a snapshot's content. Watchers get a Commit(0): re-read from a view."""
        snapshot = store_pb2.StoreSnapshot.FromString(data)
        tables = self._tables
        tables.__init__()  # in place: views handed out earlier must see the restored state
        for kind, objects in (
            ("node", snapshot.nodes),
            ("service", snapshot.services),
            ("task", snapshot.tasks),
            ("cluster", snapshot.clusters),
            ("secret", snapshot.secrets),
            ("config", snapshot.configs),
            ("network", snapshot.networks),
        ):
            for obj in objects:
                tables.put(kind, clone(obj))
        for member in snapshot.members:
            tables.members[member.raft_id] = clone(member)
        self._publish(Commit(0))


class Batch(ReadView):
    """Collects independent changes for MemoryStore.batch; each `create`/`update`/`delete` is one action."""

    def __init__(self, tables: _Tables) -> None:
        super().__init__(tables)
        self._tx = Transaction(tables)

    def create(self, kind: str, obj: Any) -> Any:
        return self._tx.create(kind, obj)

    def update(self, kind: str, obj: Any) -> Any:
        return self._tx.update(kind, obj)

    def delete(self, kind: str, object_id: str) -> None:
        self._tx.delete(kind, object_id)

    def proposals(self) -> list[list[store_pb2.StoreAction]]:
        actions = self._tx.actions
        return [actions[i : i + MAX_CHANGES_PER_PROPOSAL] for i in range(0, len(actions), MAX_CHANGES_PER_PROPOSAL)]
