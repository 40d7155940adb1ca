"""Reading a response body up to --max-body: plain, gzip and deflate (zlib-wrapped or raw)
decoded within the bound, a compression bomb stopped at it, an undecodable body kept short."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable

import pytest

from tracereplay.replay.body import CHUNK_BYTES, read_body


def reader(data: bytes) -> tuple[Callable[[int], bytes], io.BytesIO]:
    stream = io.BytesIO(data)
    return stream.read, stream


BODY = b'{"data": [' + b",".join(b'{"id": %d}' % i for i in range(20000)) + b"]}"


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "wire"),
    [(None, BODY), ("identity", BODY), ("gzip", gzip.compress(BODY)),
     ("deflate", zlib.compress(BODY)), ("deflate", raw_deflate(BODY)),
     (" GZip ", gzip.compress(BODY))],
)  # fmt: skip
def test_a_body_under_the_bound_is_read_whole_and_decoded(
    encoding: str | None, wire: bytes
) -> None:
    read, _ = reader(wire)
    assert read_body(read, encoding, max_body=len(BODY)) == (BODY, False)


@pytest.mark.parametrize("encoding", [None, "gzip", "deflate"])
def test_a_body_over_the_bound_is_cut_and_the_rest_left_unread(encoding: str | None) -> None:
    big = BODY * 50
    wire = {None: big, "gzip": gzip.compress(big), "deflate": zlib.compress(big)}[encoding]
    read, stream = reader(wire)
    body, truncated = read_body(read, encoding, max_body=100_000)
    assert truncated and body == big[:100_000]
    assert stream.tell() < len(wire)  # stopped reading: the caller closes the connection


def test_a_compression_bomb_stops_at_the_bound() -> None:
    bomb = gzip.compress(b"\0" * (200 << 20))  # 200 MiB of zeros in ~200 KB
    read, stream = reader(bomb)
    body, truncated = read_body(read, "gzip", max_body=1 << 20)
    assert truncated and len(body) == 1 << 20
    assert stream.tell() <= 2 * CHUNK_BYTES


def test_an_undecodable_or_unknown_encoding_is_kept_bounded() -> None:
    read, _ = reader(b"not gzip at all" * 10)
    assert read_body(read, "gzip", max_body=1000) == (b"", False)
    read, _ = reader(b"x" * 5000)
    assert read_body(read, "br", max_body=1000) == (b"x" * 1000, True)  # kept as it came
    read, _ = reader(b"")
    assert read_body(read, None, max_body=10) == (b"", False)


@pytest.mark.parametrize(
    "size", [0, 1, 4096, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 2 * CHUNK_BYTES + 5]
)
def test_a_plain_body_is_its_first_max_body_bytes_at_any_size_and_bound(size: int) -> None:
    # The one-chunk answer is read without copies (body.py's fast path): every size around
    # a chunk and every bound around the size must give what the chunked loop gives.
    data = bytes(i % 251 for i in range(size))
    for max_body in sorted({0, 1, max(0, size - 1), size, size + 1, CHUNK_BYTES}):
        read, _ = reader(data)
        body, truncated = read_body(read, None, max_body)
        assert (body, truncated) == (data[:max_body], size > max_body), (size, max_body)
        assert type(body) is bytes


def test_a_plain_body_of_a_known_length_within_the_bound_is_read_in_one_call_to_its_end() -> None:
    calls: list[int | None] = []

    def read(n: int | None = None) -> bytes:
        calls.append(n)
        return BODY

    assert read_body(read, None, max_body=len(BODY), length=len(BODY)) == (BODY, False)
    assert calls == [None]  # read() once: the transport stops at the length
    calls.clear()
    # Over the bound, or encoded: bounded chunks as before, whatever the length says.
    stream = io.BytesIO(BODY)

    def chunked(n: int | None = None) -> bytes:
        calls.append(n)
        return stream.read(n)

    assert read_body(chunked, None, max_body=100, length=len(BODY)) == (BODY[:100], True)
    assert None not in calls
    wire = gzip.compress(BODY)
    calls.clear()
    stream = io.BytesIO(wire)
    assert read_body(chunked, "gzip", max_body=len(BODY), length=len(wire)) == (BODY, False)
    assert None not in calls
