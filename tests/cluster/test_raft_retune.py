"""Changing the Raft timing of a running 3-manager swarm (`swarm update --raft-*`): every manager follows,
writes go on, and nobody calls an election -- no leader change, and the Raft term on disk afterwards is
the one the first leader was elected in."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from bench.chaos_bench import Stubs, current_leader, open_raft_storage, stop_all
from bench.cluster_harness import ManagerProcess, start_managers
from bench.failover_bench import leadership_times, tiny_spec
from swarmpy.api import control_pb2

pytestmark = [pytest.mark.timeout(150)]

# (flags, the timing every manager must log): slower heartbeats and elections, a longer tick, the defaults.
CHANGES = [
    (("--raft-heartbeat-tick", "3", "--raft-election-tick", "30"), (0.1, 3, 30)),
    (("--raft-tick", "200ms", "--raft-heartbeat-tick", "1", "--raft-election-tick", "10"), (0.2, 1, 10)),
    (("--raft-tick", "100ms"), (0.1, 1, 10)),
]
APPLIED_WITHIN = 5.0
FIRST_TERM = 2  # `swarm init`: the bootstrap entries are term 1 (raft core), the first election term 2
OBSERVE = 3.0  # seconds of writes under each timing (more than an election timeout of each)
LEADERSHIP_LINE = re.compile(r"msg=node [0-9a-f]+: (became leader|lost leadership)", re.M)


def timing_lines(manager: ManagerProcess, timing: tuple[float, int, int]) -> int:
    tick, heartbeat, election = timing
    line = f"raft timing now tick {tick:.3f} s, heartbeat {heartbeat} ticks, election {election} ticks"
    return manager.log_path.read_text(errors="replace").count(line)


def leadership_lines(managers: list[ManagerProcess]) -> list[str]:
    return [m.name + ": " + hit.group(0) for m in managers
            for hit in LEADERSHIP_LINE.finditer(m.log_path.read_text(errors="replace"))]


def disk_term(manager: ManagerProcess) -> int:
    storage = open_raft_storage(manager.data_dir)
    try:
        return storage.hard_state.term
    finally:
        storage.close()


async def test_retiming_a_running_swarm_applies_everywhere_without_an_election(tmp_path):
    cluster = await asyncio.to_thread(start_managers, 3)
    stubs = Stubs(cluster.managers)
    try:
        leader = await current_leader(cluster, stubs)
        follower = next(m for m in cluster.managers if m is not leader)
        before = leadership_lines(cluster.managers)
        writes = 0
        for flags, timing in CHANGES:
            seen = {m.name: timing_lines(m, timing) for m in cluster.managers}
            updated = await asyncio.to_thread(follower.cli, "swarm", "update", *flags)
            assert updated.returncode == 0, updated.stderr
            deadline = time.monotonic() + APPLIED_WITHIN
            while any(timing_lines(m, timing) <= seen[m.name] for m in cluster.managers):
                assert time.monotonic() < deadline, f"not every manager logged {timing} within {APPLIED_WITHIN} s"
                await asyncio.sleep(0.1)
            until = time.monotonic() + OBSERVE
            while time.monotonic() < until:
                writes += 1
                request = control_pb2.CreateServiceRequest(spec=tiny_spec(f"retune-{writes}"))
                await stubs.control[writes % 3].CreateService(request, timeout=10)  # raises if refused
                await asyncio.sleep(0.2)
        after = leadership_lines(cluster.managers)
        assert after == before, f"leadership changed while retiming: {after[len(before):]}"
        assert (await current_leader(cluster, stubs)) is leader
        elected_in = len([t for m in cluster.managers for t in leadership_times(m.log_path.read_text())])
        await stubs.close()
        await asyncio.to_thread(stop_all, cluster.managers)
        terms = {m.name: await asyncio.to_thread(disk_term, m) for m in cluster.managers}
        print(f"{writes} writes through 3 timing changes; terms on disk {terms}; {elected_in} elections in the logs")
        assert len(set(terms.values())) == 1, terms
        assert elected_in == 1, "the swarm's first leader was the only one"
        # Pre-vote keeps a manager that could not win from raising the term; a real election would have.
        assert set(terms.values()) == {FIRST_TERM}, terms
    finally:
        await stubs.close()
        await asyncio.to_thread(cluster.stop, tmp_path / "logs")

