"""DiskStorage: round trips, crash recovery (torn last record), corruption detection, snapshots, compaction."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from swarmpy.raft import errors
from swarmpy.raft.messages import ConfState, Entry, EntryType, HardState, Snapshot, SnapshotMeta
from swarmpy.raft.wal import DiskStorage, read_segment


def make_entries(first: int, last: int, term: int = 1, size: int = 10) -> list[Entry]:
    return [Entry(term=term, index=i, data=bytes([i % 251]) * size) for i in range(first, last + 1)]


def segment_path(folder) -> str:
    wal_dir = os.path.join(folder, "wal")
    (name,) = [n for n in os.listdir(wal_dir) if n.endswith(".wal")]
    return os.path.join(wal_dir, name)


def test_fresh_storage_is_empty(tmp_path):
    storage = DiskStorage(str(tmp_path))
    assert storage.initial_state() == (HardState(), ConfState())
    assert (storage.first_index(), storage.last_index()) == (1, 0)
    assert storage.term(0) == 0
    assert storage.snapshot().empty
    with pytest.raises(errors.Unavailable):
        storage.term(1)
    storage.close()


def test_round_trip_entries_and_hard_state(tmp_path):
    storage = DiskStorage(str(tmp_path))
    entries = make_entries(1, 50) + [Entry(term=2, index=51, type=EntryType.CONF_CHANGE, data=b"cc")]
    storage.save(entries=entries, hard_state=HardState(term=2, vote=7, commit=40))
    storage.close()

    reopened = DiskStorage(str(tmp_path))
    assert reopened.initial_state() == (HardState(term=2, vote=7, commit=40), ConfState())
    assert reopened.entries(1, 52) == entries
    assert reopened.term(51) == 2
    assert (reopened.first_index(), reopened.last_index()) == (1, 51)
    reopened.close()


def test_one_ready_costs_one_fsync(tmp_path):
    storage = DiskStorage(str(tmp_path))
    before = storage.fsync_count
    storage.save(entries=make_entries(1, 100), hard_state=HardState(term=1, vote=1, commit=0))
    assert storage.fsync_count == before + 1
    storage.close()


def test_commit_only_hard_state_is_deferred_to_the_next_batch(tmp_path):
    storage = DiskStorage(str(tmp_path))
    storage.save(entries=make_entries(1, 10), hard_state=HardState(term=1, vote=1, commit=0))
    before = storage.fsync_count
    assert storage.defers((), HardState(term=1, vote=1, commit=5), None)
    assert not storage.defers((), HardState(term=2, vote=1, commit=5), None)  # a new term must be durable
    storage.set_hard_state(HardState(term=1, vote=1, commit=5))
    assert storage.fsync_count == before and storage.hard_state.commit == 5
    # A crash now loses the commit index (learnt again from the leader), never term or vote.
    crashed = DiskStorage(str(tmp_path))
    assert crashed.initial_state()[0] == HardState(term=1, vote=1, commit=0)
    crashed.close()
    storage.append(make_entries(11, 11))  # carries the deferred hard state
    storage.set_hard_state(HardState(term=1, vote=1, commit=11))
    storage.close()  # writes it
    reopened = DiskStorage(str(tmp_path))
    assert reopened.initial_state()[0] == HardState(term=1, vote=1, commit=11)
    reopened.close()


def test_entries_limits_and_errors(tmp_path):
    storage = DiskStorage(str(tmp_path))
    storage.append(make_entries(1, 10, size=100))
    assert len(storage.entries(1, 11, max_bytes=250)) == 2
    assert len(storage.entries(1, 11, max_bytes=1)) == 1  # at least one entry
    with pytest.raises(errors.Unavailable):
        storage.entries(1, 12)
    with pytest.raises(errors.Compacted):
        storage.entries(0, 3)
    storage.close()


def test_append_truncates_a_conflicting_suffix_also_after_reopen(tmp_path):
    storage = DiskStorage(str(tmp_path))
    storage.append(make_entries(1, 10, term=1))
    storage.append(make_entries(6, 8, term=2))
    assert storage.last_index() == 8
    assert [e.term for e in storage.entries(1, 9)] == [1] * 5 + [2] * 3
    storage.close()
    reopened = DiskStorage(str(tmp_path))
    assert reopened.last_index() == 8
    assert [e.term for e in reopened.entries(1, 9)] == [1] * 5 + [2] * 3
    with pytest.raises(ValueError):
        reopened.append(make_entries(20, 21))  # a gap
    reopened.close()


def test_torn_last_record_is_dropped_at_every_offset(tmp_path):
    folder = tmp_path / "data"
    storage = DiskStorage(str(folder))
    storage.append(make_entries(1, 5))
    storage.set_hard_state(HardState(term=1, vote=1, commit=5))
    path = segment_path(folder)
    good_size = os.path.getsize(path)
    storage.append(make_entries(6, 6, size=40))  # the record we tear
    storage.close()
    full = open(path, "rb").read()
    assert len(full) > good_size
    for cut in range(good_size, len(full)):
        with open(path, "wb") as file:
            file.write(full[:cut])
        reopened = DiskStorage(str(folder))
        assert reopened.last_index() == 5, cut
        assert reopened.initial_state()[0] == HardState(term=1, vote=1, commit=5)
        reopened.close()
        assert os.path.getsize(path) == good_size  # truncated at the last good record
    # Zeros where the last record should be (the file was extended, the data never written): torn too.
    with open(path, "wb") as file:
        file.write(full[:good_size] + bytes(len(full) - good_size))
    reopened = DiskStorage(str(folder))
    assert reopened.last_index() == 5
    reopened.close()


def test_flipped_byte_in_the_middle_is_corruption_naming_file_and_offset(tmp_path):
    folder = tmp_path / "data"
    storage = DiskStorage(str(folder))
    for i in range(1, 21):
        storage.append(make_entries(i, i, size=30))
    storage.close()
    path = segment_path(folder)
    original = open(path, "rb").read()
    record_size = len(original) // 21  # rough: used to pick a record in the middle
    for position in (record_size * 5 + 3, record_size * 10 + 20, len(original) // 2):
        damaged = bytearray(original)
        damaged[position] ^= 0x40
        with open(path, "wb") as file:
            file.write(damaged)
        with pytest.raises(errors.StorageCorrupted) as caught:
            DiskStorage(str(folder))
        assert caught.value.path == path
        assert 0 < caught.value.offset <= position
        assert open(path, "rb").read() == damaged  # nothing was truncated
    with open(path, "wb") as file:
        file.write(original[: len(original) // 2] + b"garbage!" * 8 + original[len(original) // 2 :])
    with pytest.raises(errors.StorageCorrupted):
        DiskStorage(str(folder))


def test_missing_segment_with_a_snapshot_is_corruption(tmp_path):
    storage = DiskStorage(str(tmp_path))
    storage.append(make_entries(1, 10))
    storage.create_snapshot(8, ConfState((1,)), b"state")
    storage.close()
    os.unlink(segment_path(tmp_path))
    with pytest.raises(errors.StorageCorrupted, match="segment is missing"):
        DiskStorage(str(tmp_path))


def test_snapshot_create_compact_and_reopen(tmp_path):
    storage = DiskStorage(str(tmp_path))
    storage.save(entries=make_entries(1, 100), hard_state=HardState(term=1, vote=1, commit=100))
    snap = storage.create_snapshot(90, ConfState((1, 2, 3)), b"app state at 90")
    assert snap.meta == SnapshotMeta(index=90, term=1, conf=ConfState((1, 2, 3)))
    with pytest.raises(errors.SnapshotOutOfDate):
        storage.create_snapshot(50, ConfState((1, 2, 3)), b"older")
    storage.compact(80)  # keep 10 entries for slow followers
    assert (storage.first_index(), storage.last_index()) == (81, 100)
    assert storage.term(80) == 1
    with pytest.raises(errors.Compacted):
        storage.entries(80, 82)
    with pytest.raises(ValueError):
        storage.compact(95)  # past the snapshot: would lose data on restart
    storage.append(make_entries(101, 110))
    storage.close()
    assert len(os.listdir(tmp_path / "wal")) == 1  # the old segment was dropped

    reopened = DiskStorage(str(tmp_path))
    assert (reopened.first_index(), reopened.last_index()) == (81, 110)
    assert reopened.snapshot() == snap
    assert reopened.entries(81, 111) == make_entries(81, 110)
    assert reopened.initial_state() == (HardState(term=1, vote=1, commit=100), ConfState((1, 2, 3)))
    reopened.close()


def test_apply_snapshot_replaces_the_log(tmp_path):
    storage = DiskStorage(str(tmp_path))
    storage.append(make_entries(1, 10))
    snap = Snapshot(meta=SnapshotMeta(index=500, term=4, conf=ConfState((1, 2, 3))), data=b"x" * 1000)
    storage.save(entries=make_entries(501, 502, term=4), hard_state=HardState(term=4, vote=0, commit=500), snapshot=snap)
    storage.close()
    reopened = DiskStorage(str(tmp_path))
    assert reopened.snapshot() == snap
    assert (reopened.first_index(), reopened.last_index()) == (501, 502)
    assert reopened.term(500) == 4
    assert reopened.initial_state() == (HardState(term=4, vote=0, commit=500), ConfState((1, 2, 3)))
    reopened.close()


def test_snapshot_written_but_checkpoint_not_yet_wins_over_an_older_log(tmp_path):
    storage = DiskStorage(str(tmp_path))
    storage.append(make_entries(1, 10))
    storage._write_snapshot_file(Snapshot(meta=SnapshotMeta(index=50, term=3, conf=ConfState((1,))), data=b"s"))
    storage.close()  # crash before the checkpoint segment
    reopened = DiskStorage(str(tmp_path))
    assert (reopened.first_index(), reopened.last_index()) == (51, 50)
    assert reopened.initial_state()[0].commit == 50
    # Appends after the snapshot must not land in the old segment after a gap (found by wal_crashes).
    reopened.append(make_entries(51, 52, term=3))
    reopened.close()
    again = DiskStorage(str(tmp_path))
    assert (again.first_index(), again.last_index()) == (51, 52)
    again.close()


def test_snapshot_atomicity_leftover_temp_files_and_damaged_snapshot(tmp_path):
    storage = DiskStorage(str(tmp_path))
    storage.append(make_entries(1, 10))
    snap = storage.create_snapshot(5, ConfState((1,)), b"five")
    storage.close()
    # A crash during the next snapshot leaves only its temp file: ignored and removed, the old one stays.
    (tmp_path / "snap" / f"{9:016x}-{1:016x}.snap.tmp").write_bytes(b"half a snapsh")
    reopened = DiskStorage(str(tmp_path))
    assert reopened.snapshot() == snap
    assert not [n for n in os.listdir(tmp_path / "snap") if n.endswith(".tmp")]
    reopened.close()
    (snap_file,) = list((tmp_path / "snap").iterdir())
    raw = bytearray(snap_file.read_bytes())
    raw[len(raw) // 2] ^= 1
    snap_file.write_bytes(raw)
    with pytest.raises(errors.StorageCorrupted) as caught:
        DiskStorage(str(tmp_path))
    assert caught.value.path == str(snap_file)


def test_crash_of_a_child_process_mid_append_keeps_every_acknowledged_batch(tmp_path):
    """A child appends batches, printing each index once save() returned, and dies with os._exit mid-write."""
    script = textwrap.dedent(
        f"""
        import os, sys
        from swarmpy.raft.messages import Entry, HardState
        from swarmpy.raft import wal
        storage = wal.DiskStorage({str(tmp_path)!r})
        real_write = os.write
        for index in range(1, 40):
            if index == 33:
                def dying_write(fd, data):
                    real_write(fd, bytes(data)[: len(data) // 2])
                    os._exit(9)
                os.write = dying_write
            storage.save(entries=[Entry(term=1, index=index, data=b"v" * 50)], hard_state=HardState(1, 1, index))
            print(index, flush=True)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 9, result.stderr
    acknowledged = [int(line) for line in result.stdout.split()]
    assert acknowledged == list(range(1, 33))
    reopened = DiskStorage(str(tmp_path))
    assert reopened.last_index() == 32
    assert reopened.initial_state()[0] == HardState(1, 1, 32)
    reopened.close()


def test_read_segment_reports_the_good_length(tmp_path):
    storage = DiskStorage(str(tmp_path))
    storage.append(make_entries(1, 3))
    storage.close()
    path = segment_path(tmp_path)
    seq = int(os.path.basename(path).split(".")[0], 16)
    contents = read_segment(path, seq)
    assert contents.good_length == os.path.getsize(path)
    assert [e.index for e in contents.entries] == [1, 2, 3]


# ---------------------------------------------------------------- what the WAL must never lose (issue 9)


def _two_record_log(folder, last_entry_size: int = 40) -> tuple[str, int, bytes]:
    """A segment whose last record (entry 6, then term 5 and vote 2) was fsync'd: path, start of it, bytes."""
    storage = DiskStorage(str(folder))
    storage.save(entries=make_entries(1, 5), hard_state=HardState(term=1, vote=1, commit=5))
    path = segment_path(folder)
    start = os.path.getsize(path)
    storage.save(entries=make_entries(6, 6, term=5, size=last_entry_size), hard_state=HardState(term=5, vote=2, commit=5))
    storage.close()
    return path, start, open(path, "rb").read()


def test_a_flip_anywhere_in_the_last_fsynced_record_is_refused_not_taken_for_a_torn_write(tmp_path):
    folder = tmp_path / "data"
    path, start, full = _two_record_log(folder)
    for position in range(start, len(full)):
        damaged = bytearray(full)
        damaged[position] ^= 0x01
        with open(path, "wb") as file:
            file.write(damaged)
        with pytest.raises(errors.StorageCorrupted) as caught:
            DiskStorage(str(folder))  # the fsync'd vote (term 5, vote 2) must not silently vanish
        assert (caught.value.path, caught.value.offset) == (path, start), position
        assert open(path, "rb").read() == damaged  # nothing truncated
    with open(path, "wb") as file:
        file.write(full)
    reopened = DiskStorage(str(folder))
    assert reopened.initial_state()[0] == HardState(term=5, vote=2, commit=5)
    reopened.close()


def test_a_sector_never_written_in_the_last_record_is_a_torn_write_and_logged(tmp_path, caplog):
    folder = tmp_path / "data"
    path, start, full = _two_record_log(folder, last_entry_size=3000)
    sector = (start // 512 + 2) * 512  # wholly inside the last record
    assert sector + 512 < len(full)
    with open(path, "wb") as file:
        file.write(full[:sector] + bytes(512) + full[sector + 512 :])
    with caplog.at_level("WARNING", logger="swarmpy.raft.wal"):
        reopened = DiskStorage(str(folder))
    assert reopened.last_index() == 5 and reopened.initial_state()[0] == HardState(1, 1, 5)
    reopened.close()
    assert f"dropping {len(full) - start} bytes at offset {start}" in caplog.text
    assert "never written" in caplog.text
    assert os.path.getsize(path) == start


def test_a_record_whose_data_holds_a_zero_sector_cannot_be_proven_torn_and_is_refused(tmp_path):
    folder = tmp_path / "data"
    storage = DiskStorage(str(folder))
    storage.append(make_entries(1, 2))
    path = segment_path(folder)
    start = os.path.getsize(path)
    storage.append([Entry(term=1, index=3, data=bytes(3000))])
    storage.close()
    full = open(path, "rb").read()
    sector = (start // 512 + 2) * 512
    with open(path, "wb") as file:
        file.write(full[:sector] + bytes(512) + full[sector + 512 :])
    reopened = DiskStorage(str(folder))  # zeros where zeros were written: intact
    assert reopened.entries(3, 4)[0].data == bytes(3000)
    reopened.close()
    damaged = bytearray(full)
    damaged[sector - 100] ^= 0xFF
    damaged[sector + 10] ^= 0xFF
    with open(path, "wb") as file:
        file.write(bytes(damaged))
    with pytest.raises(errors.StorageCorrupted, match="whole on disk"):
        DiskStorage(str(folder))


def test_truncation_within_a_record_is_logged_and_at_a_boundary_the_recovered_end_is_logged(tmp_path, caplog):
    folder = tmp_path / "data"
    path, start, full = _two_record_log(folder)
    with open(path, "wb") as file:
        file.write(full[: start + 30])
    with caplog.at_level("INFO", logger="swarmpy.raft.wal"):
        reopened = DiskStorage(str(folder))
    reopened.close()
    assert "dropping 30 bytes at offset %d" % start in caplog.text and "ends inside it" in caplog.text
    caplog.clear()
    with open(path, "wb") as file:
        file.write(full[:start])  # exactly at a record boundary: looks like a crash before the write
    with caplog.at_level("INFO", logger="swarmpy.raft.wal"):
        reopened = DiskStorage(str(folder))
    assert reopened.last_index() == 5
    reopened.close()
    assert "recovered entries 1-5 (snapshot at 0), term 1, vote 1" in caplog.text


def _old_and_new_segment(folder) -> tuple[str, str]:
    """A crash between writing a compacted segment and deleting the old one: both are on disk."""
    storage = DiskStorage(str(folder))
    storage.save(entries=make_entries(1, 20), hard_state=HardState(term=1, vote=1, commit=20))
    storage.create_snapshot(15, ConfState((1,)), b"state at 15")
    old_path = segment_path(folder)
    old_bytes = open(old_path, "rb").read()
    storage.compact(10)
    storage.append(make_entries(21, 25))
    storage.close()
    new_path = segment_path(folder)
    with open(old_path, "wb") as file:
        file.write(old_bytes)
    return old_path, new_path


def test_a_damaged_newest_segment_next_to_an_intact_older_one_deletes_nothing(tmp_path):
    folder = tmp_path / "data"
    old_path, new_path = _old_and_new_segment(folder)
    damaged = bytearray(open(new_path, "rb").read())
    damaged[len(damaged) // 3] ^= 0x10
    with open(new_path, "wb") as file:
        file.write(bytes(damaged))
    with pytest.raises(errors.StorageCorrupted, match="older segment .* is kept: nothing was deleted") as caught:
        DiskStorage(str(folder))
    assert caught.value.path == new_path
    assert os.path.exists(old_path) and open(new_path, "rb").read() == bytes(damaged)
    assert len(os.listdir(folder / "snap")) == 1


def test_an_intact_pair_of_segments_keeps_the_newest_and_a_damaged_older_one_is_refused(tmp_path):
    folder = tmp_path / "data"
    old_path, new_path = _old_and_new_segment(folder)
    old_bytes = open(old_path, "rb").read()
    damaged = bytearray(old_bytes)
    damaged[len(damaged) // 2] ^= 0x10
    with open(old_path, "wb") as file:
        file.write(bytes(damaged))
    with pytest.raises(errors.StorageCorrupted) as caught:
        DiskStorage(str(folder))  # every segment is validated before any is deleted
    assert caught.value.path == old_path and os.path.exists(old_path) and os.path.exists(new_path)
    with open(old_path, "wb") as file:
        file.write(old_bytes)
    reopened = DiskStorage(str(folder))
    assert (reopened.first_index(), reopened.last_index()) == (11, 25)
    reopened.close()
    assert not os.path.exists(old_path) and os.path.exists(new_path)


def test_a_half_written_snapshot_is_refused_and_a_half_written_temp_file_is_removed(tmp_path, caplog):
    storage = DiskStorage(str(tmp_path))
    storage.append(make_entries(1, 10))
    storage.create_snapshot(5, ConfState((1,)), b"five" * 100)
    storage.close()
    (snap_file,) = list((tmp_path / "snap").iterdir())
    whole = snap_file.read_bytes()
    (tmp_path / "snap" / f"{9:016x}-{1:016x}.snap.tmp").write_bytes(whole[:100])
    with caplog.at_level("WARNING", logger="swarmpy.raft.wal"):
        DiskStorage(str(tmp_path)).close()
    assert "interrupted atomic write" in caplog.text
    for cut in (10, len(whole) // 2, len(whole) - 1):
        snap_file.write_bytes(whole[:cut])
        with pytest.raises(errors.StorageCorrupted) as caught:
            DiskStorage(str(tmp_path))
        assert caught.value.path == str(snap_file)
        assert os.path.exists(snap_file)


@pytest.mark.parametrize("garbage", [b"garbage!" * 4, b"xyz", b"SWRB" + b"\xff" * 30, b"\x00" * 5 + b"\x01" * 40])
def test_garbage_after_the_tail_is_refused_with_the_offset(tmp_path, garbage):
    folder = tmp_path / "data"
    path, _, full = _two_record_log(folder)
    with open(path, "wb") as file:
        file.write(full + garbage)
    with pytest.raises(errors.StorageCorrupted) as caught:
        DiskStorage(str(folder))
    assert (caught.value.path, caught.value.offset) == (path, len(full))


def test_zeros_after_the_tail_are_an_extension_never_written(tmp_path):
    folder = tmp_path / "data"
    path, _, full = _two_record_log(folder)
    with open(path, "wb") as file:
        file.write(full + bytes(700))
    reopened = DiskStorage(str(folder))
    assert reopened.initial_state()[0] == HardState(term=5, vote=2, commit=5)
    reopened.close()
    assert os.path.getsize(path) == len(full)


def test_a_damaged_record_followed_by_a_complete_one_is_refused(tmp_path):
    folder = tmp_path / "data"
    path, start, full = _two_record_log(folder)
    damaged = bytearray(full)
    damaged[start - 10] ^= 0x04  # inside the first record: the second proves it was synced
    with open(path, "wb") as file:
        file.write(bytes(damaged))
    with pytest.raises(errors.StorageCorrupted, match="more data follows"):
        DiskStorage(str(folder))
    damaged = bytearray(full)
    damaged[start - 1] = 0  # its end marker
    damaged[start - 2] = 0
    damaged[start - 3] = 0
    damaged[start - 4] = 0
    with open(path, "wb") as file:
        file.write(bytes(damaged))
    with pytest.raises(errors.StorageCorrupted):
        DiskStorage(str(folder))


def test_a_head_cut_by_the_end_of_the_file_with_its_second_sector_unwritten_is_torn(tmp_path):
    """Found by wal_crashes (seed 3712): the head's first byte in one sector, the rest zeros in the next."""
    folder = tmp_path / "data"
    path, _, full = _two_record_log(folder)
    with open(path, "wb") as file:
        file.write(full + b"S" + bytes(8))
    reopened = DiskStorage(str(folder))
    assert reopened.initial_state()[0] == HardState(term=5, vote=2, commit=5)
    reopened.close()


def test_a_data_dir_written_before_learners_existed_still_opens(tmp_path):
    # tests/raft/data/datadir-v1 was written by the WAL of commit 01b15ae (snapshot format SWPYSNP1, no
    # learners): entries 1..21 with three founding ADD_NODEs and one at 21, a snapshot at 15, log kept from 13.
    import shutil

    from swarmpy.raft.core import Config, RaftNode

    folder = tmp_path / "old"
    shutil.copytree(os.path.join(os.path.dirname(__file__), "data", "datadir-v1"), folder)
    storage = DiskStorage(str(folder))
    assert storage.snapshot().meta == SnapshotMeta(index=15, term=2, conf=ConfState((1, 2, 3)))
    assert storage.snapshot().data == b"app state at 15"
    assert storage.initial_state() == (HardState(term=2, vote=1, commit=21), ConfState((1, 2, 3), ()))
    assert (storage.first_index(), storage.last_index()) == (13, 21)
    node = RaftNode(Config(id=1, applied=15), storage)
    assert node.voters == {1, 2, 3} and node.learners == set()
    node.advance(node.ready())  # applies 16..21, the ADD_NODE of 4 among them
    assert node.voters == {1, 2, 3, 4}
    # The next snapshot is written in the new format, with the learners, and read back.
    storage.create_snapshot(21, ConfState((1, 2, 3), (4,)), b"app state at 21")
    storage.close()
    (name,) = os.listdir(folder / "snap")
    assert open(folder / "snap" / name, "rb").read(8) == b"SWPYSNP2"
    reopened = DiskStorage(str(folder))
    assert reopened.initial_state()[1] == ConfState((1, 2, 3), (4,))
    reopened.close()


def test_a_snapshot_whose_membership_runs_past_its_end_is_corruption(tmp_path):
    import zlib

    from swarmpy.raft.wal import SNAPSHOT_HEAD, SNAPSHOT_MAGIC, decode_snapshot

    body = SNAPSHOT_HEAD.pack(SNAPSHOT_MAGIC, 5, 1) + (1).to_bytes(4, "little") + (7).to_bytes(8, "little")
    body += (1000).to_bytes(4, "little")  # 1000 learners announced, none there
    raw = body + zlib.crc32(body).to_bytes(4, "little")
    with pytest.raises(errors.StorageCorrupted, match="runs past the end"):
        decode_snapshot("x.snap", raw)
