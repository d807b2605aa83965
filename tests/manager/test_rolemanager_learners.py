"""The role manager's learners: promoted once caught up; reported, then removed, when they never can be
(swarmpy/manager/rolemanager.py). A fake driver and store, and an injected clock."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from swarmpy.api import objects_pb2
from swarmpy.manager import rolemanager
from swarmpy.manager.rolemanager import LEARNER_GIVE_UP, LEARNER_REPORT_AFTER, RoleManager
from swarmpy.raft.core import PeerStatus, Status
from swarmpy.raft.errors import ProposalDropped
from swarmpy.raft.messages import ConfChangeType, Role

LEADER, LEARNER = 1, 4


@dataclass
class FakeDriver:
    last_index: int = 100
    learner_match: int = 100
    learner_silent_ticks: int = 0
    learners: tuple[int, ...] = (LEARNER,)
    is_leader: bool = True
    refuse: bool = False
    node_id: int = LEADER
    config: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(max_learner_lag=10, election_tick=10))
    proposed: list = field(default_factory=list)

    def status(self) -> Status:
        progress = {LEADER: PeerStatus(self.last_index, self.last_index + 1, "replicate", 0)}
        for learner in self.learners:
            progress[learner] = PeerStatus(self.learner_match, self.learner_match + 1, "probe", self.learner_silent_ticks)
        return Status(id=LEADER, term=2, vote=LEADER, role=Role.LEADER if self.is_leader else Role.FOLLOWER,
                      leader=LEADER, commit=self.last_index, applied=self.last_index, last_index=self.last_index,
                      voters=(1, 2, 3), learners=self.learners, progress=progress if self.is_leader else {})

    async def propose_conf_change(self, change):
        if self.refuse:
            raise ProposalDropped("a membership change is in flight")
        self.proposed.append(change)
        if change.node_id in self.learners:
            self.learners = tuple(n for n in self.learners if n != change.node_id)  # applied at once


class FakeStore:
    """The members and nodes the role manager reads, and its node updates (nodes=[] keeps the role
    passes out of the way of the learner tests)."""

    def __init__(self) -> None:
        self._members = [objects_pb2.RaftMember(raft_id=LEARNER, node_id="node-4", addr="10.0.0.4:2377")]
        self.nodes = {"node-4": objects_pb2.Node(
            id="node-4", role=objects_pb2.MANAGER, spec=objects_pb2.NodeSpec(desired_role=objects_pb2.MANAGER),
            manager_status=objects_pb2.ManagerStatus(raft_id=LEARNER, addr="10.0.0.4:2377"))}

    def view(self):
        return SimpleNamespace(members=lambda: list(self._members), nodes=lambda: [])

    async def update(self, change):
        tx = SimpleNamespace(get=lambda kind, node_id: self.nodes.get(node_id),
                             update=lambda kind, node: self.nodes.__setitem__(node.id, node))
        change(tx)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup():
    driver, clock = FakeDriver(), Clock()
    return driver, clock, RoleManager(FakeStore(), driver, clock=clock)


def node_4(manager: RoleManager) -> objects_pb2.Node:
    return manager._store.nodes["node-4"]


async def test_a_caught_up_learner_is_promoted(setup):
    driver, _clock, manager = setup
    await manager._promote_caught_up_learners()
    assert [(c.type, c.node_id) for c in driver.proposed] == [(ConfChangeType.ADD_NODE, LEARNER)]


@pytest.mark.parametrize("stuck", ["behind", "silent"])
async def test_a_learner_never_promotable_is_reported_then_removed_after_the_give_up_time(setup, stuck, caplog):
    driver, clock, manager = setup
    if stuck == "behind":
        driver.learner_match = 50  # 50 entries behind, 10 allowed
    else:
        driver.learner_silent_ticks = 30  # not heard from within an election timeout
    caplog.set_level(logging.WARNING, logger=rolemanager.__name__)
    await manager._promote_caught_up_learners()  # first seen now
    clock.now += LEARNER_REPORT_AFTER - 1
    await manager._promote_caught_up_learners()
    assert not caplog.records and not driver.proposed
    clock.now += 1
    await manager._promote_caught_up_learners()
    await manager._promote_caught_up_learners()
    reports = [r.getMessage() for r in caplog.records]
    assert len(reports) == 1 and "node-4" in reports[0] and "cannot be promoted" in reports[0]  # once
    clock.now += LEARNER_GIVE_UP - LEARNER_REPORT_AFTER - 1
    await manager._promote_caught_up_learners()
    assert not driver.proposed
    clock.now += 1
    await manager._promote_caught_up_learners()
    assert [(c.type, c.node_id) for c in driver.proposed] == [(ConfChangeType.REMOVE_NODE, LEARNER)]
    removed = [r.getMessage() for r in caplog.records if "removed from the Raft group" in r.getMessage()]
    assert len(removed) == 1 and "made a worker" in removed[0]
    # Its node is made a worker, asked and actual, with no manager status left to show
    node = node_4(manager)
    assert (node.role, node.spec.desired_role) == (objects_pb2.WORKER, objects_pb2.WORKER)
    assert not node.HasField("manager_status")


async def test_a_refused_removal_is_retried_on_a_later_pass(setup):
    driver, clock, manager = setup
    driver.learner_match = 0
    await manager._promote_caught_up_learners()
    clock.now += LEARNER_GIVE_UP
    driver.refuse = True
    await manager._promote_caught_up_learners()
    assert driver.learners == (LEARNER,)
    assert node_4(manager).role == objects_pb2.MANAGER  # not demoted while still a member
    driver.refuse = False
    await manager._promote_caught_up_learners()
    assert driver.learners == () and driver.proposed[0].type is ConfChangeType.REMOVE_NODE
    assert node_4(manager).role == objects_pb2.WORKER


async def test_a_learner_that_catches_up_late_is_promoted_not_removed(setup):
    driver, clock, manager = setup
    driver.learner_match = 0
    await manager._promote_caught_up_learners()
    clock.now += LEARNER_GIVE_UP - 1
    await manager._promote_caught_up_learners()
    # Still waiting: its node stays a manager, asked and actual
    assert node_4(manager).role == objects_pb2.MANAGER and node_4(manager).spec.desired_role == objects_pb2.MANAGER
    driver.learner_match = driver.last_index
    clock.now += 1
    await manager._promote_caught_up_learners()
    assert [c.type for c in driver.proposed] == [ConfChangeType.ADD_NODE]


async def test_a_new_leadership_times_its_learners_afresh(setup):
    driver, clock, manager = setup
    driver.learner_match = 0
    await manager._promote_caught_up_learners()
    clock.now += LEARNER_GIVE_UP - 1
    driver.is_leader = False  # lost leadership, won it back later: the wait starts again
    await manager._promote_caught_up_learners()
    driver.is_leader = True
    await manager._promote_caught_up_learners()
    clock.now += LEARNER_GIVE_UP - 1
    await manager._promote_caught_up_learners()
    assert not driver.proposed
    clock.now += 1
    await manager._promote_caught_up_learners()
    assert [c.type for c in driver.proposed] == [ConfChangeType.REMOVE_NODE]
