"""Encryption at rest of the Raft log and snapshots: one AEAD codec the WAL calls for each payload.

Theory of operation
-------------------
Every manager encrypts what its Raft storage writes with a data encryption key (DEK) of its own, as
swarmkit does: the data of each log entry and of each snapshot is sealed with AES-256-GCM under a
fresh 96-bit random nonce, and the record's position is the associated data (kind, index and term),
so a sealed payload moved to another place in the log fails authentication like a tampered one. The
framing around it (record heads, checksums, index and term) stays in clear: it is what recovery reads
to tell a torn write from damage, and it holds nothing of the cluster's state.

The codec is deliberately narrow: `seal(data, context)` and `open(sealed, context)`; the WAL decides
what is sealed and turns an authentication failure into StorageCorrupted with the file and offset.
Where the key is kept (with the node's TLS key, or wrapped by the autolock key) is not this module's
business; see swarmpy.daemon.raft_key.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
_POSITION = struct.Struct("<QQ")


class AuthenticationFailed(Exception):
    """A sealed payload does not authenticate under this key (wrong key, tampered or misplaced)."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=8 * KEY_BYTES)


def entry_context(index: int, term: int) -> bytes:
    return b"entry" + _POSITION.pack(index, term)


def snapshot_context(index: int, term: int) -> bytes:
    return b"snapshot" + _POSITION.pack(index, term)


class RecordCipher:
    """AES-256-GCM with a random nonce per payload: nonce | ciphertext | tag (28 bytes more than the data)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a Raft data encryption key has {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    def seal(self, data: bytes, context: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, bytes(data), context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        if len(sealed) < NONCE_BYTES + 16:
            raise AuthenticationFailed("sealed payload is shorter than its nonce and tag")
        try:
            return self._aead.decrypt(bytes(sealed[:NONCE_BYTES]), bytes(sealed[NONCE_BYTES:]), context)
        except InvalidTag:
            raise AuthenticationFailed("payload fails authentication (wrong key, or the data was altered)") from None
