"""Reading a response body up to a bound (--max-body), decoding gzip/deflate within the
same bound: a 1 GB answer costs at most the bound in memory, and its rest is not read (the
caller closes the connection). No I/O of its own: it reads through `read(n)`.

The replay asks for gzip and deflate only (`ACCEPT_ENCODING`); an answer in another
encoding is kept as it came (bounded too), so nothing in it is correlated.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Protocol

ACCEPT_ENCODING = "gzip, deflate"
CHUNK_BYTES = 64 * 1024
DEFAULT_MAX_BODY = 8 << 20


class ReadAll(Protocol):
    """geventhttpclient's `read`: `read(n)` at most n bytes, `read()` up to the answer's end."""

    def __call__(self, n: int | None = None, /) -> bytes: ...


def read_body(
    read: Callable[[int], bytes] | ReadAll,
    content_encoding: str | None,
    max_body: int,
    length: int | None = None,
) -> tuple[bytes, bool]:
    """(body, truncated): at most `max_body` bytes of the decoded body, and whether more
    was there (on the wire, or once decoded) and was left unread.

    `length`: the answer's own Content-Length, given only when the transport stops at it
    (one Content-Length line, no Transfer-Encoding). A plain answer of that length within
    the bound is then read in one call to its end (`read()`), bounded by that length: one
    call and one copy, where reads of CHUNK_BYTES took a second call to find the end and
    a slice and a copy each (geventhttpclient's `read(n)`)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding not in ("gzip", "deflate"):
        if length is not None and length <= max_body:
            return read(), False  # type: ignore[call-arg]  # a ReadAll, as the caller said
        return _read_plain(read, max_body)
    decoder: zlib._Decompress | None = None  # deflate: zlib-wrapped or raw, by its first byte
    if encoding == "gzip":
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    body = bytearray()
    wire = 0
    while True:
        chunk = read(CHUNK_BYTES)
        if not chunk:
            return bytes(body), False
        wire += len(chunk)
        if decoder is None:  # deflate: zlib header 0x78, else a raw stream
            wrapped = chunk[:1] == b"\x78"
            decoder = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        try:
            body += decoder.decompress(chunk, max(1, max_body - len(body)))
        except zlib.error:
            return bytes(body), False  # undecodable: what decoded so far, nothing more
        if len(body) > max_body or decoder.unconsumed_tail or wire > max_body:
            return bytes(body[:max_body]), True


def _read_plain(read: Callable[[int], bytes], max_body: int) -> tuple[bytes, bool]:
    """An answer kept as it came (no encoding, or one not asked for), bounded. Most are
    one chunk: kept as read, without the two copies a bytearray took."""
    first = read(CHUNK_BYTES)
    if not first or len(first) > max_body:
        return bytes(first[:max_body]), bool(first)
    chunk = read(CHUNK_BYTES)
    if not chunk:
        return bytes(first), False
    body = bytearray(first)
    while chunk:
        room = max_body - len(body)
        body += chunk[:room]
        if len(chunk) > room:
            return bytes(body), True
        chunk = read(CHUNK_BYTES)
    return bytes(body), False
