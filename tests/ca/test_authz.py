"""The authorization decision on its own: which certificates reach which methods, and why not."""

from __future__ import annotations

import grpc
import pytest

from swarmpy.api import objects_pb2
from swarmpy.ca import join_bootstrap
from swarmpy.ca.authz import DEFAULT_POLICY, Access, AccessDenied, access_for, authorize
from tests.ca.swarm_fixtures import forged_with_bootstrap_ca, new_swarm

CONTROL = "/swarmpy.api.Control/ListNodes"
RAFT = "/swarmpy.api.Raft/ProcessRaftMessage"
DISPATCHER = "/swarmpy.api.Dispatcher/Heartbeat"
ISSUE = "/swarmpy.api.CA/IssueNodeCertificate"
RENEW = "/swarmpy.api.CA/RenewNodeCertificate"


def denied(method, cert_pem, swarm) -> AccessDenied:
    with pytest.raises(AccessDenied) as info:
        authorize(method, cert_pem, swarm.root_cert, swarm.cluster_id)
    return info.value


def test_policy_lookup_prefers_the_method_then_the_service():
    assert access_for(ISSUE, DEFAULT_POLICY) is Access.ANYONE
    assert access_for(RENEW, DEFAULT_POLICY) is Access.NODE
    assert access_for(CONTROL, DEFAULT_POLICY) is Access.MANAGER
    assert access_for(DISPATCHER, DEFAULT_POLICY) is Access.NODE
    assert access_for("/swarmpy.api.LocalNode/Info", DEFAULT_POLICY) is None


def test_managers_reach_everything_and_workers_only_node_methods():
    swarm = new_swarm()
    _, manager = swarm.node_credentials(objects_pb2.MANAGER, "m1")
    _, worker = swarm.node_credentials(objects_pb2.WORKER, "w1")
    for method in (CONTROL, RAFT, DISPATCHER, RENEW, ISSUE):
        assert authorize(method, manager, swarm.root_cert, swarm.cluster_id).node_id == "m1"
    for method in (DISPATCHER, RENEW, ISSUE):
        assert authorize(method, worker, swarm.root_cert, swarm.cluster_id).node_id == "w1"
    for method in (CONTROL, RAFT):
        refusal = denied(method, worker, swarm)
        assert refusal.code == grpc.StatusCode.PERMISSION_DENIED
        assert "node w1 is a worker" in refusal.reason


def test_bootstrap_certificate_only_reaches_the_join_methods():
    swarm = new_swarm()
    bootstrap = join_bootstrap.BOOTSTRAP_CLIENT_CERT_PEM
    assert authorize(ISSUE, bootstrap, swarm.root_cert, swarm.cluster_id) is None
    for method in (CONTROL, DISPATCHER, RENEW):
        refusal = denied(method, bootstrap, swarm)
        assert refusal.code == grpc.StatusCode.UNAUTHENTICATED
        assert "join bootstrap certificate" in refusal.reason


def test_a_manager_certificate_forged_with_the_public_bootstrap_ca_is_not_a_node():
    swarm = new_swarm()
    _, forged = forged_with_bootstrap_ca("evil", "swarm-manager", swarm.cluster_id)
    refusal = denied(CONTROL, forged, swarm)
    assert refusal.code == grpc.StatusCode.UNAUTHENTICATED
    assert authorize(ISSUE, forged, swarm.root_cert, swarm.cluster_id) is None


def test_expired_other_swarm_and_other_cluster_certificates_are_unauthenticated():
    swarm, other = new_swarm(), new_swarm()
    _, expired = swarm.expired_credentials(objects_pb2.MANAGER)
    assert "expired" in denied(CONTROL, expired, swarm).reason
    _, foreign = other.node_credentials(objects_pb2.MANAGER)
    assert "not issued by this swarm's root CA" in denied(DISPATCHER, foreign, swarm).reason
    # Signed by our root but naming another cluster: should never exist, and is not believed.
    _, misfiled = swarm.node_credentials(objects_pb2.MANAGER, cluster_id="not-this-cluster")
    assert "for cluster 'not-this-cluster'" in denied(CONTROL, misfiled, swarm).reason
    assert denied(CONTROL, None, swarm).code == grpc.StatusCode.UNAUTHENTICATED


def test_methods_outside_the_policy_are_refused_to_everyone():
    swarm = new_swarm()
    _, manager = swarm.node_credentials(objects_pb2.MANAGER)
    refusal = denied("/swarmpy.api.LocalNode/Leave", manager, swarm)
    assert refusal.code == grpc.StatusCode.PERMISSION_DENIED
    assert "not served on the swarm port" in refusal.reason
