"""A node's TLS credentials on disk: `<data_dir>/certificates/`.

- swarm-node.pem: the node's private key followed by its certificate, mode 0600. Key and certificate
  share one file so that replacing them on renewal is a single atomic rename: a crash can never leave
  a new certificate beside an old key.
  A manager's Raft data encryption key rides in the same file (a "SWARMPY RAFT DEK" block, as swarmkit
  keeps it in its key file's headers), so it is replaced together with the key and never apart from it.
- swarm-root-ca.crt: the swarm root CA certificate (public), mode 0644.
Every write goes to a temporary file in the same directory, is fsynced, renamed over the old file, and
the directory is fsynced. The public functions are async; the file work runs in a thread.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from pathlib import Path

from swarmpy.ca.certs import load_certificate, load_private_key, public_keys_match
from swarmpy.ca.errors import CertificateError, KeystoreCorrupt
from swarmpy.files import write_atomically

CERTIFICATES_DIR = "certificates"
NODE_CREDENTIALS_FILE = "swarm-node.pem"
ROOT_CA_FILE = "swarm-root-ca.crt"

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----\n?", re.DOTALL)


@dataclass(frozen=True)
class NodeCredentials:
    key_pem: bytes
    cert_pem: bytes
    root_cert_pem: bytes
    raft_dek: bytes = b""  # the Raft data encryption key (swarmpy.raft.encryption); empty until first needed
    # With autolock: the DEK wrapped by the unlock key (swarmpy.autolock). Then only this is stored, and
    # raft_dek is known in memory only once `swarm unlock` gave the key.
    raft_dek_wrapped: bytes = b""
    # Autolock, on a manager: the unlock key everything above is locked with on disk (in memory only,
    # never written: with it set, the TLS key is stored encrypted and the Raft key wrapped).
    lock_key: str = ""
    # As read from a locked node's disk: the encrypted TLS key (key_pem is empty until `swarm unlock`).
    key_pem_locked: bytes = b""


def certificates_dir(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / CERTIFICATES_DIR


def _save(data_dir: Path, credentials: NodeCredentials) -> None:
    if not public_keys_match(credentials.key_pem, credentials.cert_pem):
        raise ValueError("refusing to store a node certificate that does not certify the node key")
    directory = certificates_dir(data_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The root first: a crash between the two writes leaves old node credentials beside a root that
    # (unless the root was rotated) still verifies them.
    write_atomically(directory / ROOT_CA_FILE, credentials.root_cert_pem, 0o644)
    if credentials.lock_key:
        from swarmpy import autolock

        key_block = autolock.lock_private_key(credentials.key_pem, credentials.lock_key)
        dek_block = _pem_block(LOCKED_RAFT_DEK_BLOCK, autolock.wrap(credentials.raft_dek, credentials.lock_key))
    else:
        key_block = credentials.key_pem
        dek_block = _pem_block(RAFT_DEK_BLOCK, credentials.raft_dek) if credentials.raft_dek else b""
    node_pem = key_block.rstrip(b"\n") + b"\n" + credentials.cert_pem.rstrip(b"\n") + b"\n" + dek_block
    write_atomically(directory / NODE_CREDENTIALS_FILE, node_pem, 0o600)


def _load(data_dir: Path) -> NodeCredentials | None:
    directory = certificates_dir(data_dir)
    node_path, root_path = directory / NODE_CREDENTIALS_FILE, directory / ROOT_CA_FILE
    if not node_path.exists() and not root_path.exists():
        return None
    try:
        node_pem, root_cert_pem = node_path.read_bytes(), root_path.read_bytes()
    except OSError as exc:
        raise KeystoreCorrupt(f"cannot read node credentials under {directory}: {exc}") from exc
    matches = list(_PEM_BLOCK.finditer(node_pem))
    blocks = {match.group(1): match.group(0) for match in matches}
    key_pem = blocks.get(b"PRIVATE KEY")
    # The leaf, then any intermediate (the cross-signed root of a CA rotation), in file order.
    cert_pem = b"".join(m.group(0).rstrip(b"\n") + b"\n" for m in matches if m.group(1) == b"CERTIFICATE") or None
    key_pem_locked = blocks.get(b"ENCRYPTED PRIVATE KEY", b"")
    if (key_pem is None and not key_pem_locked) or cert_pem is None:
        raise KeystoreCorrupt(f"{node_path} must hold a PRIVATE KEY and a CERTIFICATE PEM block")
    try:
        if key_pem is not None:
            load_private_key(key_pem, str(node_path))
        load_certificate(cert_pem, str(node_path))
        load_certificate(root_cert_pem, str(root_path))
    except CertificateError as exc:
        raise KeystoreCorrupt(str(exc)) from exc
    if key_pem is not None and not public_keys_match(key_pem, cert_pem):
        raise KeystoreCorrupt(f"{node_path}: the certificate does not certify the key stored with it")
    dek_block = blocks.get(RAFT_DEK_BLOCK.encode())
    raft_dek = _pem_body(dek_block) if dek_block is not None else b""
    locked_block = blocks.get(LOCKED_RAFT_DEK_BLOCK.encode())
    raft_dek_wrapped = _pem_body(locked_block) if locked_block is not None else b""
    return NodeCredentials(key_pem=key_pem or b"", cert_pem=cert_pem, root_cert_pem=root_cert_pem, raft_dek=raft_dek,
                           raft_dek_wrapped=raft_dek_wrapped, key_pem_locked=key_pem_locked)


RAFT_DEK_BLOCK = "SWARMPY RAFT DEK"
LOCKED_RAFT_DEK_BLOCK = "SWARMPY LOCKED RAFT DEK"


def _pem_block(label: str, data: bytes) -> bytes:
    import base64

    return f"-----BEGIN {label}-----\n{base64.b64encode(data).decode()}\n-----END {label}-----\n".encode()


def _pem_body(block: bytes) -> bytes:
    import base64

    lines = block.strip().splitlines()[1:-1]
    return base64.b64decode(b"".join(lines))


async def save_node_credentials(data_dir: str | os.PathLike[str], credentials: NodeCredentials) -> None:
    """Store (or replace) the node's key, certificate and root CA under `data_dir`."""
    await asyncio.to_thread(_save, Path(data_dir), credentials)


async def load_node_credentials(data_dir: str | os.PathLike[str]) -> NodeCredentials | None:
    """The stored credentials, None if the node never joined, KeystoreCorrupt if the files are unusable."""
    return await asyncio.to_thread(_load, Path(data_dir))
