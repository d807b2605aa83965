"""HTTP/1.1 message framing for the raw relay: where a request or an answer ends, without decoding it.

The relay (relay.py) passes bytes through unchanged; all it needs to know of a message is its head
(start line and the few headers that decide framing and connection reuse) and where its body ends in
the byte stream. A body is empty, of a known length (Content-Length), chunked (scanned chunk by chunk,
never de-chunked: the bytes go on as they came), or lasts until the connection closes (an answer with
neither, or a hijacked stream). The rules are RFC 9112 section 6: HEAD answers and 1xx/204/304 have no
body; Transfer-Encoding wins over Content-Length in an answer; a request carrying both is refused
(the classic smuggling ambiguity), as is one with a Transfer-Encoding other than chunked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEAD_END = b"\r\n\r\n"
HEAD_LIMIT = 64 * 1024  # dockerd's own limit on a request head is 1 MiB; no client sends more than a few KB
# Only the headers framing needs are looked at (one C-level scan of the head, no loop over the rest).
_FRAMING_HEADER = re.compile(rb"\r\n(content-length|transfer-encoding|connection|upgrade)[ \t]*:[ \t]*([^\r\n]*)",
                             re.IGNORECASE)
_CHUNK_LINE_LIMIT = 4096
NO_BODY_STATUSES = frozenset({204, 304})


class FramingError(ValueError):
    """A message whose framing cannot be trusted: the connection it came on is not reused."""


class Body:
    """Where a body ends. `feed(data, start)` scans data[start:] and returns the index just past the
    body's last byte, or -1 when the body goes on past the end of `data`."""

    reusable = True  # the connection carries another message after this body

    def feed(self, data: bytes, start: int) -> int:
        raise NotImplementedError


class EmptyBody(Body):
    def feed(self, data: bytes, start: int) -> int:
        return start


class FixedBody(Body):
    def __init__(self, length: int) -> None:
        self.left = length

    def feed(self, data: bytes, start: int) -> int:
        available = len(data) - start
        if available >= self.left:
            end = start + self.left
            self.left = 0
            return end
        self.left -= available
        return -1


class UntilClose(Body):
    reusable = False

    def feed(self, data: bytes, start: int) -> int:
        return -1


class ChunkedBody(Body):
    """Scans chunk-size lines, chunk data and the trailer section up to the empty line that ends it."""

    _SIZE, _DATA, _DATA_END, _TRAILER = range(4)

    def __init__(self) -> None:
        self._state = self._SIZE
        self._line = b""
        self._left = 0

    def feed(self, data: bytes, start: int) -> int:
        position, size = start, len(data)
        while position < size:
            if self._state == self._DATA:
                taken = min(self._left, size - position)
                position += taken
                self._left -= taken
                if not self._left:
                    self._state, self._left = self._DATA_END, 2
            elif self._state == self._DATA_END:
                taken = min(self._left, size - position)
                position += taken
                self._left -= taken
                if not self._left:
                    self._state = self._SIZE
            else:
                newline = data.find(b"\n", position)
                if newline < 0:
                    self._line += data[position:]
                    if len(self._line) > _CHUNK_LINE_LIMIT:
                        raise FramingError("a chunk-size or trailer line is too long")
                    return -1
                line = (self._line + data[position:newline]).rstrip(b"\r")
                self._line = b""
                position = newline + 1
                if self._state == self._TRAILER:
                    if not line:
                        return position
                    continue
                try:
                    chunk = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise FramingError(f"invalid chunk size {line[:40]!r}") from None
                if chunk < 0:
                    raise FramingError(f"invalid chunk size {line[:40]!r}")
                if chunk:
                    self._state, self._left = self._DATA, chunk
                else:
                    self._state = self._TRAILER
        return -1


@dataclass(slots=True)
class Head:
    """A message head: its start line split in three, and what of its headers framing needs."""

    first: bytes
    second: bytes
    third: bytes
    length: bytes | None  # Content-Length as sent
    transfer_encoding: bytes | None
    connection: bytes  # the Connection header's tokens, lowercased, comma separated
    upgrade: bool

    def says_close(self) -> bool:
        return b"close" in self.connection

    def says_keep_alive(self) -> bool:
        return b"keep-alive" in self.connection


