"""DiskStorage survives power cuts on a simulated page-cache disk (tests/raft/wal_crashes.py), and the
check has teeth: a disk that skips the fsyncs the WAL asks for is caught within a few seeds."""

from __future__ import annotations

import logging

import pytest

from .simdisk import SimFiles, SimulatedCrash
from .wal_crashes import run


@pytest.fixture(autouse=True)
def quiet_recovery_logs():
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def test_a_thousand_seeds_of_power_cuts_lose_nothing_acknowledged():
    tally = run(0, 1000)
    assert tally.crashes >= 4000
    # Many crashes must find state not yet on the platter, and many interrupted calls must be lost or torn:
    # otherwise the simulation proves nothing about the WAL's recovery.
    assert tally.unsynced >= tally.crashes * 0.8
    assert tally.lost_interrupted >= 1000 and tally.kept_interrupted >= 1000


class SyncThatDoesNothing(SimFiles):
    """What a WAL that returned before fdatasync would look like."""

    def fdatasync(self, fd: int) -> None:
        if self._step():
            raise SimulatedCrash("before an fdatasync")


class RenameBeforeTheDataIsDurable(SimFiles):
    """A snapshot or checkpoint renamed into place before its contents were fsync'd."""

    def write_atomically(self, folder: str, name: str, data: bytes) -> None:
        real_sync = self.fdatasync
        self.fdatasync = lambda fd: None  # type: ignore[method-assign]
        try:
            super().write_atomically(folder, name, data)
        finally:
            self.fdatasync = real_sync  # type: ignore[method-assign]


@pytest.mark.parametrize("disk", [SyncThatDoesNothing, RenameBeforeTheDataIsDurable])
def test_a_disk_that_skips_a_sync_is_caught_within_50_seeds(disk):
    with pytest.raises(AssertionError, match="seed"):
        run(0, 50, disk_class=disk)
