"""Which durable log for swarmpy's Raft: a plain append-only file with fsync, or sqlite (WAL, synchronous=FULL)?

Appends batches of 100-byte entries, each batch made durable before the next (as one Raft Ready is),
and prints the time per durable batch and entries per second. Run: python bench/wal_choice.py
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import struct
import sys
import tempfile
import time
import zlib

ENTRY = struct.Struct("<QQB")
FRAME = struct.Struct("<II")
PAYLOAD = b"x" * 100


def plain_file(folder: str, batches: int, batch_size: int, preallocate: bool = False) -> list[float]:
    path = os.path.join(folder, "log.wal")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (0 if preallocate else os.O_APPEND), 0o600)
    if preallocate:
        os.posix_fallocate(fd, 0, 64 << 20)
        os.fsync(fd)
    index = 0
    latencies = []
    try:
        for _ in range(batches):
            started = time.perf_counter()
            chunks = []
            for _ in range(batch_size):
                index += 1
                record = b"\x01" + ENTRY.pack(1, index, 0) + PAYLOAD
                chunks.append(FRAME.pack(len(record), zlib.crc32(record)) + record)
            os.write(fd, b"".join(chunks))
            os.fdatasync(fd)
            latencies.append(time.perf_counter() - started)
    finally:
        os.close(fd)
    return latencies


def sqlite_wal(folder: str, batches: int, batch_size: int) -> list[float]:
    db = sqlite3.connect(os.path.join(folder, "log.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE entries (idx INTEGER PRIMARY KEY, term INTEGER, type INTEGER, data BLOB)")
    index = 0
    latencies = []
    try:
        for _ in range(batches):
            started = time.perf_counter()
            rows = []
            for _ in range(batch_size):
                index += 1
                rows.append((index, 1, 0, PAYLOAD))
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)", rows)
            db.execute("COMMIT")
            latencies.append(time.perf_counter() - started)
    finally:
        db.close()
    return latencies


def main() -> None:
    batches = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    print(f"{batches} durable batches of 100-byte entries; cores: {os.cpu_count()}")
    print(f"{'store':<24}{'batch':>6}{'p50 ms':>9}{'p99 ms':>9}{'entries/s':>12}")
    for batch_size in (1, 64):
        for name, run in (
            ("plain file+fdatasync", plain_file),
            ("preallocated+fdatasync", lambda f, b, s: plain_file(f, b, s, preallocate=True)),
            ("sqlite WAL sync=FULL", sqlite_wal),
        ):
            with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
                latencies = run(folder, batches, batch_size)
            latencies.sort()
            p50 = statistics.median(latencies) * 1e3
            p99 = latencies[int(len(latencies) * 0.99)] * 1e3
            rate = batches * batch_size / sum(latencies)
            print(f"{name:<24}{batch_size:>6}{p50:>9.3f}{p99:>9.3f}{rate:>12,.0f}")


if __name__ == "__main__":
    main()
