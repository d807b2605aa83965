"""The few file operations the WAL performs, behind one object so a simulated disk can stand in.

`DiskStorage` never calls `os` directly: it asks a `Files` for exactly these operations, in the
order that makes them durable (write, then fdatasync; temp file, fsync, rename, fsync of the folder).
`OsFiles` is the real disk. The Raft simulator (tests/raft/simdisk.py) passes its own, which keeps
written-but-not-synced data in a page cache it can lose, tear or reorder at a simulated crash; that is
how the simulator proves the WAL keeps exactly what it fsync'd.
"""

from __future__ import annotations

import os


class OsFiles:
    """The real file system."""

    def makedirs(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)

    def listdir(self, folder: str) -> list[str]:
        return os.listdir(folder)

    def read(self, path: str) -> bytes:
        with open(path, "rb") as file:
            return file.read()

    def open_append(self, path: str) -> int:
        return os.open(path, os.O_WRONLY | os.O_APPEND)

    def append(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def fdatasync(self, fd: int) -> None:
        os.fdatasync(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def truncate(self, path: str, length: int) -> None:
        """Cut the file to `length` bytes, durably."""
        with open(path, "r+b") as file:
            file.truncate(length)
            os.fsync(file.fileno())

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def write_atomically(self, folder: str, name: str, data: bytes) -> None:
        """Temp file, fsync, rename, fsync of the folder: the file exists whole under `name`, or not at all."""
        final_path = os.path.join(folder, name)
        temp_path = final_path + ".tmp"
        fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            self.append(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp_path, final_path)
        self.fsync_folder(folder)

    def fsync_folder(self, folder: str) -> None:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


OS_FILES = OsFiles()
