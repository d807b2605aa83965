"""Cluster settings each manager applies to itself: Raft snapshots and the protection of its Raft key.

Theory of operation
-------------------
Every manager (not only the leader) runs `follow_cluster_settings`: it reads the cluster object now and
after every change to it, and applies what concerns this manager locally:

* spec.raft.snapshot_interval and log_entries_for_slow_followers become the Raft driver's, and
  keep_old_snapshots the WAL's (how many older snapshot files it keeps), so `swarm update
  --snapshot-interval/--max-snapshots` takes effect on every manager without a restart;
* spec.encryption_config.auto_lock_managers and the unlock key go to `protect_raft_key`, which stores
  this manager's Raft key wrapped by the key (autolock on, or a rotated key) or with its TLS key (off).

Applying is idempotent, so a repeated or replayed change does nothing new.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from swarmpy.manager.store import Commit
from swarmpy.manager.store.memory import MemoryStore

log = logging.getLogger(__name__)

ProtectRaftKey = Callable[[bool, str], Awaitable[None]]  # (autolock, unlock key)


async def follow_cluster_settings(store: MemoryStore, driver, storage, protect_raft_key: ProtectRaftKey | None) -> None:
    view, watch = store.view_and_watch(["cluster"])
    applied: tuple | None = None
    protected: tuple | None = None
    with watch:
        while True:
            cluster = view.get_cluster()
            if cluster is not None:
                raft = cluster.spec.raft
                settings = (raft.snapshot_interval, raft.log_entries_for_slow_followers, raft.keep_old_snapshots)
                if settings != applied:
                    driver.set_snapshot_policy(raft.snapshot_interval or driver.config.snapshot_interval,
                                               raft.log_entries_for_slow_followers)
                    storage.keep_old_snapshots = raft.keep_old_snapshots
                    applied = settings
                    log.info("raft settings: snapshot every %d entries, keep %d entries for slow followers and %d old"
                             " snapshots", driver.config.snapshot_interval, raft.log_entries_for_slow_followers,
                             raft.keep_old_snapshots)
                encryption = (cluster.spec.encryption_config.auto_lock_managers, cluster.unlock_key)
                if protect_raft_key is not None and encryption != protected:
                    await protect_raft_key(*encryption)
                    protected = encryption
            event = await watch.get()
            while not isinstance(event, Commit):
                event = await watch.get()
