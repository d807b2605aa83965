"""Durable file writes: the one way swarmpy replaces a file so that a crash leaves the old or the new.

The data goes to a temporary file beside the target (same folder, so the rename is atomic), is
fsync'd, renamed over the target, and the folder is fsync'd so that the rename itself survives a power
cut. Blocking by design: async callers run it in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data`, durably; the file gets `mode` whatever the umask."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(descriptor, mode)  # O_CREAT's mode is filtered by the umask; a key must be 0600 regardless
        with os.fdopen(descriptor, "wb") as file:
            descriptor = -1
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        if descriptor >= 0:
            os.close(descriptor)
        temporary.unlink(missing_ok=True)
    fsync_directory(path.parent)


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Make the folder's entries (a rename, a new or deleted file) durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
