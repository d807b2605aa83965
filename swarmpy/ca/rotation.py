"""Root CA rotation, the X.509 half (after swarmkit's ca/ and manager/controlapi/ca_rotation.go).

Theory of operation. A rotation replaces the swarm's root without a moment when two nodes cannot talk:
1. Start (`start_rotation`): the new root -- generated, or brought with `--ca-cert/--ca-key` and
   checked by `check_signing_root` -- is cross-signed by the old root's key: a certificate with the new
   root's name and public key, issued by the old root. RootCA keeps the old root as `ca_cert` and gains
   RootRotation{ca_cert, ca_key, cross_signed_ca_cert}.
2. While it runs the swarm trusts both roots (`trust_bundle`), the CA signs with the new key
   (`signer`), and each certificate it issues carries the cross-signed certificate after the leaf: a
   node still trusting only the old root verifies it through the cross-signed one, a node trusting the
   new root verifies it directly. Established TLS sessions are never re-verified, so nothing drops.
3. Finish (`finish_rotation`; swarmpy.manager.ca_rotation decides when: every node holds a certificate
   of the new root): the new root becomes `ca_cert`, with fresh join tokens pinning its digest, and the
   old root leaves the bundle, so a certificate it signed is refused from then on.
Pure functions over PEM bytes and protobufs; no I/O, no clock unless `now` is left out.
"""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from swarmpy.api import objects_pb2
from swarmpy.ca.certs import (
    CA_KEY_USAGE,
    check_issued_by,
    check_validity,
    create_root_ca,
    load_certificate,
    load_certificates,
    load_private_key,
    public_keys_match,
)
from swarmpy.ca.errors import CAError, CertificateError, WrongCA
from swarmpy.ca.tokens import new_join_tokens


class InvalidSigningRoot(CAError):
    """A root CA brought for a rotation (`--ca-cert/--ca-key`) that the swarm cannot use: the caller's fault."""


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return constraints.ca


def check_signing_root(cert_pem: bytes, key_pem: bytes, now: datetime.datetime | None = None) -> tuple[bytes, bytes]:
    """The (cert_pem, key_pem) to rotate to, normalised; InvalidSigningRoot says in one line what is wrong."""
    try:
        found = load_certificates(cert_pem, "signing CA certificate (--ca-cert)")
    except CertificateError as exc:
        raise InvalidSigningRoot(str(exc)) from None
    if len(found) != 1:
        raise InvalidSigningRoot(f"signing CA certificate (--ca-cert) holds {len(found)} certificates, expected 1 root")
    cert = found[0]
    try:
        key = load_private_key(key_pem, "signing CA key (--ca-key)", allow_rsa=True)
    except CertificateError as exc:
        raise InvalidSigningRoot(str(exc).splitlines()[0]) from None
    subject = cert.subject.rfc4514_string() or "(empty subject)"
    if not _is_ca(cert):
        raise InvalidSigningRoot(f"signing CA certificate (--ca-cert) {subject!r} is not a CA certificate "
                                 "(its basic constraints do not allow it to sign certificates)")
    try:
        check_issued_by(cert, cert)
    except WrongCA:
        raise InvalidSigningRoot(f"signing CA certificate (--ca-cert) {subject!r} is not self-signed: "
                                 "swarmpy rotates to a root CA, not an intermediate") from None
    if not public_keys_match(key_pem, cert_pem, allow_rsa=True):
        raise InvalidSigningRoot("signing CA key (--ca-key) does not match the public key of the signing CA "
                                 f"certificate (--ca-cert) {subject!r}")
    try:
        check_validity(cert, now)
    except CertificateError as exc:
        raise InvalidSigningRoot(f"signing CA certificate (--ca-cert): {exc}") from None
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
        raise InvalidSigningRoot(f"signing CA key (--ca-key) is RSA of {key.key_size} bits; at least 2048 are needed")
    normal_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return _pem(cert), normal_key


