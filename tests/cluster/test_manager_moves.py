"""Managers that move or vanish: one restarted at a new address keeps its Raft member id and updates its
member entry; a manager that is down is removed with `node rm --force`, Raft membership included, and a
forced removal that would lose quorum is refused saying why. The tests run in order on one swarm of
3 managers; the last leaves it with 2."""

from __future__ import annotations

import json

import pytest

from swarmpy.api import objects_pb2

from .conftest import form_cluster, free_port_on, ok_despite_elections, unique, wait_until

pytestmark = [pytest.mark.docker, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def cluster(docker, tmp_path_factory, busybox_image):
    cluster = form_cluster(tmp_path_factory.mktemp("moves"), docker, managers=3, workers=0)
    yield cluster
    cluster.teardown()


def node_of(manager, node_id: str) -> objects_pb2.Node | None:
    return {n.id: n for n in manager.nodes() or []}.get(node_id)


def test_a_manager_restarted_at_a_new_address_updates_its_member_entry(cluster, image):
    leader = cluster.wait_leader()
    mover = next(m for m in cluster.live_managers() if m is not leader)
    state = mover.state()
    raft_id, old_addr = state["raft_id"], mover.addr
    assert node_of(leader, mover.node_id).manager_status.addr == old_addr

    mover.kill()
    mover.listen_port = free_port_on(mover.ip)
    state["listen_addr"] = state["advertise_addr"] = mover.addr
    (mover.data_dir / "node.json").write_text(json.dumps(state))
    mover.start()

    def moved() -> bool:
        node = node_of(leader, mover.node_id)
        return node is not None and node.manager_status.addr == mover.addr and (
            node.manager_status.reachability == objects_pb2.ManagerStatus.REACHABLE)

    wait_until(moved, timeout=30, interval=0.2, what=f"{mover.name} reachable at {mover.addr}", details=cluster.status)
    node = node_of(leader, mover.node_id)
    assert node.manager_status.raft_id == raft_id and mover.state()["raft_id"] == raft_id
    assert f"Address:\t\t{mover.addr}" in leader.ok("node", "inspect", "--pretty", mover.node_id).stdout
    row = next(r for r in leader.ok("node", "ls").stdout.splitlines() if r.startswith(mover.node_id))
    assert "Reachable" in row, row
    assert "member address changed from" in mover.log_path.read_text()

    # Writes through the moved manager are forwarded and committed; everyone sees them.
    name = unique("moved")
    ok_despite_elections(mover, "service", "create", "-d", "--name", name, "--replicas", "0", image)
    for manager in cluster.live_managers():
        wait_until(lambda: name in {s.spec.annotations.name for s in manager.services() or []}, timeout=10,
                   what=f"{name} visible on {manager.name}")
    cluster.wait_ready()


def test_node_rm_force_removes_a_down_manager_and_its_raft_membership(cluster):
    leader = cluster.wait_leader()
    victim, bystander = [m for m in cluster.live_managers() if m is not leader]
    victim.kill()
    wait_until(lambda: "Unreachable" in leader.ok("node", "ls").stdout, timeout=15, what="the dead manager Unreachable")

    refused = leader.cli("node", "rm", victim.node_id)
    assert refused.code != 0 and "must be demoted to worker before removal" in refused.stderr, refused

    # Removing the live bystander too would leave the leader and a dead manager: no quorum.
    refused = leader.cli("node", "rm", "--force", bystander.node_id)
    assert refused.code != 0 and "quorum" in refused.stderr and bystander.node_id in refused.stderr, refused
    assert node_of(leader, bystander.node_id) is not None

    refused = leader.cli("node", "rm", "--force", leader.node_id)
    assert refused.code != 0 and "is the leader of the swarm" in refused.stderr, refused

    leader.ok("node", "rm", "--force", victim.node_id)
    assert node_of(leader, victim.node_id) is None
    assert "removed from the Raft group by force" in leader.log_path.read_text()
    wait_until(lambda: node_of(bystander, victim.node_id) is None, timeout=10, what="the removal replicated")

    # The two left are the whole Raft group now, and they keep committing.
    ok_despite_elections(leader, "service", "create", "-d", "--name", unique("after-rm"), "--replicas", "0",
                         "swarmpy-test/busybox")
    cluster.wait_ready(among=[leader, bystander])
    managers = [n.id for n in leader.nodes() if n.role == objects_pb2.MANAGER]
    assert sorted(managers) == sorted([leader.node_id, bystander.node_id])
