"""3 managers on 127.0.0.x: the leader is killed while it allocates overlay addresses; the new leader
takes over from the Raft store and no address (task or VIP) is ever held twice, none outside the subnet."""

from __future__ import annotations

import json
from ipaddress import ip_interface, ip_network

import pytest

from swarmpy.api import control_pb2, objects_pb2

from tests.integration.conftest import wait_until

from .conftest import ELECTION_TIMEOUT, GRACE, form_cluster, ok_despite_elections, unique, wait_converged

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def cluster(docker, tmp_path_factory, busybox_image):
    cluster = form_cluster(tmp_path_factory.mktemp("netfo"), docker, managers=3, workers=0)
    yield cluster
    cluster.teardown()


def held_addresses(manager, service_id: str) -> list[str]:
    """Every address a live task of the service holds, plus its VIPs, as `manager` reads the store."""
    service = manager.rpc("GetService", control_pb2.GetServiceRequest(ref=service_id)).service
    tasks = manager.rpc("ListTasks", control_pb2.ListTasksRequest(
        filters=control_pb2.ListTasksRequest.Filters(service_ids=[service_id]))).tasks
    held = [vip.addr for vip in service.endpoint.virtual_ips]
    for task in tasks:
        if task.status.state <= objects_pb2.RUNNING and not (task.desired_state > objects_pb2.RUNNING and not task.node_id):
            held += [address for attachment in task.networks for address in attachment.addresses]
    return held


def test_leader_killed_during_allocation_no_address_is_handed_out_twice(cluster, image):
    leader = cluster.wait_leader()
    survivors = [m for m in cluster.live_managers() if m is not leader]
    net, name = unique("fo"), unique("addr")
    leader.ok("network", "create", "--subnet", "10.77.0.0/24", net)
    service_id = leader.ok("service", "create", "-d", "--name", name, "--replicas", "12", "--stop-grace-period", "1s",
                           "--network", net, image, "sleep", "100000").stdout.strip()
    leader.kill()  # while the leader is allocating and scheduling the 12 tasks
    new_leader = cluster.wait_leader(among=survivors, timeout=10 * ELECTION_TIMEOUT)
    # The new leader allocates more on top of what the old one left in the store.
    ok_despite_elections(new_leader, "service", "scale", "-d", f"{name}=20")
    tasks = wait_converged(cluster, new_leader, name, 20, timeout=GRACE + 60, on_live_hosts_only=True)
    for task in tasks:
        [attachment] = task.networks
        assert ip_interface(attachment.addresses[0]).network == ip_network("10.77.0.0/24")
    held = held_addresses(new_leader, service_id)
    assert len(held) >= 21, held  # 20 running tasks and the VIP, plus any not yet reaped
    assert len(held) == len(set(held)), f"an address is held twice: {sorted(held)}"
    assert not any(a.startswith("10.77.0.1/") for a in held)  # the gateway
    # The returning manager reads the same allocations from its log.
    leader.start()
    cluster.wait_ready()
    wait_until(lambda: sorted(held_addresses(leader, service_id)) == sorted(held_addresses(new_leader, service_id)),
               what="the returning manager holds the same allocations")
    network = json.loads(new_leader.ok("network", "inspect", net).stdout)[0]
    assert network["IPAM"]["Config"] == [{"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.1"}]
    ok_despite_elections(new_leader, "service", "rm", name)
