"""The failover bench's bookkeeping: reading elections from daemon logs, election timeouts, the leader."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from bench.failover_bench import (
    Spread,
    first_election_after,
    first_success,
    in_election_timeouts,
    leader_hostname,
    leadership_times,
)
from swarmpy.api import objects_pb2


def stamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


LOG = """\
time=2026-11-26 12:00:00,100 level=INFO module=swarmpy.raft.driver msg=node 2: became leader
time=2026-11-26 12:00:05,000 level=INFO module=swarmpy.manager.manager msg=became leader: starting dispatcher
time=2026-11-26 12:00:05,250 level=INFO module=swarmpy.raft.driver msg=node 2: lost leadership (leader now 3)
time=2026-11-26 12:00:07,400 level=INFO module=swarmpy.raft.driver msg=node 2: became leader
"""


def test_only_the_raft_drivers_leadership_lines_count() -> None:
    assert leadership_times(LOG) == [stamp("2026-11-26 12:00:00,100"), stamp("2026-11-26 12:00:07,400")]


def test_the_shared_raft_cores_leadership_lines_count_too() -> None:
    line = "time=2026-11-26 12:00:00,100 level=INFO module=swarmpy.raft.driver_core msg=node 2: became leader\n"
    assert leadership_times(line) == [stamp("2026-11-26 12:00:00,100")]


def test_the_first_election_after_the_kill_across_survivors() -> None:
    other = "time=2026-11-26 12:00:06,900 level=INFO module=swarmpy.raft.driver msg=node 3: became leader\n"
    kill = stamp("2026-11-26 12:00:05,000")
    assert first_election_after(kill, [LOG, other]) == pytest.approx(1.9, abs=1e-6)
    assert first_election_after(kill + 10, [LOG, other]) is None


def test_election_timeouts_are_ten_ticks() -> None:
    assert in_election_timeouts(15.0, tick=1.0) == pytest.approx(1.5)
    assert in_election_timeouts(1.5, tick=0.1) == pytest.approx(1.5)
    assert Spread.of([3.0, 1.0, 2.0]) == Spread(2.0, 1.0, 3.0)


def manager(hostname: str, leader: bool) -> objects_pb2.Node:
    node = objects_pb2.Node(role=objects_pb2.MANAGER)
    node.description.hostname = hostname
    node.manager_status.leader = leader
    return node


def test_the_leader_is_known_only_when_exactly_one_manager_claims_it() -> None:
    assert leader_hostname([manager("m1", False), manager("m2", True)]) == "m2"
    assert leader_hostname([manager("m1", True), manager("m2", True)]) is None
    assert leader_hostname([manager("m1", False)]) is None


async def test_first_success_is_the_earliest_survivor_and_stops_the_others() -> None:
    calls: dict[str, int] = {"slow": 0, "fast": 0}

    async def attempt(client: str) -> bool:  # the fast survivor succeeds at its third try
        calls[client] += 1
        return client == "fast" and calls[client] == 3

    await first_success(["slow", "fast"], attempt, interval=0.001)  # type: ignore[list-item]
    tries = dict(calls)
    await asyncio.sleep(0.01)
    assert tries["fast"] == 3 and calls == tries  # nobody polls after the first success
