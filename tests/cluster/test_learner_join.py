"""A manager that joins far behind catches up as a learner (a non-voting Raft member) and is promoted only
then: the swarm keeps acknowledging writes throughout, with no election.

Two real managers hold a log of a few thousand entries (and a snapshot: the log is compacted, so the
newcomer is caught up by snapshot, ~20 MB of configs). A third joins while a writer keeps creating
configs on the leader. Asserted: during the catch-up the newcomer is a learner (`node ls` shows it
"Unknown", docker's reachability for a manager the leader cannot vouch for yet) and not a voter; it then
becomes "Reachable"; `swarm join` returned only once it was a voter; the leader never changed; and the
longest gap between two acknowledged writes during the join stays under WRITE_GAP_BOUND seconds.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from swarmpy.api import control_pb2, objects_pb2

from .conftest import ELECTION_TIMEOUT, form_cluster, wait_until

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

PREFILL = 2_000  # configs written before the join: each one Raft entry
CONFIG_BYTES = 10_000
# An election alone takes up to ELECTION_TIMEOUT (2 s) plus a round trip; a healthy leader on this loaded
# 2-core machine acknowledges a write every few tens of milliseconds.
WRITE_GAP_BOUND = ELECTION_TIMEOUT / 2


def create_config(manager, name: str, size: int = CONFIG_BYTES) -> None:
    spec = objects_pb2.ConfigSpec(data=name.encode().ljust(size, b"."))
    spec.annotations.name = name
    manager.rpc("CreateConfig", control_pb2.CreateConfigRequest(spec=spec), timeout=30.0)


def create_config_despite_elections(manager, name: str) -> None:
    for _ in range(20):
        try:
            create_config(manager, name)
            return
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
                return  # a retry of one that was applied
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            time.sleep(0.5)
    raise AssertionError(f"could not create {name}")


class Writer(threading.Thread):
    """Creates small configs one after the other on `manager`, recording when each was acknowledged."""

    def __init__(self, manager) -> None:
        super().__init__(daemon=True)
        self.manager = manager
        self.acks: list[float] = []
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                create_config(self.manager, f"during-{n}", size=100)
            except Exception as exc:  # noqa: BLE001 -- recorded: any refusal is a finding
                self.errors.append(f"{time.monotonic():.2f}: {exc}")
                time.sleep(0.05)
                continue
            self.acks.append(time.monotonic())

    def longest_gap(self, start: float, end: float) -> float:
        times = [start] + [t for t in self.acks if start <= t <= end] + [end]
        return max(b - a for a, b in zip(times, times[1:]))


@pytest.fixture
def cluster(docker, tmp_path, busybox_image):
    cluster = form_cluster(tmp_path, docker, managers=2, workers=0)
    yield cluster
    cluster.teardown()


def test_a_manager_far_behind_joins_as_a_learner_without_costing_availability(cluster):
    m1 = cluster.wait_leader()
    m1.ok("swarm", "update", "--snapshot-interval", "500")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: create_config_despite_elections(m1, f"prefill-{i}"), range(PREFILL)))
    m1 = cluster.wait_leader()  # (the prefill may have seen an election on a loaded machine)
    leader_id = m1.node_id

    writer = Writer(m1)
    writer.start()
    seen_learner = threading.Event()
    leaders: set[str] = set()
    watching = threading.Event()

    def watch() -> None:
        # What `node ls` shows (the leader's node objects) and who leads, every 50 ms through the join.
        founders = {cluster["m1"].node_id, cluster["m2"].node_id}
        while not watching.is_set():
            leaders.add(m1.leader_node_id())
            for node in m1.nodes() or []:
                status = node.manager_status
                if node.id not in founders and status.raft_id and status.reachability == objects_pb2.ManagerStatus.UNKNOWN:
                    seen_learner.set()
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    time.sleep(1.0)  # a baseline of acknowledged writes
    watcher.start()
    started = time.monotonic()
    m3 = cluster.join("m3", "manager", through=m1)
    joined = time.monotonic()
    time.sleep(1.0)
    ended = time.monotonic()
    watching.set()
    writer.stop.set()
    writer.join(timeout=30)
    watcher.join(timeout=30)

    gap = writer.longest_gap(started, ended)
    during = [t for t in writer.acks if started <= t <= ended]
    print(f"join took {joined - started:.1f} s; {len(during)} writes acknowledged during it; longest gap "
          f"{gap:.3f} s; errors {writer.errors[:5]}")
    assert not writer.errors, writer.errors[:5]
    assert gap < WRITE_GAP_BOUND, f"writes stalled for {gap:.2f} s during the join\n{cluster.status()}"
    assert leaders - {""} == {leader_id}, f"the leader changed during the join: {leaders}"
    assert seen_learner.is_set(), "the newcomer was never seen catching up as a learner"

    # `swarm join` returned once m3 was a voter: it is Reachable, and it is in its own voters.
    row = next(r for r in m1.ok("node", "ls").stdout.splitlines() if r.startswith(m3.node_id))
    assert "Reachable" in row, row
    assert "caught up and is now a voting member" in m1.log_path.read_text()
    # It holds everything: the prefill and what was written during the join.
    for name in ("prefill-0", f"prefill-{PREFILL - 1}", "during-1", f"during-{len(writer.acks)}"):
        got = m3.rpc("GetConfig", control_pb2.GetConfigRequest(ref=name)).config
        assert got.spec.annotations.name == name
    # The three managers now tolerate one loss: stop m2, writes still commit (m1 and m3).
    cluster["m2"].kill()
    wait_until(lambda: _write_ok(m1), timeout=30, interval=0.5, what="a write with m2 down",
               details=lambda: f"{_last_write_error}\n{cluster.status()}\n--- m1\n{m1.log_tail(40)}\n--- m3\n{m3.log_tail(40)}")


_last_write_error: list[str] = []


def _write_ok(manager) -> bool:
    try:
        create_config(manager, f"after-{time.monotonic_ns()}", size=10)
    except grpc.RpcError as exc:  # not yet
        _last_write_error[:] = [f"{exc.code()}: {exc.details()}"]
        return False
    return True
