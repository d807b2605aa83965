"""Join tokens: `SWMTKN-1-<CA digest>-<secret>`.

The digest part (50 base36 characters, SHA-256 of the root CA certificate's DER) pins the CA a joining
node must find at the manager; the secret part (16 random bytes, 25 base36 characters) is the
credential. A swarm has two tokens, one per role; rotating one replaces only its secret. Secrets are
compared in constant time so response timing reveals nothing about how much of a guess was right.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from swarmpy.api import objects_pb2
from swarmpy.ca.certs import CA_DIGEST_LENGTH, ca_digest
from swarmpy.ca.errors import InvalidJoinTokenSecret, JoinTokenForOtherSwarm, MalformedJoinToken
from swarmpy.identity import to_base36

TOKEN_PREFIX = "SWMTKN"
TOKEN_VERSION = "1"
SECRET_LENGTH = 25
_SECRET_BYTES = 16
_BASE36 = frozenset("0123456789abcdefghijklmnopqrstuvwxyz")
TOKEN_LENGTH = len(TOKEN_PREFIX) + 1 + len(TOKEN_VERSION) + 1 + CA_DIGEST_LENGTH + 1 + SECRET_LENGTH


@dataclass(frozen=True)
class JoinToken:
    ca_digest: str
    secret: str

    def __str__(self) -> str:
        return f"{TOKEN_PREFIX}-{TOKEN_VERSION}-{self.ca_digest}-{self.secret}"


def _new_secret() -> str:
    return to_base36(int.from_bytes(secrets.token_bytes(_SECRET_BYTES), "big"), SECRET_LENGTH)


def generate_join_token(root_cert_pem: bytes) -> str:
    """A new token for the swarm whose root CA certificate is `root_cert_pem`."""
    return str(JoinToken(ca_digest(root_cert_pem), _new_secret()))


def new_join_tokens(root_cert_pem: bytes) -> objects_pb2.JoinTokens:
    """A fresh worker and manager token pair, as the cluster object stores them."""
    return objects_pb2.JoinTokens(
        worker=generate_join_token(root_cert_pem), manager=generate_join_token(root_cert_pem)
    )


def rotate_join_token(token: str) -> str:
    """The same swarm's token with a new secret; the old one stops working once it is replaced."""
    return str(JoinToken(parse_join_token(token).ca_digest, _new_secret()))


def _check_base36(part: str, label: str, length: int) -> None:
    if len(part) != length:
        raise MalformedJoinToken(f"join token {label} has {len(part)} characters, expected {length}")
    if not set(part) <= _BASE36:
        raise MalformedJoinToken(f"join token {label} has characters outside lowercase base36")


def parse_join_token(token: str) -> JoinToken:
    """Split a token into its CA digest and secret; MalformedJoinToken names the part that is wrong."""
    token = token.strip()
    parts = token.split("-")
    if len(parts) != 4:
        raise MalformedJoinToken(
            f"join token has {len(parts)} dash-separated parts, expected 4 (SWMTKN-1-<digest>-<secret>)"
        )
    prefix, version, digest, secret = parts
    if prefix != TOKEN_PREFIX:
        raise MalformedJoinToken(f"join token does not start with {TOKEN_PREFIX}-")
    if version != TOKEN_VERSION:
        raise MalformedJoinToken(f"join token version {version!r} is not supported (expected {TOKEN_VERSION})")
    _check_base36(digest, "CA digest", CA_DIGEST_LENGTH)
    _check_base36(secret, "secret", SECRET_LENGTH)
    return JoinToken(digest, secret)


def check_ca_digest(token: JoinToken, root_cert_pem: bytes) -> None:
    """Raise JoinTokenForOtherSwarm unless the token pins this root CA."""
    if not hmac.compare_digest(token.ca_digest.encode(), ca_digest(root_cert_pem).encode()):
        raise JoinTokenForOtherSwarm("join token is for a different swarm (its CA digest is not this swarm's)")


def role_for_join_token(presented: str, join_tokens: objects_pb2.JoinTokens, root_cert_pem: bytes) -> int:
    """The role (objects_pb2.NodeRole) a presented token grants, or a typed refusal.

    Raises MalformedJoinToken, JoinTokenForOtherSwarm or InvalidJoinTokenSecret, in that order.
    """
    token = parse_join_token(presented)
    check_ca_digest(token, root_cert_pem)
    canonical = str(token).encode()
    # Both comparisons always run, so timing does not say which token came close.
    is_worker = hmac.compare_digest(canonical, join_tokens.worker.encode()) and bool(join_tokens.worker)
    is_manager = hmac.compare_digest(canonical, join_tokens.manager.encode()) and bool(join_tokens.manager)
    if is_manager:
        return objects_pb2.MANAGER
    if is_worker:
        return objects_pb2.WORKER
    raise InvalidJoinTokenSecret("invalid join token (it matches neither current token; was it rotated?)")
