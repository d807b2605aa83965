"""`docker swarm ca` (the real docker CLI, DOCKER_HOST at swarmpy's docker.sock) runs the same CA
rotation as `swarmpy swarm ca`: Spec.CAConfig.ForceRotate / SigningCACert / SigningCAKey map onto it,
its progress reads ClusterInfo.TLSInfo, RootRotationInProgress and each node's Description.TLSInfo."""

from __future__ import annotations

import pytest

from swarmpy.ca import certs
from tests.cluster.test_ca_rotation import write_root

from .conftest import EngineApiDaemon

pytestmark = [pytest.mark.docker, pytest.mark.timeout(240)]


def trust_root(manager: EngineApiDaemon) -> str:
    return manager.docker_ok("info", "--format", "{{.Swarm.Cluster.TLSInfo.TrustRoot}}").stdout.strip()


def test_docker_swarm_ca_rotates_through_swarmpy(manager: EngineApiDaemon, tmp_path):
    old = manager.docker_ok("swarm", "ca").stdout.strip()
    assert old.startswith("-----BEGIN CERTIFICATE-----") and old == trust_root(manager)

    rotated = manager.docker_ok("swarm", "ca", "--rotate", timeout=120)
    new = trust_root(manager)
    assert new != old and rotated.stdout.strip().endswith(new), rotated
    assert "desired root digest: sha256:" in rotated.stdout, rotated
    assert manager.docker_ok("info", "--format", "{{.Swarm.Cluster.RootRotationInProgress}}"
                             " {{.Swarm.Cluster.Spec.CAConfig.ForceRotate}}").stdout.split() == ["false", "1"]
    node_root = manager.docker_ok("node", "inspect", "self", "--format", "{{.Description.TLSInfo.TrustRoot}}").stdout
    assert node_root.strip() == new
    assert manager.docker_ok("node", "ls", "--format", "{{.TLSStatus}}").stdout.split() == ["Ready"]
    token = manager.docker_ok("swarm", "join-token", "-q", "worker").stdout.strip()
    assert token.split("-")[2] == certs.ca_digest(new.encode() + b"\n")

    # A plain `docker swarm update` sends the spec back (ForceRotate included): no new rotation.
    manager.docker_ok("swarm", "update", "--cert-expiry", "48h")
    assert trust_root(manager) == new
    assert manager.docker_ok("info", "--format", "{{.Swarm.Cluster.Spec.CAConfig.NodeCertExpiry}}").stdout.strip() == "48h0m0s"

    # A brought root, -q: quiet, and the swarm ends on it. A mismatched key: refused, nothing changed.
    cert, key = write_root(tmp_path)
    (tmp_path / "other").mkdir()
    _, other_key = write_root(tmp_path / "other")
    refused = manager.docker_cli("swarm", "ca", "--rotate", "--ca-cert", cert, "--ca-key", other_key)
    assert refused.code != 0 and "does not match the public key" in refused.stderr, refused
    assert refused.stderr.strip().startswith("Error response from daemon: "), refused
    assert trust_root(manager) == new
    quiet = manager.docker_ok("swarm", "ca", "--rotate", "--ca-cert", cert, "--ca-key", key, "-q", timeout=120)
    assert quiet.stdout == ""
    assert trust_root(manager) == open(cert).read().strip()
