"""The join bootstrap identity: a fixed, public CA and client certificate that only get a caller through TLS.

Why it exists. Managers serve everything on one port with mutual TLS, but a node that is joining has
no certificate yet and must still reach CA.GetRootCACertificate and CA.IssueNodeCertificate. swarmkit
asks for a client certificate only if the client has one (VerifyClientCertIfGiven); Python grpc cannot:
a server either never asks, or demands a certificate that its trust roots verify. So the server also
trusts this bootstrap CA, and joiners present the bootstrap client certificate below.

Why it is public. Its keys are derived from fixed labels in this file and anyone can rebuild them; that
is on purpose and harmless. Passing the handshake with it grants nothing: the authorization layer
(swarmpy.ca.authz) accepts a certificate as a node's only if the swarm's own root CA signed it, so a
bootstrap caller, or anyone minting certificates with this CA, can only reach the two join methods,
where the join token is what authorizes. It plays the role of "no client certificate" in swarmkit.

The certificates were generated once from the derived keys (ECDSA signatures are randomized, so they
are embedded rather than rebuilt at import); tests check they match the derivation.
"""

from __future__ import annotations

import functools
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

BOOTSTRAP_CA_KEY_LABEL = b"swarmpy join bootstrap CA key v1"
BOOTSTRAP_CLIENT_KEY_LABEL = b"swarmpy join bootstrap client key v1"
BOOTSTRAP_OU = "swarm-join"

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

# CN "swarm-join-ca", OU "swarm-join", self-signed, 2020-01-01 .. 9999-12-31, pathlen 0.
BOOTSTRAP_CA_CERT_PEM = b"""-----BEGIN CERTIFICATE-----
MIIBkTCCATagAwIBAgIBATAKBggqhkjOPQQDAjAtMRYwFAYDVQQDDA1zd2FybS1q
b2luLWNhMRMwEQYDVQQLDApzd2FybS1qb2luMCAXDTIwMDEwMTAwMDAwMFoYDzk5
OTkxMjMxMjM1OTU5WjAtMRYwFAYDVQQDDA1zd2FybS1qb2luLWNhMRMwEQYDVQQL
DApzd2FybS1qb2luMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEN6eJ94+4zAcP
fdiRDJ8S2QhCZ3JvIB3FNZDQIGcio2zOXm5Naq4Lgfze9Z5mQZ9qbbMR4JzPhUbL
Y+ytDvEY3KNFMEMwEgYDVR0TAQH/BAgwBgEB/wIBADAOBgNVHQ8BAf8EBAMCAgQw
HQYDVR0OBBYEFLVnQPrOSp+V22zaTKJeWbRmsOZpMAoGCCqGSM49BAMCA0kAMEYC
IQCrXlxPxOGukEh/thQeWVMqAIEs2zPpi6zLYm/B62NVcwIhAP7iwMRpLa0YP8gf
lUIshltFmEFi0jXozjR8Xn4ezwIp
-----END CERTIFICATE-----
"""

# CN "swarm-join", OU "swarm-join", signed by the bootstrap CA, client auth only.
BOOTSTRAP_CLIENT_CERT_PEM = b"""-----BEGIN CERTIFICATE-----
MIIBnTCCAUSgAwIBAgIBAjAKBggqhkjOPQQDAjAtMRYwFAYDVQQDDA1zd2FybS1q
b2luLWNhMRMwEQYDVQQLDApzd2FybS1qb2luMCAXDTIwMDEwMTAwMDAwMFoYDzk5
OTkxMjMxMjM1OTU5WjAqMRMwEQYDVQQDDApzd2FybS1qb2luMRMwEQYDVQQLDApz
d2FybS1qb2luMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEWYDJWJsCsfTSSzrD
f2e36WmG3pxMc5V02xGOS5dxCbgdfat4wt2LuPG9w31zAonI6AVDHUpX4teAdfQO
duq17qNWMFQwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAww
CgYIKwYBBQUHAwIwHwYDVR0jBBgwFoAUtWdA+s5Kn5XbbNpMol5ZtGaw5mkwCgYI
KoZIzj0EAwIDRwAwRAIgOo42E5yOd5C2yj4XS/XUApeLzTxXBeq29s0x2Yps/IQC
IB55nZXQDziclWmJJErctz9rIWmpXTXeoZELwiAusceJ
-----END CERTIFICATE-----
"""


def derive_key_from_label(label: bytes) -> ec.EllipticCurvePrivateKey:
    """The P-256 key whose scalar is SHA-256(label) reduced into [1, n-1]: anyone can recompute it."""
    scalar = int.from_bytes(hashlib.sha256(label).digest(), "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


@functools.cache
def bootstrap_client_key_pem() -> bytes:
    """PEM of the private key that goes with BOOTSTRAP_CLIENT_CERT_PEM."""
    return derive_key_from_label(BOOTSTRAP_CLIENT_KEY_LABEL).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
