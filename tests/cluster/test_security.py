"""Who may join and who may call what, over the real daemons' swarm ports."""

from __future__ import annotations

import grpc
import pytest

from swarmpy.api import control_pb2, control_pb2_grpc
from swarmpy.ca import tls

from .conftest import Cluster, form_cluster

pytestmark = [pytest.mark.docker, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def cluster(docker, tmp_path_factory, busybox_image):
    cluster = form_cluster(tmp_path_factory.mktemp("security"), docker, managers=1, workers=1)
    yield cluster
    cluster.teardown()


@pytest.fixture(scope="module")
def other_swarm(docker, tmp_path_factory, busybox_image):
    other = Cluster(tmp_path_factory.mktemp("other-swarm"), docker)
    try:
        other.init("o1")
        yield other
    finally:
        other.teardown()


@pytest.fixture(scope="module")
def joiner(cluster):
    """A daemon outside any swarm that keeps trying to get in."""
    return cluster.add("joiner")


def tampered_secret(token: str) -> str:
    prefix, secret = token.rsplit("-", 1)
    return f"{prefix}-{'0' * (len(secret) - 1)}1"


def tampered_digest(token: str) -> str:
    head, version, digest, secret = token.split("-")
    flipped = ("1" if digest[5] != "1" else "2")
    return "-".join((head, version, digest[:5] + flipped + digest[6:], secret))


def assert_refused_and_nothing_created(cluster, joiner, token: str, *expected: str) -> str:
    m1 = cluster["m1"]
    before = {n.id for n in m1.nodes()}
    result = cluster.join_cli(joiner, token, through=m1)
    assert result.code != 0, result
    message = result.stderr.strip()
    for words in expected:
        assert words in message, result
    assert "Traceback" not in result.stderr
    assert {n.id for n in m1.nodes()} == before
    assert joiner.state() is None and not (joiner.data_dir / "certificates").exists()
    return message


def test_a_wrong_token_is_refused_and_logged(cluster, joiner):
    assert_refused_and_nothing_created(cluster, joiner, tampered_secret(cluster.tokens["worker"]), "invalid join token")
    assert "refused certificate" in cluster["m1"].log_path.read_text()


def test_a_rotated_token_no_longer_admits(cluster, joiner):
    m1 = cluster["m1"]
    old = cluster.tokens["worker"]
    m1.ok("swarm", "join-token", "--rotate", "worker")
    cluster.refresh_tokens(m1)
    assert cluster.tokens["worker"] != old
    assert old.rsplit("-", 1)[0] == cluster.tokens["worker"].rsplit("-", 1)[0], "rotation keeps the CA digest"
    assert_refused_and_nothing_created(cluster, joiner, old, "invalid join token")


def test_a_token_of_another_swarm_is_refused_before_anything_is_sent(cluster, joiner, other_swarm):
    assert_refused_and_nothing_created(cluster, joiner, other_swarm.tokens["worker"],
                                       "does not match the join token", "another swarm")


def test_a_tampered_ca_digest_is_refused_as_a_possible_interception(cluster, joiner):
    assert_refused_and_nothing_created(cluster, joiner, tampered_digest(cluster.tokens["manager"]),
                                       "does not match the join token", "intercepting")


def test_the_current_token_still_admits_after_all_that(cluster, joiner):
    cluster.join("joiner", "worker")
    cluster.wait_ready()
    assert joiner.certificate_ou() == "swarm-worker"


def _control_over_tls(manager, credentials: grpc.ChannelCredentials):
    channel = grpc.secure_channel(manager.addr, credentials, options=tls.channel_options())
    return channel, control_pb2_grpc.ControlStub(channel)


def test_a_workers_certificate_cannot_call_control(cluster):
    m1, w1 = cluster["m1"], cluster["w1"]
    pem = (w1.data_dir / "certificates" / "swarm-node.pem").read_bytes()
    split = pem.index(b"-----BEGIN CERTIFICATE-----")
    root = (w1.data_dir / "certificates" / "swarm-root-ca.crt").read_bytes()
    channel, stub = _control_over_tls(m1, tls.channel_credentials(pem[:split], pem[split:], root))
    with channel:
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListNodes(control_pb2.ListNodesRequest(), timeout=10)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, refused.value
    assert "worker" in refused.value.details().lower(), refused.value.details()

    # The same call with the manager's own certificate is answered: the refusal was about the role.
    pem = (m1.data_dir / "certificates" / "swarm-node.pem").read_bytes()
    split = pem.index(b"-----BEGIN CERTIFICATE-----")
    channel, stub = _control_over_tls(m1, tls.channel_credentials(pem[:split], pem[split:], root))
    with channel:
        assert len(stub.ListNodes(control_pb2.ListNodesRequest(), timeout=10).nodes) >= 2


def test_a_client_without_a_certificate_gets_nothing(cluster):
    m1 = cluster["m1"]
    root = (m1.data_dir / "certificates" / "swarm-root-ca.crt").read_bytes()
    channel, stub = _control_over_tls(m1, grpc.ssl_channel_credentials(root_certificates=root))
    with channel:
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListNodes(control_pb2.ListNodesRequest(), timeout=5)
    assert refused.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED), refused.value
