"""The root CA rotation's reconciler (leader only), after swarmkit's ca/reconciler.go.

Theory of operation
-------------------
`swarm ca --rotate` (control API UpdateCluster, controlapi/ca_config.py) only records the rotation:
RootCA.root_rotation with the new root, its key and the cross-signed certificate. This loop carries it
out from the store, so a new leader resumes it where the store says it is:

- every node whose recorded certificate (node.certificate.certificate, written by each issuance and
  renewal) was not signed by the new root is marked certificate.status ROTATE. The node hears it in its
  session (the dispatcher sends a SessionMessage when the status changes), renews over its existing
  mutual-TLS channel, and the renewal records the new certificate with status ISSUED;
- a node has rotated once its recorded certificate is from the new root *and* it reported (its
  description's TLS info, sent when its session moved to a connection presenting the new certificate)
  that it uses it: until then its connections still present the old one, which the end of the
  rotation would make the managers refuse;
- once no node is left to rotate, the rotation finishes in one write: the new root
  replaces the old (swarmpy.ca.rotation.finish_rotation), the join tokens are renewed to pin it, and
  every session is sent the new trust bundle without the old root.

A node that never renews (its daemon is down) holds the rotation open, as in swarmkit; `node rm` of it
lets the rotation finish. Nodes removed from the swarm are not waited for.
"""

from __future__ import annotations

import asyncio
import functools
import logging

from swarmpy.api import objects_pb2
from swarmpy.ca.rotation import desired_issuer, finish_rotation, issued_by

from swarmpy.raft.errors import LeadershipLost, NotLeader, RaftError

from .store import Commit, MemoryStore, StoreError
from .store.memory import Transaction, clone
from .store.retry import retry_conflicts

log = logging.getLogger(__name__)

ROTATE = objects_pb2.IssuanceStatus.ROTATE
# A write lost to a leadership change or a full Raft log is tried again after this pause.
RETRY_DELAY = 1.0


@functools.lru_cache(maxsize=8192)
def _from_root(cert_pem: bytes, root_cert_pem: bytes) -> bool:
    # Cached: every commit re-checks every node, and the answer for a pair of certificates never changes.
    return issued_by(cert_pem, root_cert_pem)


def reconcile(tx: Transaction) -> str:
    """One pass: mark the nodes still to rotate, or finish; says what it did (for the log and tests)."""
    cluster = tx.get_cluster()
    if cluster is None or not cluster.root_ca.HasField("root_rotation"):
        return "idle"
    new_root = cluster.root_ca.root_rotation.ca_cert
    issuer = desired_issuer(cluster.root_ca)
    waiting = 0
    for node in tx.nodes():
        recorded = _from_root(node.certificate.certificate, new_root)
        tls = node.description.tls_info
        if recorded and (tls.cert_issuer_subject, tls.cert_issuer_public_key) == issuer:
            continue  # issued, and in use: the node's session reported it over a connection presenting it
        waiting += 1
        if not recorded and node.certificate.status.state != ROTATE:
            marked = clone(node)
            marked.certificate.status.state = ROTATE
            marked.certificate.status.err = ""
            tx.update("node", marked)
    if waiting:
        return f"waiting for {waiting} nodes"
    finished = clone(cluster)
    finished.root_ca.CopyFrom(finish_rotation(cluster.root_ca))
    finished.spec.ca_config.ClearField("signing_ca_cert")
    tx.update("cluster", finished)
    return "finished"


class RootRotationReconciler:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def run(self) -> None:
        with self._store.watch(["cluster", "node"]) as watch:
            reported = ""
            while True:
                try:
                    outcome = await retry_conflicts(lambda: self._store.update(reconcile), what="CA rotation")
                except (NotLeader, LeadershipLost):
                    raise  # the leader loops stop; the next leader resumes from the store
                except (RaftError, StoreError) as error:
                    log.warning("CA rotation: %s; retrying in %.0f s", error, RETRY_DELAY)
                    await asyncio.sleep(RETRY_DELAY)
                    continue
                if outcome != reported:
                    if outcome == "finished":
                        log.info("CA rotation finished: every node holds a certificate of the new root")
                    elif outcome != "idle":
                        log.info("CA rotation: %s", outcome)
                    reported = outcome
                while not isinstance(await watch.get(), Commit):
                    pass
                watch.drain()
