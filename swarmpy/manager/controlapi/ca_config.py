"""What a cluster update's CA config asks of the root CA (after swarmkit's controlapi/ca_rotation.go).

One model for both doors: `swarmpy swarm ca --rotate` and the Engine API's swarm update (which
`docker swarm ca --rotate` calls) both send a ClusterSpec whose ca_config says
- `signing_ca_cert` + `signing_ca_key`: rotate to this root (checked: a PEM CA certificate, self-signed,
  current, its key matching), unless it is the root already in use or being rotated to;
- `force_rotate` above the last one answered: rotate to a newly generated root;
- neither: leave the root alone (a spec read back has the cert but never the key: that changes nothing).
Starting a rotation only writes RootCA.root_rotation; swarmpy.manager.ca_rotation carries it out.
The key is never kept in the spec.
"""

from __future__ import annotations

import grpc
from cryptography.hazmat.primitives.serialization import Encoding

from swarmpy.api import objects_pb2
from swarmpy.ca.certs import load_certificates
from swarmpy.ca.errors import CertificateError
from swarmpy.ca.rotation import InvalidSigningRoot, check_signing_root, start_rotation

from .errors import ControlError


class BadSigningRoot(ControlError):
    """The root brought for a rotation is unusable; nothing changed. The caller's fault."""

    code = grpc.StatusCode.INVALID_ARGUMENT


def check_requested_root(ca_config: objects_pb2.CAConfig) -> tuple[bytes, bytes] | tuple[bytes, None] | None:
    """Before the transaction (it costs signatures): (cert, key) normalised and checked, (cert, None)
    when only a certificate came (fine only if it is the current root), None when no root was given."""
    cert_pem, key_pem = ca_config.signing_ca_cert, ca_config.signing_ca_key
    if not cert_pem:
        if key_pem:
            raise BadSigningRoot("a signing CA key (--ca-key) needs its certificate (--ca-cert)")
        return None
    if key_pem:
        try:
            return check_signing_root(cert_pem, key_pem)
        except InvalidSigningRoot as exc:
            raise BadSigningRoot(str(exc)) from None
    try:
        found = load_certificates(cert_pem, "signing CA certificate (--ca-cert)")
    except CertificateError as exc:
        raise BadSigningRoot(str(exc)) from None
    return b"".join(c.public_bytes(Encoding.PEM) for c in found), None


def apply_ca_config(current: objects_pb2.Cluster, updated: objects_pb2.Cluster, requested: tuple | None) -> str:
    """Change `updated` (its spec already the requested one) as its CA config asks; says what it did."""
    ca_config = updated.spec.ca_config
    ca_config.ClearField("signing_ca_key")
    root_ca = updated.root_ca
    rotating = root_ca.HasField("root_rotation")
    target = root_ca.root_rotation.ca_cert if rotating else root_ca.ca_cert
    if requested is not None:
        cert_pem, key_pem = requested
        ca_config.signing_ca_cert = cert_pem
        if cert_pem in (target, current.spec.ca_config.signing_ca_cert):
            return ""  # the root in use or under way: a spec read back and sent again
        if cert_pem == root_ca.ca_cert:
            raise BadSigningRoot("a CA rotation is under way from this root; rotate to a new root instead")
        if key_pem is None:
            raise BadSigningRoot("the signing CA certificate (--ca-cert) is not this swarm's root: give its key "
                                 "(--ca-key) to rotate to it (swarmpy has no external CA)")
        root_ca.CopyFrom(start_rotation(root_ca, cert_pem, key_pem))
        return "rotating to the given root CA"
    if ca_config.force_rotate != current.spec.ca_config.force_rotate:
        ca_config.ClearField("signing_ca_cert")
        root_ca.CopyFrom(start_rotation(root_ca))
        root_ca.last_forced_rotation = ca_config.force_rotate
        return "rotating to a new root CA"
    ca_config.signing_ca_cert = current.spec.ca_config.signing_ca_cert
    return ""

