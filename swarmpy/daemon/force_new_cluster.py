"""`swarm init --force-new-cluster`: make a surviving manager the only member of a new Raft group.

When most managers are lost for good, quorum can never return. This rewrites the survivor's Raft data:
its state -- the last snapshot plus every entry in its log, as etcd's force-new-cluster does, since a
write this manager holds may have been acknowledged by a leader that counted it -- becomes a snapshot
whose membership is this manager alone. The other managers stay in the store as nodes, demoted to
workers, so `node ls` shows what happened and `node rm` can clean up.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from swarmpy.api import objects_pb2
from swarmpy.manager.store import MemoryStore
from swarmpy.manager.store.memory import InProcessProposer, clone
from swarmpy.raft.encryption import RecordCipher
from swarmpy.raft.messages import ConfState, EntryType, HardState, Snapshot, SnapshotMeta
from swarmpy.raft.wal import DiskStorage

log = logging.getLogger(__name__)


def rebuild_raft_as_sole_member(
    raft_dir: Path, raft_id: int, node_id: str, advertise_addr: str, cipher: RecordCipher | None = None
) -> int:
    """Rewrite `raft_dir` in place (read and written with `cipher`, the manager's Raft key); returns the
    index of the new snapshot. Blocking: call in a thread."""
    old = DiskStorage(str(raft_dir), cipher=cipher)
    try:
        store = MemoryStore()
        store.proposer = InProcessProposer(store)
        snapshot = old.snapshot()
        if not snapshot.empty:
            store.restore(snapshot.data)
        last_index = old.last_index()
        term = old.hard_state.term
        for entry in old.entries(old.first_index(), last_index + 1) if last_index >= old.first_index() else []:
            if entry.type == EntryType.NORMAL:
                store.apply(entry.index, entry.data)
        last_term = old.term(last_index) if last_index else 0
    finally:
        old.close()

    _keep_only_this_manager(store, raft_id, node_id, advertise_addr)
    index = max(last_index, 1)
    new_snapshot = Snapshot(
        meta=SnapshotMeta(index=index, term=max(last_term, 1), conf=ConfState(voters=(raft_id,))),
        data=store.snapshot(),
    )
    staging = raft_dir.with_name(raft_dir.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    fresh = DiskStorage(str(staging), cipher=cipher)
    try:
        fresh.save(snapshot=new_snapshot, hard_state=HardState(term=max(term, 1), vote=raft_id, commit=index))
    finally:
        fresh.close()
    backup = raft_dir.with_name(raft_dir.name + ".before-force-new-cluster")
    shutil.rmtree(backup, ignore_errors=True)
    raft_dir.rename(backup)
    staging.rename(raft_dir)
    log.warning("forced a new cluster: Raft state rewritten at index %d with this manager alone (old data in %s)",
                index, backup)
    return index


def _keep_only_this_manager(store: MemoryStore, raft_id: int, node_id: str, advertise_addr: str) -> None:
    tables = store._tables  # a private rebuild before any Raft exists: no proposal can carry this
    tables.members = {raft_id: objects_pb2.RaftMember(raft_id=raft_id, node_id=node_id, addr=advertise_addr)}
    for node in list(tables.objects["node"].values()):
        if node.id == node_id or node.role != objects_pb2.MANAGER:
            continue
        demoted = clone(node)
        demoted.role = objects_pb2.WORKER
        demoted.spec.desired_role = objects_pb2.WORKER
        demoted.ClearField("manager_status")
        tables.put("node", demoted)
