"""The seam between the store and Raft: the store is Raft's state machine, Raft is the store's proposer."""

from __future__ import annotations

import logging
from typing import Any

from swarmpy.api import objects_pb2
from swarmpy.raft.driver import RaftDriver
from swarmpy.raft.messages import ConfChange, ConfChangeType

from .store import MemoryStore

log = logging.getLogger(__name__)


class StoreStateMachine:
    """Feeds committed entries to the store and records members' identities from conf changes."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def apply(self, index: int, data: bytes) -> Any:
        return self.store.apply(index, data)

    def snapshot(self) -> bytes:
        return self.store.snapshot()

    def restore(self, data: bytes) -> None:
        self.store.restore(data)

    def on_conf_change(self, index: int, change: ConfChange) -> None:
        if change.type == ConfChangeType.REMOVE_NODE:
            self.store.remove_member(change.node_id)
            return
        member = objects_pb2.RaftMember.FromString(change.context) if change.context else objects_pb2.RaftMember()
        member.raft_id = change.node_id
        self.store.set_member(member)


class RaftProposer:
    """The store's proposer on a manager: every write is a Raft proposal, answered once applied here."""

    def __init__(self, driver: RaftDriver) -> None:
        self.driver = driver

    async def propose(self, data: bytes) -> Any:
        outcome = await self.driver.propose(data)
        return outcome.result
