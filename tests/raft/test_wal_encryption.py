"""DiskStorage with a RecordCipher: entries and snapshots are sealed on disk, read back with the key,
and a payload that fails authentication (wrong key, tampered, moved) stops the node with file and offset."""

from __future__ import annotations

import os

import pytest

from swarmpy.raft import errors
from swarmpy.raft.encryption import RecordCipher, new_key
from swarmpy.raft.messages import ConfState, Entry, HardState, Snapshot, SnapshotMeta
from swarmpy.raft.wal import DiskStorage

MARKER = b"clear-text-marker-0123456789"


def all_bytes(folder) -> bytes:
    found = b""
    for root, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(root, name), "rb") as file:
                found += file.read()
    return found


def write_some(folder, cipher) -> None:
    storage = DiskStorage(str(folder), cipher=cipher)
    storage.save(entries=[Entry(term=1, index=i, data=MARKER + bytes([i])) for i in range(1, 6)],
                 hard_state=HardState(term=1, vote=1, commit=5))
    storage.save(snapshot=Snapshot(meta=SnapshotMeta(index=3, term=1, conf=ConfState(voters=(1,))), data=MARKER * 3))
    storage.close()


def test_sealed_on_disk_and_read_back_with_the_key(tmp_path):
    key = new_key()
    write_some(tmp_path, RecordCipher(key))
    assert MARKER not in all_bytes(tmp_path)
    reopened = DiskStorage(str(tmp_path), cipher=RecordCipher(key))
    assert reopened.snapshot().data == MARKER * 3
    reopened.close()
    entries_only = DiskStorage(str(tmp_path / "entries"), cipher=RecordCipher(key))
    entries_only.save(entries=[Entry(term=1, index=1, data=MARKER)], hard_state=HardState(term=1, vote=1, commit=1))
    entries_only.close()
    assert MARKER not in all_bytes(tmp_path / "entries")
    assert DiskStorage(str(tmp_path / "entries"), cipher=RecordCipher(key)).entries(1, 2)[0].data == MARKER
    # without a cipher the same code writes in clear: the marker is what the test looks for
    write_some(tmp_path / "clear", None)
    assert MARKER in all_bytes(tmp_path / "clear")


def test_a_wrong_key_is_refused_as_corruption(tmp_path):
    write_some(tmp_path, RecordCipher(new_key()))
    with pytest.raises(errors.StorageCorrupted) as caught:
        DiskStorage(str(tmp_path), cipher=RecordCipher(new_key()))
    assert "fails authentication" in str(caught.value) and str(tmp_path) in str(caught.value)


def test_a_tampered_entry_that_keeps_its_checksums_is_refused(tmp_path):
    """Re-seal one entry's payload under another position: framing and crc32 stay valid, AEAD does not."""
    import struct
    import zlib

    from swarmpy.raft import wal

    key = new_key()
    storage = DiskStorage(str(tmp_path), cipher=RecordCipher(key))
    storage.save(entries=[Entry(term=1, index=1, data=b"a")], hard_state=HardState(term=1, vote=1, commit=1))
    storage.close()
    wal_dir = tmp_path / "wal"
    (name,) = os.listdir(wal_dir)
    path = wal_dir / name
    raw = path.read_bytes()
    # rebuild the last record with the entry's sealed payload flipped in one bit, checksums recomputed
    offset = raw.rfind(wal.RECORD_MAGIC)
    _, length, flags, _, _ = wal.RECORD_HEAD.unpack_from(raw, offset)
    body = bytearray(raw[offset + wal.RECORD_HEAD.size : offset + wal.RECORD_HEAD.size + length])
    (first_item,) = wal.ITEM_LENGTH.unpack_from(body, 0)
    assert body[4] == wal.RECORD_ENTRY
    body[4 + first_item - 1] ^= 1  # the last byte of the entry's sealed payload (its tag)
    head = wal.RECORD_MAGIC + struct.pack("<II", length, flags)
    record = head + struct.pack("<II", zlib.crc32(head), zlib.crc32(bytes(body))) + bytes(body) + wal.RECORD_END
    path.write_bytes(raw[:offset] + record)
    with pytest.raises(errors.StorageCorrupted) as caught:
        DiskStorage(str(tmp_path), cipher=RecordCipher(key))
    assert caught.value.offset == offset and "entry 1" in str(caught.value)


def test_old_snapshots_are_kept_as_configured_and_across_a_reopen(tmp_path):
    storage = DiskStorage(str(tmp_path))
    storage.keep_old_snapshots = 2
    storage.save(entries=[Entry(term=1, index=i, data=b"x") for i in range(1, 11)], hard_state=HardState(term=1, vote=1, commit=10))
    for index in (2, 4, 6, 8):
        storage.create_snapshot(index, ConfState(voters=(1,)), b"state-%d" % index)
    snaps = sorted(n for n in os.listdir(tmp_path / "snap") if n.endswith(".snap"))
    assert [int(n.split("-")[0], 16) for n in snaps] == [4, 6, 8]
    storage.close()
    reopened = DiskStorage(str(tmp_path))
    assert reopened.snapshot().data == b"state-8"
    assert sorted(n for n in os.listdir(tmp_path / "snap") if n.endswith(".snap")) == snaps
    reopened.create_snapshot(10, ConfState(voters=(1,)), b"state-10")  # keep_old_snapshots back at 0
    assert [n for n in os.listdir(tmp_path / "snap") if n.endswith(".snap")] == [f"{10:016x}-{1:016x}.snap"]
    reopened.close()
