"""X.509 for the swarm: the root CA, node keys and CSRs, node certificates, and checking them.

Theory of operation. Every swarm has one self-signed root CA (ECDSA P-256, CN "swarm-ca", 20 years). A
node makes its own key pair and sends only a CSR; the CA signs it with a subject the CA chooses, never
the one the CSR asks for: CN = node ID, OU = the role ("swarm-worker" / "swarm-manager"), O = cluster
ID. Everything else in the swarm that needs to know who a peer is reads those three fields from a
certificate that `verify_chain` accepted; nothing else carries identity.

Pure functions over PEM bytes: no I/O, no clock unless `now` is left out.
"""

from __future__ import annotations

import datetime
import hashlib
import random
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from swarmpy.api import objects_pb2
from swarmpy.ca.errors import (
    CertificateExpired,
    CertificateNotYetValid,
    InvalidCertificateRequest,
    MalformedCertificate,
    WrongCA,
)
from swarmpy.identity import to_base36

ROOT_CA_COMMON_NAME = "swarm-ca"
ROOT_CA_LIFETIME = datetime.timedelta(days=20 * 365)

WORKER_OU = "swarm-worker"
MANAGER_OU = "swarm-manager"
_OU_BY_ROLE = {objects_pb2.WORKER: WORKER_OU, objects_pb2.MANAGER: MANAGER_OU}
_ROLE_BY_OU = {ou: role for role, ou in _OU_BY_ROLE.items()}

# Clients dial managers with this name as the TLS target whatever address they use, so only the
# certificate's role decides whether a peer may serve manager APIs.
MANAGER_SERVER_NAME = MANAGER_OU

DEFAULT_NODE_CERT_EXPIRY = datetime.timedelta(hours=2160)
MIN_NODE_CERT_EXPIRY = datetime.timedelta(hours=1)
# Backdating tolerates peers whose clocks run a little behind the CA's.
NOT_BEFORE_BACKDATE = datetime.timedelta(hours=1)

RENEWAL_WINDOW = (0.5, 0.8)  # fractions of the lifetime between which a node renews

CA_DIGEST_LENGTH = 50  # base36 characters of a SHA-256 digest


@dataclass(frozen=True)
class NodeIdentity:
    """Who a node certificate says its holder is."""

    node_id: str
    role: int  # objects_pb2.NodeRole
    cluster_id: str
    not_before: datetime.datetime
    not_after: datetime.datetime

    @property
    def is_manager(self) -> bool:
        return self.role == objects_pb2.MANAGER


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_certificate(cert_pem: bytes, what: str = "certificate") -> x509.Certificate:
    """The first certificate of a PEM blob; `what` names it in the error if the bytes are not one."""
    try:
        return x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise MalformedCertificate(f"{what} is not a PEM X.509 certificate: {exc}") from exc


def load_certificates(pem: bytes, what: str = "certificate") -> list[x509.Certificate]:
    """Every certificate of a PEM blob (a leaf with its intermediates, or a bundle of roots), in order."""
    try:
        found = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise MalformedCertificate(f"{what} is not a PEM X.509 certificate: {exc}") from exc
    return found


def load_private_key(key_pem: bytes, what: str = "private key", *, allow_rsa: bool = False) -> ec.EllipticCurvePrivateKey:
    """An unencrypted PEM key. Node keys are ECDSA; a root brought by the user (`--ca-key`) may be RSA."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise MalformedCertificate(f"{what} is not an unencrypted PEM private key: {exc}") from exc
    if allow_rsa and isinstance(key, rsa.RSAPrivateKey):
        return key  # type: ignore[return-value]
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise MalformedCertificate(f"{what} is a {type(key).__name__}, the swarm uses ECDSA keys")
    return key


# What a root CA's key may do (also the cross-signed root of a CA rotation: swarmpy.ca.rotation).
CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
    key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
)


def create_root_ca(now: datetime.datetime | None = None) -> tuple[bytes, bytes]:
    """A new swarm root CA: (key_pem, cert_pem)."""
    now = now or _utcnow()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ROOT_CA_COMMON_NAME)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - NOT_BEFORE_BACKDATE)
        .not_valid_after(now + ROOT_CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _private_key_pem(key), cert.public_bytes(serialization.Encoding.PEM)


def make_node_key_and_csr() -> tuple[bytes, bytes]:
    """A fresh ECDSA P-256 key and a CSR for it: (key_pem, csr_pem).

    The CSR's subject is left empty because the CA decides the subject.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    return _private_key_pem(key), csr.public_bytes(serialization.Encoding.PEM)


