"""Autolock: the unlock key (SWMKEY-1-...) and the wrapping of a manager's Raft key under it.

Theory of operation
-------------------
Without autolock a manager's Raft data encryption key (DEK) is stored with its TLS key (swarmkit's
default). With autolock the cluster object holds an unlock key (a random 32-byte key, shown to users
as `SWMKEY-1-<base64>`), every manager stores its DEK only wrapped by it (AES-256-GCM), and a restarted
manager cannot read its Raft data until `swarm unlock` gives the key: it stays locked, with no Raft and
no control API. Rotating the key re-wraps each manager's DEK as the new key reaches it through the
store; the old key no longer opens a manager that has re-wrapped.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "SWMKEY-1-"
KEY_BYTES = 32
_CONTEXT = b"swarmpy raft dek"

LOCKED_MESSAGE = (
    'Swarm is encrypted and needs to be unlocked before it can be used. Please use "swarmpy swarm unlock"'
    " to unlock it."
)


class WrongUnlockKey(Exception):
    """The key does not open this manager's Raft key."""


def new_unlock_key() -> str:
    return PREFIX + base64.b64encode(os.urandom(KEY_BYTES)).decode().rstrip("=")


def parse_unlock_key(text: str) -> bytes:
    """The 32 key bytes of `SWMKEY-1-...`; ValueError naming what is wrong (never echoing the key)."""
    text = text.strip()
    if not text.startswith(PREFIX):
        raise ValueError(f"invalid unlock key: it must start with {PREFIX}")
    body = text[len(PREFIX):]
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("invalid unlock key: the part after SWMKEY-1- is not base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"invalid unlock key: it holds {len(key)} bytes, not {KEY_BYTES}")
    return key


def lock_private_key(key_pem: bytes, unlock_key: str) -> bytes:
    """The node's TLS key as an ENCRYPTED PRIVATE KEY PEM block, under the unlock key (swarmkit does so too)."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_pem, password=None)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(parse_unlock_key(unlock_key)),
    )


def unlock_private_key(locked_pem: bytes, unlock_key: str) -> bytes:
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(locked_pem, password=parse_unlock_key(unlock_key))
    except (ValueError, TypeError):
        raise WrongUnlockKey("invalid key: it does not unlock this node's TLS key") from None
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def wrap(dek: bytes, unlock_key: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(parse_unlock_key(unlock_key)).encrypt(nonce, dek, _CONTEXT)


def unwrap(wrapped: bytes, unlock_key: str) -> bytes:
    key = parse_unlock_key(unlock_key)
    try:
        return AESGCM(key).decrypt(wrapped[:12], wrapped[12:], _CONTEXT)
    except (InvalidTag, ValueError):
        raise WrongUnlockKey("invalid key: it does not unlock this node's Raft data") from None
