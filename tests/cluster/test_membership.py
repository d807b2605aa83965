"""Changing who the managers are: promote, demote (the leader too), refusals that keep quorum, and
`swarm init --force-new-cluster` after losing most managers. The tests run in order on one swarm of
3 managers and a worker; each leaves it with 3 reachable managers, except the last, which breaks it."""

from __future__ import annotations

import time

import pytest

from swarmpy.api import objects_pb2

from .conftest import create_service, form_cluster, unique, wait_converged, wait_until

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

MANAGER_OU, WORKER_OU = "swarm-manager", "swarm-worker"


@pytest.fixture(scope="module")
def cluster(docker, tmp_path_factory, busybox_image):
    cluster = form_cluster(tmp_path_factory.mktemp("membership"), docker, managers=3, workers=1)
    yield cluster
    cluster.teardown()


def node_of(manager, node_id: str) -> objects_pb2.Node | None:
    return {n.id: n for n in manager.nodes() or []}.get(node_id)


def wait_role(cluster, daemon, role: str, timeout: float = 30.0) -> None:
    """`daemon` runs as `role`: its certificate says so, the swarm says so, and so does its own state file."""
    want = objects_pb2.MANAGER if role == "manager" else objects_pb2.WORKER
    ou = MANAGER_OU if role == "manager" else WORKER_OU

    def settled() -> bool:
        leader = cluster.agreed_leader()
        node = node_of(leader, daemon.node_id) if leader else None
        if node is None or node.role != want or (daemon.state() or {}).get("role") != role:
            return False
        if role == "manager" and node.manager_status.reachability != objects_pb2.ManagerStatus.REACHABLE:
            return False
        return daemon.certificate_ou() == ou

    wait_until(settled, timeout=timeout, interval=0.2, what=f"{daemon.name} to run as a {role}",
               details=cluster.status)


def test_promote_a_worker_then_demote_it_back(cluster):
    m1, w1 = cluster["m1"], cluster["w1"]
    assert w1.certificate_ou() == WORKER_OU

    promoted = m1.ok("node", "promote", w1.node_id).stdout.strip()
    assert promoted == f"Node {w1.node_id} promoted to a manager in the swarm."
    wait_role(cluster, w1, "manager")
    row = next(r for r in m1.ok("node", "ls").stdout.splitlines() if r.startswith(w1.node_id))
    assert "Reachable" in row, row
    # The new manager answers the CLI itself, with the same view as everyone.
    assert {n.id for n in w1.nodes()} == {d.node_id for d in cluster.daemons.values()}

    demoted = m1.ok("node", "demote", w1.node_id).stdout.strip()
    assert demoted == f"Manager {w1.node_id} demoted in the swarm."
    wait_role(cluster, w1, "worker")
    assert not (w1.data_dir / "raft").exists()
    refused = w1.cli("node", "ls")
    assert refused.code != 0 and "Worker nodes can't be used" in refused.stderr, refused
    cluster.wait_ready()


def test_demoting_the_leader_hands_leadership_over_first(cluster):
    leader = cluster.wait_leader()
    others = [m for m in cluster.live_managers() if m is not leader]

    leader.ok("node", "demote", leader.node_id)
    wait_role(cluster, leader, "worker", timeout=40)
    new_leader = cluster.wait_leader(among=others)
    assert new_leader in others
    assert {m.name for m in cluster.managers()} == {m.name for m in others}

    # And back: a former manager is promoted again with a fresh Raft membership.
    new_leader.ok("node", "promote", leader.node_id)
    wait_role(cluster, leader, "manager", timeout=40)
    cluster.wait_ready()


def test_a_demotion_that_would_lose_quorum_is_refused_saying_why(cluster):
    leader = cluster.wait_leader()
    victim, bystander = [m for m in cluster.live_managers() if m is not leader]
    victim.kill()
    # The leader notices the silence within an election timeout.
    wait_until(lambda: "Unreachable" in leader.ok("node", "ls").stdout, timeout=15, what="the dead manager Unreachable")

    refused = leader.cli("node", "demote", bystander.node_id)
    assert refused.code != 0, refused
    assert "quorum" in refused.stderr and bystander.node_id in refused.stderr, refused
    assert node_of(leader, bystander.node_id).role == objects_pb2.MANAGER

    victim.start()
    cluster.wait_ready()


def test_a_manager_leaves_only_with_force_and_then_leaves_the_raft_group_too(cluster):
    leader = cluster.wait_leader()
    others = [m for m in cluster.live_managers() if m is not leader]

    refused = leader.cli("swarm", "leave")
    assert refused.code != 0, refused
    assert "participating as a manager" in refused.stderr and "--force" in refused.stderr, refused

    assert leader.ok("swarm", "leave", "--force").stdout.strip() == "Node left the swarm."
    new_leader = cluster.wait_leader(among=others)

    def departed():
        node = node_of(new_leader, leader.node_id)
        return node is not None and node.status.state == objects_pb2.NodeStatus.DOWN and (
            node.manager_status.reachability == objects_pb2.ManagerStatus.UNREACHABLE)

    wait_until(departed, timeout=15, what="the departed manager Down and Unreachable", details=cluster.status)
    # It left the Raft group (the leader that removed it says so), so the two that remain are the whole
    # group and make a quorum by themselves.
    assert f"manager {leader.node_id} (raft id" in new_leader.log_path.read_text()
    new_leader.ok("service", "create", "-d", "--name", unique("after-leave"), "--replicas", "0", "swarmpy-test/busybox")

    # A departed manager is cleaned up as docker's users do: demote, then remove.
    new_leader.ok("node", "demote", leader.node_id)
    wait_until(lambda: node_of(new_leader, leader.node_id).role == objects_pb2.WORKER, timeout=15,
               what="the departed manager demoted")
    new_leader.ok("node", "rm", leader.node_id)
    assert node_of(new_leader, leader.node_id) is None

    # The host comes back as a new manager, so the swarm has three again.
    cluster.join(leader.name, "manager", through=new_leader)
    cluster.wait_ready()
    assert len(cluster.live_managers()) == 3


def test_force_new_cluster_recovers_a_lone_survivor_with_its_services(cluster, image):
    leader = cluster.wait_leader()
    name = unique("fnc")
    create_service(leader, name, image, 3)
    wait_converged(cluster, leader, name, 3)
    survivor = next(m for m in cluster.live_managers() if m is not leader)
    lost = [m for m in cluster.live_managers() if m is not survivor]
    for manager in lost:
        manager.kill()

    started = time.monotonic()
    failed = survivor.cli("service", "scale", "-d", f"{name}=4")
    assert failed.code != 0 and "the swarm does not have a leader" in failed.stderr, failed
    assert time.monotonic() - started < 10, "a write without quorum must fail fast, not hang"
    started = time.monotonic()
    read = survivor.cli("service", "ls")
    assert read.code != 0 and "the swarm does not have a leader" in read.stderr, read
    assert time.monotonic() - started < 10, "a read without quorum is refused, not left hanging"

    survivor.ok("swarm", "init", "--force-new-cluster", timeout=60)
    assert cluster.wait_leader(among=[survivor]) is survivor
    assert name in survivor.ok("service", "ls").stdout
    survivor.ok("service", "scale", "-d", f"{name}=4")
    wait_converged(cluster, survivor, name, 4, timeout=40, on_live_hosts_only=True)
    managers = [n for n in survivor.nodes() if n.role == objects_pb2.MANAGER]
    assert [n.id for n in managers] == [survivor.node_id]