def cross_sign(new_cert_pem: bytes, old_cert_pem: bytes, old_key_pem: bytes) -> bytes:
    """The new root's name and public key, issued by the old root: the bridge between the two."""
    new = load_certificate(new_cert_pem, "new root CA certificate")
    old = load_certificate(old_cert_pem, "root CA certificate")
    old_key = load_private_key(old_key_pem, "root CA key", allow_rsa=True)
    builder = (
        x509.CertificateBuilder()
        .subject_name(new.subject)
        .issuer_name(old.subject)
        .public_key(new.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(new.not_valid_before_utc)
        .not_valid_after(min(new.not_valid_after_utc, old.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
        # The key identifiers let TLS stacks tell the two "swarm-ca" certificates apart when building a path.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(new.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(old_key.public_key()), critical=False)
    )
    return _pem(builder.sign(old_key, hashes.SHA256()))


def start_rotation(
    root_ca: objects_pb2.RootCA, new_cert_pem: bytes | None = None, new_key_pem: bytes | None = None
) -> objects_pb2.RootCA:
    """The RootCA with a rotation to the given root (checked already) or, without one, a new one.

    A rotation under way is replaced: the new root is cross-signed by `ca_cert`, the root every node
    still trusts, not by the root that was being rotated to.
    """
    if new_cert_pem is None or new_key_pem is None:
        new_key_pem, new_cert_pem = create_root_ca()
    rotated = objects_pb2.RootCA()
    rotated.CopyFrom(root_ca)
    rotated.root_rotation.CopyFrom(objects_pb2.RootRotation(
        ca_cert=new_cert_pem, ca_key=new_key_pem,
        cross_signed_ca_cert=cross_sign(new_cert_pem, root_ca.ca_cert, root_ca.ca_key),
    ))
    return rotated


def finish_rotation(root_ca: objects_pb2.RootCA) -> objects_pb2.RootCA:
    """The RootCA once every node has rotated: the new root alone, and join tokens that pin it."""
    rotation = root_ca.root_rotation
    return objects_pb2.RootCA(
        ca_cert=rotation.ca_cert, ca_key=rotation.ca_key, join_tokens=new_join_tokens(rotation.ca_cert),
        last_forced_rotation=root_ca.last_forced_rotation,
    )


def trust_bundle(root_ca: objects_pb2.RootCA) -> bytes:
    """The roots the swarm trusts now: the root, and during a rotation the root it rotates to."""
    bundle = root_ca.ca_cert
    if root_ca.HasField("root_rotation"):
        bundle = bundle.rstrip(b"\n") + b"\n" + root_ca.root_rotation.ca_cert
    return bundle


def signer(root_ca: objects_pb2.RootCA) -> tuple[bytes, bytes, bytes]:
    """(key_pem, cert_pem, chain_pem) the CA signs node certificates with; chain_pem follows the leaf."""
    if root_ca.HasField("root_rotation"):
        rotation = root_ca.root_rotation
        return rotation.ca_key, rotation.ca_cert, rotation.cross_signed_ca_cert
    return root_ca.ca_key, root_ca.ca_cert, b""


def desired_issuer(root_ca: objects_pb2.RootCA) -> tuple[bytes, bytes]:
    """(subject DER, SubjectPublicKeyInfo DER) of the root every node certificate should come from."""
    cert = load_certificate(signer(root_ca)[1], "root CA certificate")
    return cert.subject.public_bytes(), _spki(cert.public_key())


def _spki(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def issued_by(cert_pem: bytes, root_cert_pem: bytes) -> bool:
    """True if the root signed the (first) certificate of `cert_pem` itself."""
    if not cert_pem:
        return False
    try:
        check_issued_by(load_certificate(cert_pem), load_certificate(root_cert_pem))
    except CertificateError:
        return False
    return True


def tls_info(cert_pem: bytes, root_bundle_pem: bytes) -> objects_pb2.NodeTLSInfo:
    """What a node reports about its TLS: the bundle it trusts, and the issuer of its certificate."""
    leaf, *chain = load_certificates(cert_pem, "node certificate")
    info = objects_pb2.NodeTLSInfo(trust_root=root_bundle_pem, cert_issuer_subject=leaf.issuer.public_bytes())
    for candidate in [*chain, *load_certificates(root_bundle_pem, "root CA certificate")]:
        try:
            check_issued_by(leaf, candidate)
        except WrongCA:
            continue
        info.cert_issuer_public_key = _spki(candidate.public_key())
        break
    return info

