"""framing.py: where messages end in a byte stream, whatever pieces the stream arrives in."""

from __future__ import annotations

import pytest

from swarmpy.engineapi import framing

CHUNKED = b"4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nTrailer: yes\r\n\r\n"


def _end_in_pieces(body: framing.Body, stream: bytes, cut: int) -> int:
    """Feed `stream` in two pieces cut at `cut`; the end's index in the whole stream, or -1."""
    first = body.feed(stream[:cut], 0)
    if first >= 0:
        return first
    second = body.feed(stream[cut:], 0)
    return -1 if second < 0 else cut + second


@pytest.mark.parametrize("cut", range(len(CHUNKED) + 1))
def test_chunked_end_is_found_wherever_the_stream_is_cut(cut):
    stream = CHUNKED + b"GET /next HTTP/1.1\r\n\r\n"
    assert _end_in_pieces(framing.ChunkedBody(), stream, cut) == len(CHUNKED)


def test_chunked_one_byte_at_a_time_and_a_bad_size():
    body = framing.ChunkedBody()
    ends = [body.feed(CHUNKED[i:i + 1], 0) for i in range(len(CHUNKED))]
    assert ends[:-1] == [-1] * (len(CHUNKED) - 1) and ends[-1] == 1
    with pytest.raises(framing.FramingError, match="invalid chunk size"):
        framing.ChunkedBody().feed(b"zz\r\n", 0)


def test_fixed_body_counts_across_pieces():
    body = framing.FixedBody(10)
    assert body.feed(b"12345", 0) == -1
    assert body.feed(b"xx6789012345", 2) == 7


def test_request_framing_rules():
    head = framing.parse_head(b"POST /build HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\n\r\n")
    assert isinstance(framing.request_body(head), framing.ChunkedBody)
    head = framing.parse_head(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\n")
    assert isinstance(framing.request_body(head), framing.FixedBody)
    assert isinstance(framing.request_body(framing.parse_head(b"GET / HTTP/1.1\r\n\r\n")), framing.EmptyBody)
    both = framing.parse_head(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
    with pytest.raises(framing.FramingError, match="both"):
        framing.request_body(both)
    with pytest.raises(framing.FramingError, match="conflicting"):
        framing.parse_head(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n")
    with pytest.raises(framing.FramingError, match="Content-Length"):
        framing.request_body(framing.parse_head(b"POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n"))


def test_answer_framing_and_keep_alive():
    def body_of(raw: bytes, method: bytes = b"GET") -> framing.Body:
        head = framing.parse_head(raw)
        return framing.answer_body(head, framing.answer_status(head), method)

    assert isinstance(body_of(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", b"HEAD"), framing.EmptyBody)
    assert isinstance(body_of(b"HTTP/1.1 204 No Content\r\n\r\n"), framing.EmptyBody)
    assert isinstance(body_of(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n"),
                      framing.ChunkedBody)
    hijacked = body_of(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n")
    assert isinstance(hijacked, framing.UntilClose) and not hijacked.reusable
    closing = framing.parse_head(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    assert not framing.keeps_alive(closing, closing.first)
    old = framing.parse_head(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
    assert framing.keeps_alive(old, old.third)
    assert not framing.keeps_alive(framing.parse_head(b"GET / HTTP/1.0\r\n\r\n"), b"HTTP/1.0")