def parse_head(head: bytes) -> Head:
    """`head` runs from the start line to its closing empty line (HEAD_END included)."""
    line_end = head.find(b"\r\n")
    parts = head[:line_end].split(b" ", 2)
    if len(parts) != 3:
        raise FramingError(f"malformed start line {head[:line_end][:80]!r}")
    length = transfer_encoding = None
    connection = b""
    upgrade = False
    for name, value in _FRAMING_HEADER.findall(head, line_end):
        name = name.lower()
        value = value.strip()
        if name == b"content-length":
            if length is not None and length != value:
                raise FramingError("conflicting Content-Length headers")
            length = value
        elif name == b"transfer-encoding":
            transfer_encoding = value.lower() if transfer_encoding is None else transfer_encoding + b"," + value.lower()
        elif name == b"connection":
            connection = value.lower() if not connection else connection + b"," + value.lower()
        else:
            upgrade = True
    return Head(parts[0], parts[1], parts[2], length, transfer_encoding, connection, upgrade)


def _length(value: bytes) -> int:
    if not value.isdigit():
        raise FramingError(f"invalid Content-Length {value[:40]!r}")
    return int(value)


def _chunked_last(transfer_encoding: bytes) -> bool:
    return transfer_encoding.rsplit(b",", 1)[-1].strip() == b"chunked"


def request_body(head: Head) -> Body:
    if head.transfer_encoding is not None:
        if head.length is not None:
            raise FramingError("a request with both Transfer-Encoding and Content-Length")
        if not _chunked_last(head.transfer_encoding):
            raise FramingError(f"unsupported Transfer-Encoding {head.transfer_encoding[:40]!r}")
        return ChunkedBody()
    if head.length is not None:
        length = _length(head.length)
        return FixedBody(length) if length else EmptyBody()
    return EmptyBody()


def answer_status(head: Head) -> int:
    if not head.second.isdigit():
        raise FramingError(f"invalid status {head.second[:20]!r}")
    return int(head.second)


def answer_body(head: Head, status: int, request_method: bytes) -> Body:
    if request_method == b"HEAD" or status < 200 or status in NO_BODY_STATUSES:
        return EmptyBody()
    if head.transfer_encoding is not None:
        return ChunkedBody() if _chunked_last(head.transfer_encoding) else UntilClose()
    if head.length is not None:
        return FixedBody(_length(head.length))
    return UntilClose()


def plain_length(data: bytes, head_end: int) -> int:
    """The relay's fast path: the body length of an HTTP/1.1 2xx answer (not 204) whose head, ending at
    `head_end` (the index of HEAD_END), names only a Content-Length among the framing headers; -1 for
    any other answer, which then goes through parse_head and answer_body."""
    if not data.startswith(b"HTTP/1.1 2") or data.startswith(b"204", 9):
        return -1
    found = _FRAMING_HEADER.findall(data, 0, head_end)
    if len(found) != 1 or found[0][0].lower() != b"content-length":
        return -1
    value = found[0][1].strip()
    return int(value) if value.isdigit() else -1


def keeps_alive(head: Head, version: bytes) -> bool:
    """Whether the sender of `head` (of HTTP `version`) keeps the connection open after this message."""
    if version == b"HTTP/1.1":
        return not head.says_close()
    return head.says_keep_alive() and not head.says_close()


def dechunk(body: bytes) -> bytes:
    """The data of a chunked body that ChunkedBody has found whole (chunk extensions and trailers
    dropped), for a client that reads the answer rather than passing it on."""
    pieces = []
    position = 0
    while True:
        newline = body.index(b"\n", position)
        size = int(body[position:newline].split(b";", 1)[0].strip(), 16)
        if not size:
            return b"".join(pieces)
        pieces.append(body[newline + 1:newline + 1 + size])
        position = newline + 1 + size + 2
