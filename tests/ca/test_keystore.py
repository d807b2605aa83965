"""Node credentials on disk: round trip, file modes, atomic replacement, corruption reported by name."""

from __future__ import annotations

import os
import stat

import pytest

from swarmpy.api import objects_pb2
from swarmpy.ca.errors import KeystoreCorrupt
from swarmpy.ca.keystore import (
    NODE_CREDENTIALS_FILE,
    ROOT_CA_FILE,
    NodeCredentials,
    certificates_dir,
    load_node_credentials,
    save_node_credentials,
)
from tests.ca.swarm_fixtures import new_swarm


def credentials_for(swarm, node_id="n1") -> NodeCredentials:
    key, cert = swarm.node_credentials(objects_pb2.WORKER, node_id)
    return NodeCredentials(key_pem=key, cert_pem=cert, root_cert_pem=swarm.root_cert)


async def test_round_trip_and_modes(tmp_path):
    swarm = new_swarm()
    assert await load_node_credentials(tmp_path) is None
    saved = credentials_for(swarm)
    await save_node_credentials(tmp_path, saved)
    assert await load_node_credentials(tmp_path) == saved
    directory = certificates_dir(tmp_path)
    assert stat.S_IMODE(os.stat(directory / NODE_CREDENTIALS_FILE).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(directory / ROOT_CA_FILE).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700


async def test_key_is_0600_even_under_a_permissive_umask(tmp_path):
    previous = os.umask(0)
    try:
        await save_node_credentials(tmp_path, credentials_for(new_swarm()))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(certificates_dir(tmp_path) / NODE_CREDENTIALS_FILE).st_mode) == 0o600


async def test_renewal_replaces_key_and_certificate_together_leaving_no_temporary_files(tmp_path):
    swarm = new_swarm()
    await save_node_credentials(tmp_path, credentials_for(swarm))
    renewed = credentials_for(swarm)
    await save_node_credentials(tmp_path, renewed)
    assert await load_node_credentials(tmp_path) == renewed
    assert sorted(os.listdir(certificates_dir(tmp_path))) == sorted([NODE_CREDENTIALS_FILE, ROOT_CA_FILE])


async def test_refuses_to_store_a_certificate_for_another_key(tmp_path):
    swarm = new_swarm()
    a, b = credentials_for(swarm), credentials_for(swarm)
    with pytest.raises(ValueError, match="does not certify the node key"):
        await save_node_credentials(tmp_path, NodeCredentials(a.key_pem, b.cert_pem, swarm.root_cert))
    assert await load_node_credentials(tmp_path) is None


async def test_corrupt_files_are_reported_with_their_path(tmp_path):
    swarm = new_swarm()
    await save_node_credentials(tmp_path, credentials_for(swarm))
    node_file = certificates_dir(tmp_path) / NODE_CREDENTIALS_FILE
    node_file.write_bytes(node_file.read_bytes().split(b"-----BEGIN CERTIFICATE")[0])
    with pytest.raises(KeystoreCorrupt, match=NODE_CREDENTIALS_FILE):
        await load_node_credentials(tmp_path)
    (certificates_dir(tmp_path) / ROOT_CA_FILE).unlink()
    with pytest.raises(KeystoreCorrupt, match="cannot read"):
        await load_node_credentials(tmp_path)


async def test_autolock_stores_the_tls_key_encrypted_and_the_raft_key_wrapped(tmp_path):
    import dataclasses

    from swarmpy import autolock
    from swarmpy.ca.certs import public_keys_match

    key = autolock.new_unlock_key()
    credentials = dataclasses.replace(credentials_for(new_swarm()), raft_dek=b"k" * 32, lock_key=key)
    await save_node_credentials(tmp_path, credentials)
    stored = (tmp_path / "certificates" / "swarm-node.pem").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in stored and b"BEGIN PRIVATE KEY" not in stored and key.encode() not in stored
    loaded = await load_node_credentials(tmp_path)
    assert loaded.key_pem == b"" and loaded.raft_dek == b"" and loaded.lock_key == ""
    assert autolock.unwrap(loaded.raft_dek_wrapped, key) == b"k" * 32
    opened = autolock.unlock_private_key(loaded.key_pem_locked, key)
    assert public_keys_match(opened, loaded.cert_pem)
    with pytest.raises(autolock.WrongUnlockKey):
        autolock.unlock_private_key(loaded.key_pem_locked, autolock.new_unlock_key())
