"""CA rotation in the control plane: UpdateCluster's CA config starts it (or refuses, changing nothing),
the reconciler marks nodes ROTATE, and finishes once every recorded certificate is from the new root."""

from __future__ import annotations

import grpc
import pytest

from swarmpy.api import control_pb2, objects_pb2
from swarmpy.ca import certs, rotation
from swarmpy.manager.ca_rotation import reconcile
from swarmpy.manager.leader_ca import issued_certificate
from swarmpy.manager.store.memory import clone
from tests.ca.test_rotation import _ca
from tests.manager.test_controlapi import add_cluster, harness  # noqa: F401 -- the fixture

ROTATE, ISSUED = objects_pb2.IssuanceStatus.ROTATE, objects_pb2.IssuanceStatus.ISSUED


def cert_from(cluster: objects_pb2.Cluster, node_id: str, role=objects_pb2.WORKER) -> bytes:
    key_pem, csr_pem = certs.make_node_key_and_csr()
    key, cert, chain = rotation.signer(cluster.root_ca)
    return certs.sign_node_csr(key, cert, csr_pem, node_id, role, cluster.id) + chain


async def add_nodes(store, cluster, ids):
    def create(tx):
        for node_id in ids:
            node = objects_pb2.Node(id=node_id, role=objects_pb2.WORKER)
            node.certificate.CopyFrom(issued_certificate(node_id, objects_pb2.WORKER, cert_from(cluster, node_id)))
            node.description.tls_info.CopyFrom(rotation.tls_info(node.certificate.certificate, cluster.root_ca.ca_cert))
            tx.create("node", node)

    await store.update(create)


async def update_ca(harness, **ca_config):
    current = (await harness.control.GetCluster(control_pb2.GetClusterRequest())).cluster
    spec = clone(current.spec)
    for field, value in ca_config.items():
        setattr(spec.ca_config, field, value)
    return await harness.control.UpdateCluster(control_pb2.UpdateClusterRequest(version=current.meta.version, spec=spec))


async def test_force_rotate_rotates_every_node_then_finishes(harness):
    stored = await add_cluster(harness.store)
    await add_nodes(harness.store, stored, ["n1", "n2"])
    assert await harness.store.update(reconcile) == "idle"
    await update_ca(harness, force_rotate=stored.spec.ca_config.force_rotate + 1)
    during = harness.store.view().get_cluster()
    assert during.root_ca.HasField("root_rotation")
    assert during.root_ca.ca_cert == stored.root_ca.ca_cert  # the old root stays until every node rotated
    assert during.root_ca.last_forced_rotation == stored.spec.ca_config.force_rotate + 1
    shown = (await harness.control.GetCluster(control_pb2.GetClusterRequest())).cluster
    assert shown.root_ca.root_rotation.ca_key == b"" and shown.root_ca.root_rotation.ca_cert

    assert await harness.store.update(reconcile) == "waiting for 2 nodes"
    view = harness.store.view()
    assert [view.get_node(n).certificate.status.state for n in ("n1", "n2")] == [ROTATE, ROTATE]
    # n1 renews: its new certificate is recorded ISSUED; n2 has not yet.
    def renew(tx, node_id="n1"):
        node = clone(tx.get_node(node_id))
        node.certificate.CopyFrom(issued_certificate(node_id, objects_pb2.WORKER, cert_from(during, node_id)))
        tx.update("node", node)

    def report(tx, node_id):  # the node's session moved to a connection presenting the new certificate
        node = clone(tx.get_node(node_id))
        node.description.tls_info.CopyFrom(rotation.tls_info(node.certificate.certificate,
                                                             rotation.trust_bundle(during.root_ca)))
        tx.update("node", node)

    await harness.store.update(renew)
    assert await harness.store.update(reconcile) == "waiting for 2 nodes"  # issued, not yet in use
    assert harness.store.view().get_node("n1").certificate.status.state == ISSUED
    await harness.store.update(lambda tx: report(tx, "n1"))
    assert await harness.store.update(reconcile) == "waiting for 1 nodes"
    await harness.store.update(lambda tx: renew(tx, "n2"))
    assert await harness.store.update(reconcile) == "waiting for 1 nodes"
    await harness.store.update(lambda tx: report(tx, "n2"))
    assert await harness.store.update(reconcile) == "finished"
    after = harness.store.view().get_cluster()
    assert after.root_ca.ca_cert == during.root_ca.root_rotation.ca_cert
    assert not after.root_ca.HasField("root_rotation")
    assert certs.ca_digest(after.root_ca.ca_cert) in after.root_ca.join_tokens.worker
    assert after.root_ca.join_tokens.worker != stored.root_ca.join_tokens.worker
    assert await harness.store.update(reconcile) == "idle"
    # The spec read back and sent again (as `swarm update` does) changes nothing.
    await update_ca(harness)
    assert harness.store.view().get_cluster().root_ca.ca_cert == after.root_ca.ca_cert
    assert not harness.store.view().get_cluster().root_ca.HasField("root_rotation")


async def test_rotation_to_a_brought_root(harness):
    stored = await add_cluster(harness.store)
    cert_pem, key_pem = _ca()
    await update_ca(harness, signing_ca_cert=cert_pem, signing_ca_key=key_pem)
    during = harness.store.view().get_cluster()
    assert during.root_ca.root_rotation.ca_cert == cert_pem
    assert during.spec.ca_config.signing_ca_key == b""  # the key is never kept in the spec
    cross_signed = certs.load_certificate(during.root_ca.root_rotation.cross_signed_ca_cert)
    certs.check_path(cross_signed, [], [certs.load_certificate(stored.root_ca.ca_cert)])  # the bridge from the old root
    assert cross_signed.public_key() == certs.load_certificate(cert_pem).public_key()
    # Sent again with the certificate only (a spec read back): nothing new starts.
    await update_ca(harness, signing_ca_cert=cert_pem)
    assert harness.store.view().get_cluster().root_ca.root_rotation == during.root_ca.root_rotation


@pytest.mark.parametrize("config, message", [
    (lambda: {"signing_ca_cert": _ca()[0], "signing_ca_key": _ca()[1]}, "does not match the public key"),
    (lambda: dict(zip(("signing_ca_cert", "signing_ca_key"), _ca(ca=False))), "is not a CA certificate"),
    (lambda: {"signing_ca_cert": b"-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n",
              "signing_ca_key": _ca()[1]}, "is not a PEM X.509 certificate"),
    (lambda: {"signing_ca_cert": _ca()[0]}, "give its key (--ca-key)"),
    (lambda: {"signing_ca_key": _ca()[1]}, "needs its certificate (--ca-cert)"),
])
async def test_a_bad_root_is_refused_and_nothing_changes(harness, config, message):
    await add_cluster(harness.store)
    before = harness.store.view().get_cluster()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await update_ca(harness, **config())
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in refused.value.details() and "\n" not in refused.value.details()
    assert harness.store.view().get_cluster() == before
