"""Root CA and node certificates: the fields swarmkit puts in them, and what verification refuses."""

from __future__ import annotations

import datetime
import random
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from swarmpy.api import objects_pb2
from swarmpy.ca import certs
from swarmpy.ca.errors import (
    CertificateExpired,
    CertificateNotYetValid,
    InvalidCertificateRequest,
    MalformedCertificate,
    WrongCA,
)
from swarmpy.identity import new_id, to_base36
from tests.ca.swarm_fixtures import new_swarm

UTC = datetime.timezone.utc


def attr(name: x509.Name, oid) -> list[str]:
    return [a.value for a in name.get_attributes_for_oid(oid)]


def test_new_id_is_25_lowercase_base36_and_unique():
    ids = {new_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"[0-9a-z]{25}", i) for i in ids)


def test_to_base36_pads_and_refuses_overflow():
    assert to_base36(0, 3) == "000"
    assert to_base36(35, 2) == "0z"
    assert to_base36(2**128 - 1, 25) == "f5lxx1zz5pnorynqglhzmsp33"
    with pytest.raises(ValueError):
        to_base36(36**3, 3)


def test_root_ca_is_p256_swarm_ca_for_20_years():
    before = datetime.datetime.now(UTC)
    key_pem, cert_pem = certs.create_root_ca()
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    assert attr(cert.subject, NameOID.COMMON_NAME) == ["swarm-ca"]
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    lifetime = cert.not_valid_after_utc - before
    assert datetime.timedelta(days=20 * 365) - datetime.timedelta(minutes=1) < lifetime <= datetime.timedelta(days=20 * 365, minutes=1)


@pytest.mark.parametrize(
    "role, ou, dns",
    [
        (objects_pb2.WORKER, "swarm-worker", ["swarm-worker"]),
        (objects_pb2.MANAGER, "swarm-manager", ["swarm-manager", "swarm-ca"]),
    ],
)
def test_node_certificate_fields(role, ou, dns):
    swarm = new_swarm()
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    key_pem, csr_pem = certs.make_node_key_and_csr()
    cert_pem = certs.sign_node_csr(swarm.root_key, swarm.root_cert, csr_pem, "node1", role, swarm.cluster_id, now=now)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert attr(cert.subject, NameOID.COMMON_NAME) == ["node1"]
    assert attr(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME) == [ou]
    assert attr(cert.subject, NameOID.ORGANIZATION_NAME) == [swarm.cluster_id]
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(sans) == sorted(dns + ["node1"])
    assert cert.not_valid_before_utc == now - datetime.timedelta(hours=1)
    assert cert.not_valid_after_utc == now + datetime.timedelta(hours=2160)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert certs.public_keys_match(key_pem, cert_pem)
    identity = certs.verify_chain(cert_pem, swarm.root_cert)
    assert (identity.node_id, identity.role, identity.cluster_id) == ("node1", role, swarm.cluster_id)
    assert certs.parse_node_certificate(cert_pem) == identity


def test_ca_ignores_the_subject_the_csr_asks_for():
    swarm = new_swarm()
    key = ec.generate_private_key(ec.SECP256R1())
    greedy = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "someone-else"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "swarm-manager"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "other-cluster"),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(greedy).sign(key, hashes.SHA256())
    cert_pem = certs.sign_node_csr(
        swarm.root_key, swarm.root_cert, csr.public_bytes(serialization.Encoding.PEM),
        "n-worker", objects_pb2.WORKER, swarm.cluster_id,
    )
    identity = certs.parse_node_certificate(cert_pem)
    assert (identity.node_id, identity.role, identity.cluster_id) == ("n-worker", objects_pb2.WORKER, swarm.cluster_id)


def test_csr_with_rsa_key_or_garbage_is_refused():
    swarm = new_swarm()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(rsa_key, hashes.SHA256())
    with pytest.raises(InvalidCertificateRequest, match="P-256"):
        certs.sign_node_csr(swarm.root_key, swarm.root_cert, rsa_csr.public_bytes(serialization.Encoding.PEM),
                            "n", objects_pb2.WORKER, swarm.cluster_id)
    with pytest.raises(InvalidCertificateRequest, match="not a PEM"):
        certs.sign_node_csr(swarm.root_key, swarm.root_cert, b"hello", "n", objects_pb2.WORKER, swarm.cluster_id)


def test_expiry_below_one_hour_is_refused():
    swarm = new_swarm()
    _, csr_pem = certs.make_node_key_and_csr()
    with pytest.raises(ValueError, match="minimum"):
        certs.sign_node_csr(swarm.root_key, swarm.root_cert, csr_pem, "n", objects_pb2.WORKER, swarm.cluster_id, 3599)


def test_verify_chain_refuses_another_swarms_certificate():
    ours, theirs = new_swarm(), new_swarm()
    _, cert_pem = theirs.node_credentials(objects_pb2.MANAGER)
    with pytest.raises(WrongCA, match="not issued by this swarm's root CA"):
        certs.verify_chain(cert_pem, ours.root_cert)


def test_verify_chain_refuses_expired_and_not_yet_valid():
    swarm = new_swarm()
    _, expired = swarm.expired_credentials(objects_pb2.WORKER)
    with pytest.raises(CertificateExpired, match="expired at"):
        certs.verify_chain(expired, swarm.root_cert)
    future = datetime.datetime.now(UTC) + datetime.timedelta(days=2)
    _, early = swarm.node_credentials(objects_pb2.WORKER, now=future)
    with pytest.raises(CertificateNotYetValid, match="check the clocks"):
        certs.verify_chain(early, swarm.root_cert)


def test_parse_refuses_a_certificate_without_a_node_role():
    swarm = new_swarm()
    with pytest.raises(MalformedCertificate, match="OU"):
        certs.parse_node_certificate(swarm.root_cert)
    with pytest.raises(MalformedCertificate, match="not a PEM"):
        certs.parse_node_certificate(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")


def test_renewal_delay_falls_between_50_and_80_percent_of_the_lifetime():
    swarm = new_swarm()
    _, cert_pem = swarm.node_credentials(objects_pb2.WORKER, expiry_seconds=100 * 3600)
    cert = x509.load_pem_x509_certificate(cert_pem)
    lifetime = (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()
    start = cert.not_valid_before_utc
    rng = random.Random(7)
    delays = [certs.renewal_delay(cert_pem, now=start, rng=rng) for _ in range(500)]
    assert all(0.5 * lifetime <= d <= 0.8 * lifetime for d in delays)
    assert max(delays) - min(delays) > 0.25 * lifetime  # it really is spread, not a constant
    # Measured from now: later calls wait less; past the window it is due at once.
    later = start + datetime.timedelta(seconds=0.3 * lifetime)
    assert certs.renewal_delay(cert_pem, now=later, rng=random.Random(7)) == pytest.approx(delays[0] - 0.3 * lifetime)
    assert certs.renewal_delay(cert_pem, now=cert.not_valid_after_utc) == 0.0


def test_ca_digest_is_50_base36_chars_and_depends_on_the_root():
    a, b = new_swarm(), new_swarm()
    digest = certs.ca_digest(a.root_cert)
    assert re.fullmatch(r"[0-9a-z]{50}", digest)
    assert digest == certs.ca_digest(a.root_cert)
    assert digest != certs.ca_digest(b.root_cert)
