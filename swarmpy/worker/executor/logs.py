"""A container's logs as an async iterator of LogLine, for the log broker.

The Docker SDK's logs() drops which stream (stdout or stderr) a frame came from, and the log broker needs
it, so the frames are read here from the raw response (8-byte header: stream, 3 pad, big-endian length).
A dedicated thread reads them and hands them to the loop; a semaphore bounds how far it may run ahead of
the consumer. Closing the iterator (or cancelling its consumer) closes the HTTP stream, which unblocks the
thread, and awaits the thread's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import docker
from docker.types.daemon import CancellableStream

from swarmpy.worker.executor.threads import run_in_own_thread

STDOUT = 1
STDERR = 2
_HEADER = struct.Struct(">BxxxL")
READ_AHEAD_LINES = 256


@dataclass(frozen=True)
class LogLine:
    stream: int  # STDOUT or STDERR
    timestamp_ns: int  # when the engine received it (0 if it could not be parsed)
    data: bytes  # the line, with its newline, without the timestamp prefix
    attrs: tuple[tuple[str, str], ...] = ()  # with details: the log driver's attributes (e.g. labels=)


def parse_rfc3339_ns(text: str) -> int:
    """Docker's RFC 3339 timestamps carry nanoseconds, which datetime cannot hold: parse them apart."""
    head, _, fraction = text.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(head + "+00:00").timestamp()
    digits = (fraction + "000000000")[:9]
    return int(seconds) * 1_000_000_000 + int(digits)


def _split_timestamp(data: bytes) -> tuple[int, bytes]:
    stamp, _, rest = data.partition(b" ")
    try:
        return parse_rfc3339_ns(stamp.decode()), rest
    except ValueError:
        return 0, data


def _split_details(data: bytes) -> tuple[tuple[tuple[str, str], ...], bytes]:
    """With details the engine puts `k=v,k2=v2 ` (query-escaped; empty when there are none) before the line."""
    from urllib.parse import unquote

    head, _, rest = data.partition(b" ")
    attrs = []
    for item in head.decode("utf-8", "replace").split(","):
        if item:
            key, _, value = item.partition("=")
            attrs.append((unquote(key), unquote(value)))
    return tuple(attrs), rest


def _frames(response, tty: bool):
    """(stream, payload) pairs from a logs response; a TTY container's output is one raw stdout stream."""
    raw = response.raw
    if tty:
        for line in iter(raw.readline, b""):
            yield STDOUT, line
        return
    while True:
        header = raw.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return
        stream, length = _HEADER.unpack(header)
        if not length:
            continue
        payload = raw.read(length)
        if not payload:
            return
        yield stream, payload


async def container_logs(
    client: docker.DockerClient,
    container_id: str,
    *,
    follow: bool = False,
    tail: int = -1,
    since_ns: int = 0,
    details: bool = False,
) -> AsyncIterator[LogLine]:
    """Yield the container's log lines; with `follow`, keep yielding until the container stops.

    Timestamps are always asked of the engine (LogLine.timestamp_ns); whether to show them is the reader's
    choice. `tail` < 0 means all lines.
    """
    api = client.api
    inspected = await asyncio.to_thread(api.inspect_container, container_id)
    tty = bool(inspected["Config"].get("Tty"))
    params = {
        "stdout": 1,
        "stderr": 1,
        "timestamps": 1,
        "follow": 1 if follow else 0,
        "tail": "all" if tail < 0 else str(tail),
        "details": 1 if details else 0,
    }
    if since_ns:
        params["since"] = f"{since_ns // 1_000_000_000}.{since_ns % 1_000_000_000:09d}"
    # timeout=None: a followed stream may stay silent for as long as the container does.
    response = await asyncio.to_thread(
        api._get, api._url("/containers/{0}/logs", container_id), params=params, stream=True, timeout=None
    )
    api._raise_for_status(response)
    stream = CancellableStream(_frames(response, tty), response)

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[LogLine | None] = asyncio.Queue()
    slots = threading.Semaphore(READ_AHEAD_LINES)
    closing = threading.Event()

    def pump() -> None:
        try:
            for stream_id, payload in stream:
                slots.acquire()
                if closing.is_set():
                    return
                timestamp, data = _split_timestamp(payload)
                attrs: tuple[tuple[str, str], ...] = ()
                if details:
                    attrs, data = _split_details(data)
                loop.call_soon_threadsafe(queue.put_nowait, LogLine(stream_id, timestamp, data, attrs))
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(queue.put_nowait, None)

    pumped = run_in_own_thread(pump, f"logs-{container_id[:12]}")
    try:
        while (line := await queue.get()) is not None:
            slots.release()
            yield line
        await pumped
    finally:
        closing.set()
        slots.release()  # a pump waiting for a slot wakes, sees `closing` and stops
        with contextlib.suppress(OSError, docker.errors.DockerException):
            await asyncio.to_thread(stream.close)
        with contextlib.suppress(OSError, docker.errors.DockerException):
            await asyncio.shield(pumped)
