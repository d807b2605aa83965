"""The embedded join bootstrap certificates are what the documented, public derivation says they are."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from swarmpy.ca import join_bootstrap
from swarmpy.ca.certs import load_private_key, public_keys_match

SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_embedded_certificates_match_the_label_derived_keys():
    ca = x509.load_pem_x509_certificate(join_bootstrap.BOOTSTRAP_CA_CERT_PEM)
    client = x509.load_pem_x509_certificate(join_bootstrap.BOOTSTRAP_CLIENT_CERT_PEM)
    ca_key = join_bootstrap.derive_key_from_label(join_bootstrap.BOOTSTRAP_CA_KEY_LABEL)
    assert ca.public_key().public_bytes(*SPKI) == ca_key.public_key().public_bytes(*SPKI)
    ca.verify_directly_issued_by(ca)
    client.verify_directly_issued_by(ca)
    assert public_keys_match(join_bootstrap.bootstrap_client_key_pem(), join_bootstrap.BOOTSTRAP_CLIENT_CERT_PEM)
    load_private_key(join_bootstrap.bootstrap_client_key_pem())


def test_bootstrap_client_is_swarm_join():
    client = x509.load_pem_x509_certificate(join_bootstrap.BOOTSTRAP_CLIENT_CERT_PEM)
    assert [a.value for a in client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == ["swarm-join"]
    assert [a.value for a in client.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)] == ["swarm-join"]
    assert client.not_valid_after_utc.year == 9999
