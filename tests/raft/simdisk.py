"""A simulated disk with a page cache, for proving that DiskStorage keeps exactly what it fsync'd.

`SimFiles` implements the operations of `swarmpy.raft.files.OsFiles` in memory. Every file (inode) has
what the process sees (`cached`) and what is on the platter (`durable`); every folder has its cached
and durable names. `append` changes only the cache; `fdatasync` makes that inode's content durable;
`write_atomically` is the real sequence (temp file, fsync, rename, fsync of the folder) step by step;
`unlink` and renames are durable only after the next fsync of their folder, as on a real file system.

`crash_after(n)` arms a crash that strikes at the n-th mutating operation, inside it where that can
tear (an append is cut after a random number of bytes). `crash()` then builds what a reboot would
find: for each inode, the durable content plus a random fate for the unsynced tail -- the file's
length lands anywhere between the durable and the cached one, and within the new part each 512-byte
sector holds either what was written or zeros (writeback in any order); of the folder operations not
yet synced, a random prefix survives (the journal keeps their order). `lost_unsynced` counts the
crashes that found written-but-unsynced state.
"""

from __future__ import annotations

import os
import random

SECTOR = 512


class SimulatedCrash(BaseException):
    """The power went out inside a storage operation (BaseException: no handler may swallow it)."""


class _Inode:
    __slots__ = ("cached", "durable")

    def __init__(self) -> None:
        self.cached = bytearray()
        self.durable = b""


class SimFiles:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._inodes: list[_Inode] = []
        self._names: dict[str, int] = {}  # path -> inode, as the process sees it
        self._durable_names: dict[str, int] = {}
        # Folder operations not yet fsync'd, in order: (folder, changes); a rename is one operation of two changes.
        self._pending_dir_ops: list[tuple[str, list[tuple[str, int | None]]]] = []
        self._folders: set[str] = set()
        self._fds: dict[int, int] = {}
        self._next_fd = 3
        self._crash_in: int | None = None
        self.crashes = 0
        self.crashes_with_unsynced_state = 0

    # ---------------------------------------------------------------- crash control

    def crash_after(self, operations: int | None) -> None:
        self._crash_in = operations

    def _step(self) -> bool:
        """Count one mutating operation; True when the crash strikes inside this one."""
        if self._crash_in is None:
            return False
        self._crash_in -= 1
        return self._crash_in <= 0

    def unsynced(self) -> bool:
        return bool(self._pending_dir_ops) or any(bytes(i.cached) != i.durable for i in self._live_inodes())

    def _live_inodes(self) -> list[_Inode]:
        return [self._inodes[n] for n in set(self._names.values()) | set(self._durable_names.values())]

    def crash(self) -> None:
        """What the disk holds after power returns; every open descriptor is gone."""
        self.crashes += 1
        self._crash_in = None
        if self.unsynced():
            self.crashes_with_unsynced_state += 1
        for inode in self._inodes:
            durable, cached = inode.durable, bytes(inode.cached)
            if len(cached) > len(durable) and cached[: len(durable)] == durable:
                length = self.rng.randint(len(durable), len(cached))
                result = bytearray(durable)
                position = len(durable)
                while position < length:
                    end = min(length, (position // SECTOR + 1) * SECTOR)
                    chunk = cached[position:end] if self.rng.random() < 0.7 else bytes(end - position)
                    result += chunk
                    position = end
                inode.durable = bytes(result)
            inode.cached = bytearray(inode.durable)
        survive = self.rng.randint(0, len(self._pending_dir_ops))
        for _folder, changes in self._pending_dir_ops[:survive]:
            for path, inode in changes:
                self._apply_name(self._durable_names, path, inode)
        self._pending_dir_ops.clear()
        self._names = dict(self._durable_names)
        self._fds.clear()

    @staticmethod
    def _apply_name(names: dict[str, int], path: str, inode: int | None) -> None:
        if inode is None:
            names.pop(path, None)
        else:
            names[path] = inode

    def _dir_op(self, *changes: tuple[str, int | None]) -> None:
        for path, inode in changes:
            self._apply_name(self._names, path, inode)
        self._pending_dir_ops.append((os.path.dirname(changes[0][0]), list(changes)))

    # ---------------------------------------------------------------- the OsFiles operations

    def makedirs(self, folder: str) -> None:
        self._folders.add(folder)

    def listdir(self, folder: str) -> list[str]:
        return sorted(os.path.basename(p) for p in self._names if os.path.dirname(p) == folder)

    def read(self, path: str) -> bytes:
        if path not in self._names:
            raise FileNotFoundError(path)
        return bytes(self._inodes[self._names[path]].cached)

    def exists(self, path: str) -> bool:
        return path in self._names

    def open_append(self, path: str) -> int:
        if path not in self._names:
            raise FileNotFoundError(path)
        fd = self._next_fd
        self._next_fd += 1
        self._fds[fd] = self._names[path]
        return fd

    def append(self, fd: int, data: bytes) -> None:
        inode = self._inodes[self._fds[fd]]
        if self._step():
            inode.cached += bytes(data)[: self.rng.randint(0, len(data))]
            raise SimulatedCrash("during a write")
        inode.cached += data

    def fdatasync(self, fd: int) -> None:
        if self._step():
            raise SimulatedCrash("before an fdatasync")
        inode = self._inodes[self._fds[fd]]
        inode.durable = bytes(inode.cached)

    def close(self, fd: int) -> None:
        self._fds.pop(fd, None)

    def truncate(self, path: str, length: int) -> None:
        if self._step():
            raise SimulatedCrash("before a truncate")
        inode = self._inodes[self._names[path]]
        del inode.cached[length:]
        inode.durable = bytes(inode.cached)

    def unlink(self, path: str) -> None:
        if self._step():
            raise SimulatedCrash("before an unlink")
        self._dir_op((path, None))

    def fsync_folder(self, folder: str) -> None:
        if self._step():
            raise SimulatedCrash("before a folder fsync")
        kept = []
        for op in self._pending_dir_ops:
            if op[0] == folder:
                for path, inode in op[1]:
                    self._apply_name(self._durable_names, path, inode)
            else:
                kept.append(op)
        self._pending_dir_ops = kept

    def write_atomically(self, folder: str, name: str, data: bytes) -> None:
        final_path = os.path.join(folder, name)
        temp_path = final_path + ".tmp"
        if self._step():
            raise SimulatedCrash("before creating a temp file")
        self._inodes.append(_Inode())
        inode_number = len(self._inodes) - 1
        self._dir_op((temp_path, inode_number))
        fd = self.open_append(temp_path)
        self.append(fd, data)
        self.fdatasync(fd)
        self.close(fd)
        if self._step():
            raise SimulatedCrash("before a rename")
        self._dir_op((temp_path, None), (final_path, inode_number))  # rename: atomic
        self.fsync_folder(folder)
