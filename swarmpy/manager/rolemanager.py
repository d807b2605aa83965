"""The role manager: keeps nodes' roles and the Raft membership in step with what users asked (leader only).

Theory of operation
-------------------
A node's `spec.desired_role` is what `node promote/demote` asked; `role` is what it is now, and it is
the role its next certificate carries (the CA signs `role`, never `desired_role`). This loop moves
`role` toward `desired_role`, in the order that keeps the cluster safe:

- promotion: `role` becomes MANAGER at once. The node hears of it in its session, renews its
  certificate (now a manager's) and asks the leader to join the Raft group.
- demotion: the node leaves the Raft group first (a Raft REMOVE, which the core refuses if the remaining
  reachable members would not make a quorum); only then does `role` become WORKER, so the node is never
  a voter holding a worker's certificate. If the node to demote is this leader, leadership is handed to
  another member first; the new leader finishes the job.

- joining: a manager joins the Raft group as a learner (a non-voting member, raftnet/servicer.py Join)
  and this loop promotes it to a voter (Raft ADD_NODE of the learner) once the leader's progress shows
  its log within `max_learner_lag` entries of the leader's and it answered within an election timeout;
  the core refuses an earlier promotion. While learners exist the loop passes every
  MIN_PASS_INTERVAL. A learner whose node is no longer meant to be a manager is removed.
  A learner that is still not promotable LEARNER_REPORT_AFTER seconds after this leader first saw it
  (it never catches up, or it does not answer) is reported with its lag, and after LEARNER_GIVE_UP
  seconds it is removed from the Raft group: it counts toward no quorum, but the leader keeps
  replicating to it (snapshots, for one far behind) for nothing. Its node becomes a worker (desired
  and actual role): `node promote` tries again.

The loop also keeps each manager's `manager_status` (leader flag, reachability) current, for `node ls`.
A learner's reachability is UNKNOWN ("Unknown" in `node ls`, "unknown" in the Engine API): docker's
own value for a manager whose Raft state the leader cannot yet vouch for; it becomes Reachable when the
learner is promoted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from swarmpy.api import objects_pb2
from swarmpy.raft.driver import RaftDriver
from swarmpy.raft.errors import ConfChangeRefused, ProposalDropped, RaftError
from swarmpy.raft.messages import ConfChange, ConfChangeType

from .store import Commit, Conflict, MemoryStore
from .store.memory import clone

log = logging.getLogger(__name__)

MANAGER, WORKER = objects_pb2.MANAGER, objects_pb2.WORKER
REACHABLE = objects_pb2.ManagerStatus.REACHABLE
UNREACHABLE = objects_pb2.ManagerStatus.UNREACHABLE
UNKNOWN = objects_pb2.ManagerStatus.UNKNOWN
STATUS_INTERVAL = 1.0  # seconds between reachability checks
# At least this long between two passes: each is a walk over every node, and a swarm of 1,000 joining
# nodes commits many times a second (a pass per commit was a tenth of the leader's loop during joins).
MIN_PASS_INTERVAL = 0.2
RETRY_DELAY = 1.0
LEARNER_REPORT_AFTER = 30.0  # seconds a learner may stay unpromotable before it is reported
LEARNER_GIVE_UP = 240.0  # ... and before it is removed from the Raft group


class RoleManager:
    def __init__(self, store: MemoryStore, driver: RaftDriver, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._driver = driver
        self._clock = clock  # injected so the tests can move time
        # Learner raft id -> when this leader first saw it waiting, and whether it was reported yet.
        self._learner_since: dict[int, float] = {}
        self._learner_reported: set[int] = set()

    async def run(self) -> None:
        watch = self._store.watch(["node"])
        try:
            loop = asyncio.get_running_loop()
            while True:
                passed = loop.time()
                await self._reconcile_roles()
                await self._promote_caught_up_learners()
                await self._refresh_manager_status()
                await asyncio.sleep(max(0.0, passed + MIN_PASS_INTERVAL - loop.time()))
                if not self._driver.status().learners:  # (while one catches up, a pass every MIN_PASS_INTERVAL)
                    try:
                        async with asyncio.timeout(STATUS_INTERVAL):
                            while not isinstance(await watch.get(), Commit):
                                pass
                    except TimeoutError:
                        pass
                watch.drain()
        finally:
            watch.close()

    # -- roles ----------------------------------------------------------------------------------

    async def _reconcile_roles(self) -> None:
        for node in self._store.view().nodes():
            if node.spec.desired_role == MANAGER and node.role == WORKER:
                await self._set_role(node.id, MANAGER)
            elif node.spec.desired_role == WORKER and node.role == MANAGER:
                await self._demote(node)

    async def _demote(self, node: objects_pb2.Node) -> None:
        raft_id = self._raft_id_of(node)
        status = self._driver.status()
        if raft_id and raft_id in status.learners:
            # Demoted while still catching up: a learner counts toward no quorum, so it just goes.
            if not await self._remove_from_raft(node, raft_id, "learner"):
                return
        elif raft_id and raft_id in status.voters:
            if raft_id == self._driver.node_id:
                await self._hand_over_leadership()
                return
            if not await self._remove_from_raft(node, raft_id, "member"):
                return
        await self._set_role(node.id, WORKER)

    async def _remove_from_raft(self, node: objects_pb2.Node, raft_id: int, kind: str) -> bool:
        """Propose the removal; False (after a pause, to be retried on a later pass) when it was refused."""
        try:
            await self._driver.propose_conf_change(ConfChange(ConfChangeType.REMOVE_NODE, raft_id))
        except (ConfChangeRefused, ProposalDropped) as exc:
            log.warning("cannot demote node %s yet: %s", node.id, exc)
            await asyncio.sleep(RETRY_DELAY)
            return False
        log.info("node %s left the Raft group (%s %x)", node.id, kind, raft_id)
        return True

    async def _hand_over_leadership(self) -> None:
        status = self._driver.status()
        candidates = [
            peer for peer, progress in status.progress.items()
            if peer != self._driver.node_id and peer in status.voters and progress.match == status.last_index
        ] or [peer for peer in status.voters if peer != self._driver.node_id]
        if not candidates:
            log.warning("this leader is to be demoted but no other manager can take over")
            await asyncio.sleep(RETRY_DELAY)
            return
        log.info("handing leadership to member %x before demoting this manager", candidates[0])
        try:
            await self._driver.transfer_leadership(candidates[0])
        except RaftError as exc:
            log.warning("leadership transfer to %x failed: %s", candidates[0], exc)
            await asyncio.sleep(RETRY_DELAY)

    def _raft_id_of(self, node: objects_pb2.Node) -> int:
        for member in self._store.view().members():
            if member.node_id == node.id:
                return member.raft_id
        return node.manager_status.raft_id

    async def _set_role(self, node_id: str, role: int, desired_too: bool = False) -> None:
        """Make `role` the node's role (and, with `desired_too`, also the one asked for)."""
        def update(tx: Any) -> None:
            current = tx.get("node", node_id)
            if current is None or (current.role == role and (not desired_too or current.spec.desired_role == role)):
                return
            node = clone(current)
            node.role = role
            if desired_too:
                node.spec.desired_role = role
            if role == WORKER:
                node.ClearField("manager_status")
            tx.update("node", node)

        try:
            await self._store.update(update)
        except Conflict:
            return  # changed meanwhile: the next pass looks again
        log.info("node %s is now a %s", node_id, "manager" if role == MANAGER else "worker")

    # -- learners -------------------------------------------------------------------------------

    async def _promote_caught_up_learners(self) -> None:
        status = self._driver.status()
        if not status.learners or not self._driver.is_leader:
            # (A new leader times its learners afresh: it cannot know how long they waited before.)
            self._learner_since.clear()
            self._learner_reported.clear()
            return
        for gone in set(self._learner_since) - set(status.learners):  # promoted or removed
            del self._learner_since[gone]
            self._learner_reported.discard(gone)
        members = {m.raft_id: m for m in self._store.view().members()}
        max_lag = self._driver.config.max_learner_lag
        now = self._clock()
        for learner in status.learners:
            since = self._learner_since.setdefault(learner, now)
            progress = status.progress.get(learner)
            member = members.get(learner)
            if progress is None or member is None:
                continue
            lag = status.last_index - progress.match
            if lag > max_lag or progress.ticks_since_heard >= self._driver.config.election_tick:
                # Still catching up (or silent): the core would refuse. Give up on one that never does.
                await self._check_stuck_learner(learner, member, now - since, lag, progress.ticks_since_heard)
                continue
            try:
                # The member's identity rides along, as on its ADD_LEARNER: the store keeps it.
                await self._driver.propose_conf_change(
                    ConfChange(ConfChangeType.ADD_NODE, learner, member.SerializeToString())
                )
            except RaftError as exc:  # refused, or a change in flight, or leadership moved: the next pass retries
                log.info("learner %x not promoted yet: %s", learner, exc)
                continue
            log.info("manager %s (raft id %x) caught up and is now a voting member", member.node_id, learner)

    async def _check_stuck_learner(
        self, learner: int, member: objects_pb2.RaftMember, waited: float, lag: int, silent_ticks: int
    ) -> None:
        why = f"{lag} entries behind (at most {self._driver.config.max_learner_lag}), last heard {silent_ticks} ticks ago"
        if waited >= LEARNER_GIVE_UP:
            try:
                await self._driver.propose_conf_change(ConfChange(ConfChangeType.REMOVE_NODE, learner))
            except RaftError as exc:  # a change in flight, or leadership moved: the next pass retries
                log.warning("cannot remove learner %x (manager %s) yet: %s", learner, member.node_id, exc)
                return
            log.warning("manager %s (raft id %x) removed from the Raft group: still a learner after %.0f s, "
                        "never promotable (%s); its node is made a worker (`node promote` to try again)",
                        member.node_id, learner, waited, why)
            # Left a manager, it would show as an unreachable manager that never was one, and its
            # agent would ask to join again at once.
            await self._set_role(member.node_id, WORKER, desired_too=True)
        elif waited >= LEARNER_REPORT_AFTER and learner not in self._learner_reported:
            self._learner_reported.add(learner)
            log.warning("manager %s (raft id %x) has been a learner for %.0f s and cannot be promoted: %s; "
                        "it is removed if still so after %.0f s", member.node_id, learner, waited, why, LEARNER_GIVE_UP)

    # -- manager status -------------------------------------------------------------------------

    async def _refresh_manager_status(self) -> None:
        status = self._driver.status()
        reachable_within = self._driver.config.election_tick
        members = {m.node_id: m for m in self._store.view().members()}
        changed: list[objects_pb2.Node] = []
        for node in self._store.view().nodes():
            member = members.get(node.id)
            if member is not None and member.raft_id in status.learners:
                wanted = objects_pb2.ManagerStatus(
                    raft_id=member.raft_id, addr=member.addr or node.manager_status.addr, leader=False,
                    reachability=UNKNOWN,  # catching up as a learner; see the module docstring
                )
                if node.manager_status != wanted:
                    updated = clone(node)
                    updated.manager_status.CopyFrom(wanted)
                    changed.append(updated)
                continue
            if member is None or member.raft_id not in status.voters:
                # A manager that was a member and is no longer (it left with --force): it answers nobody.
                gone = node.role == MANAGER and node.manager_status.raft_id != 0
                if gone and (node.manager_status.leader or node.manager_status.reachability != UNREACHABLE):
                    updated = clone(node)
                    updated.manager_status.leader = False
                    updated.manager_status.reachability = UNREACHABLE
                    changed.append(updated)
                continue
            is_leader = member.raft_id == status.id
            progress = status.progress.get(member.raft_id)
            reachable = is_leader or (progress is not None and progress.ticks_since_heard <= reachable_within)
            wanted = objects_pb2.ManagerStatus(
                raft_id=member.raft_id,
                addr=member.addr or node.manager_status.addr,
                leader=is_leader,
                reachability=REACHABLE if reachable else UNREACHABLE,
            )
            if node.manager_status != wanted:
                updated = clone(node)
                updated.manager_status.CopyFrom(wanted)
                changed.append(updated)
        if not changed:
            return

        def update(tx: Any) -> None:
            for node in changed:
                tx.update("node", node)

        try:
            await self._store.update(update)
        except Conflict:
            pass  # a node changed meanwhile; the next pass recomputes


def demotion_refusal(driver: RaftDriver, store: MemoryStore, node: objects_pb2.Node) -> str | None:
    """Why demoting `node` now would lose quorum, or None if it is safe (checked before accepting it)."""
    raft_id = 0
    for member in store.view().members():
        if member.node_id == node.id:
            raft_id = member.raft_id
    status = driver.status()
    if not raft_id or raft_id not in status.voters:
        return None
    remaining = [v for v in status.voters if v != raft_id]
    needed = len(remaining) // 2 + 1
    reachable = sum(
        1
        for v in remaining
        if v == status.id
        or (v in status.progress and status.progress[v].ticks_since_heard <= driver.config.election_tick)
    )
    if reachable < needed:
        return (
            f"can't demote node {node.id}: the swarm would lose quorum ({reachable} of the {len(remaining)}"
            f" remaining managers are reachable, {needed} are needed)"
        )
    return None