def _load_csr(csr_pem: bytes) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise InvalidCertificateRequest(f"CSR is not a PEM certificate signing request: {exc}") from exc
    public_key = csr.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(public_key.curve, ec.SECP256R1):
        raise InvalidCertificateRequest("CSR key must be ECDSA P-256")
    # The signature proves the requester holds the private key it asks us to certify.
    if not csr.is_signature_valid:
        raise InvalidCertificateRequest("CSR signature does not verify with its own public key")
    return csr


def check_certificate_request(csr_pem: bytes) -> None:
    """Raise InvalidCertificateRequest unless the CSR is one the CA would sign."""
    _load_csr(csr_pem)


def sign_node_csr(
    root_key_pem: bytes,
    root_cert_pem: bytes,
    csr_pem: bytes,
    node_id: str,
    role: int,
    cluster_id: str,
    expiry_seconds: float = DEFAULT_NODE_CERT_EXPIRY.total_seconds(),
    *,
    now: datetime.datetime | None = None,
) -> bytes:
    """Sign a node certificate for `node_id` in `role` (objects_pb2.NodeRole) of `cluster_id`.

    Only the CSR's public key is used; its subject and extensions are ignored.
    """
    if role not in _OU_BY_ROLE:
        raise ValueError(f"unknown node role {role!r}")
    lifetime = datetime.timedelta(seconds=expiry_seconds)
    if lifetime < MIN_NODE_CERT_EXPIRY:
        raise ValueError(
            f"node certificate expiry of {expiry_seconds} s is below the minimum of "
            f"{MIN_NODE_CERT_EXPIRY.total_seconds():.0f} s"
        )
    csr = _load_csr(csr_pem)
    root_key = load_private_key(root_key_pem, "root CA key", allow_rsa=True)
    root_cert = load_certificate(root_cert_pem, "root CA certificate")
    now = now or _utcnow()

    dns_names = [_OU_BY_ROLE[role], node_id]
    if role == objects_pb2.MANAGER:
        dns_names.append(ROOT_CA_COMMON_NAME)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, node_id),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, _OU_BY_ROLE[role]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_id),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root_cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - NOT_BEFORE_BACKDATE)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        # Every node is both a TLS client and (managers) a TLS server.
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False
        )
        .sign(root_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _single_attribute(name: x509.Name, oid: x509.ObjectIdentifier, label: str) -> str:
    values = name.get_attributes_for_oid(oid)
    if len(values) != 1:
        raise MalformedCertificate(f"certificate subject has {len(values)} {label} fields, a node certificate has 1")
    value = values[0].value
    return value if isinstance(value, str) else value.decode()


def identity_of(cert: x509.Certificate) -> NodeIdentity:
    """Read the node identity out of a parsed certificate, without checking who signed it."""
    ou = _single_attribute(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME, "OU")
    if ou not in _ROLE_BY_OU:
        raise MalformedCertificate(f"certificate OU {ou!r} is not a swarm node role")
    return NodeIdentity(
        node_id=_single_attribute(cert.subject, NameOID.COMMON_NAME, "CN"),
        role=_ROLE_BY_OU[ou],
        cluster_id=_single_attribute(cert.subject, NameOID.ORGANIZATION_NAME, "O"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def parse_node_certificate(cert_pem: bytes) -> NodeIdentity:
    """The identity a node certificate claims. Does not verify it: see verify_chain."""
    return identity_of(load_certificate(cert_pem, "node certificate"))


def check_issued_by(cert: x509.Certificate, root: x509.Certificate) -> None:
    """Raise WrongCA unless `root` signed `cert` (name and signature; dates are not looked at)."""
    try:
        cert.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise WrongCA(
            f"certificate {cert.subject.rfc4514_string()!r} was not issued by this swarm's root CA "
            f"(issuer {cert.issuer.rfc4514_string()!r})"
        ) from exc


def check_issued_by_any(cert: x509.Certificate, roots: list[x509.Certificate]) -> x509.Certificate:
    """The root of `roots` that signed `cert` directly; WrongCA if none did. During a CA rotation the
    swarm trusts two roots (swarmpy.ca.rotation.trust_bundle)."""
    refusal = WrongCA("there is no root CA certificate to check the certificate against")
    for root in roots:
        try:
            check_issued_by(cert, root)
        except WrongCA as exc:
            refusal = exc
            continue
        return root
    raise refusal


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def check_path(leaf: x509.Certificate, intermediates: list[x509.Certificate], roots: list[x509.Certificate],
               now: datetime.datetime | None = None, *, dates: bool = True) -> None:
    """Raise unless a root signed `leaf` directly, or through one CA intermediate it signed (the
    cross-signed root of a CA rotation). With `dates`, every certificate on the path must be current."""
    try:
        check_issued_by_any(leaf, roots)
        path = [leaf]
    except WrongCA as direct:
        for intermediate in intermediates:
            if not _is_ca(intermediate):
                continue  # a leaf passed off as an intermediate must not vouch for anything
            try:
                check_issued_by(leaf, intermediate)
                check_issued_by_any(intermediate, roots)
            except WrongCA:
                continue
            path = [leaf, intermediate]
            break
        else:
            raise direct
    if dates:
        for cert in path:
            check_validity(cert, now)


def check_validity(cert: x509.Certificate, now: datetime.datetime | None = None) -> None:
    """Raise CertificateExpired / CertificateNotYetValid unless `now` is within the certificate's dates."""
    now = now or _utcnow()
    if now > cert.not_valid_after_utc:
        raise CertificateExpired(
            f"certificate {cert.subject.rfc4514_string()!r} expired at {cert.not_valid_after_utc.isoformat()}"
        )
    if now < cert.not_valid_before_utc:
        raise CertificateNotYetValid(
            f"certificate {cert.subject.rfc4514_string()!r} is not valid before "
            f"{cert.not_valid_before_utc.isoformat()}; check the clocks"
        )


def check_signed_by(cert: x509.Certificate, root: x509.Certificate, now: datetime.datetime | None = None) -> None:
    """Raise WrongCA / CertificateExpired / CertificateNotYetValid unless `root` issued `cert` and it is current."""
    check_issued_by(cert, root)
    check_validity(cert, now)


def verify_chain(cert_pem: bytes, root_cert_pem: bytes, now: datetime.datetime | None = None) -> NodeIdentity:
    """Check that a root CA of the bundle signed the node certificate (directly, or through the
    intermediate that follows it in `cert_pem`) and that it is current; return its identity."""
    leaf, *intermediates = load_certificates(cert_pem, "node certificate")
    check_path(leaf, intermediates, load_certificates(root_cert_pem, "root CA certificate"), now)
    return identity_of(leaf)


def renewal_delay(
    cert_pem: bytes, now: datetime.datetime | None = None, rng: random.Random | None = None
) -> float:
    """Seconds from now until the node should renew: a random point in 50-80% of the lifetime, or 0 if past.

    The randomness spreads the renewals of nodes that joined together.
    """
    cert = load_certificate(cert_pem, "node certificate")
    now = now or _utcnow()
    fraction = (rng or random).uniform(*RENEWAL_WINDOW)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    renew_at = cert.not_valid_before_utc + lifetime * fraction
    return max(0.0, (renew_at - now).total_seconds())


def ca_digest(root_cert_pem: bytes) -> str:
    """The root CA's fingerprint as join tokens carry it: SHA-256 of the DER, 50 base36 characters."""
    der = load_certificate(root_cert_pem, "root CA certificate").public_bytes(serialization.Encoding.DER)
    return to_base36(int.from_bytes(hashlib.sha256(der).digest(), "big"), CA_DIGEST_LENGTH)


def public_keys_match(key_pem: bytes, cert_pem: bytes, *, allow_rsa: bool = False) -> bool:
    """True if the certificate certifies the private key's public half."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    key_public = load_private_key(key_pem, allow_rsa=allow_rsa).public_key()
    key_public = key_public.public_bytes(serialization.Encoding.DER, spki)
    cert_public = load_certificate(cert_pem).public_key().public_bytes(serialization.Encoding.DER, spki)
    return key_public == cert_public
