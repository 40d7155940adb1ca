"""Reading a response body up to a bound (--max-body), decoding gzip/deflate within the
same bound: a 1 GB answer costs at most the bound in memory, and its rest is not read (the
caller closes the connection). No I/O of its own: it reads through `read(n)`.

The replay asks for gzip and deflate only (`ACCEPT_ENCODING`); an answer in another
encoding is kept as it came (bounded too), so nothing in it is correlated.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

ACCEPT_ENCODING = "gzip, deflate"
CHUNK_BYTES = 64 * 1024
DEFAULT_MAX_BODY = 8 << 20


def read_body(
    read: Callable[[int], bytes], content_encoding: str | None, max_body: int
) -> tuple[bytes, bool]:
    """(body, truncated): at most `max_body` bytes of the decoded body, and whether more
    was there (on the wire, or once decoded) and was left unread."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        decoder: zlib._Decompress | None = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decoder = None  # zlib-wrapped or raw: told apart by the first byte
    else:
        decoder = None
        encoding = "identity"
    body = bytearray()
    wire = 0
    while True:
        chunk = read(CHUNK_BYTES)
        if not chunk:
            return bytes(body), False
        wire += len(chunk)
        if encoding == "identity":
            room = max_body - len(body)
            body += chunk[:room]
            if len(chunk) > room:
                return bytes(body), True
            continue
        if decoder is None:  # deflate: zlib header 0x78, else a raw stream
            wrapped = chunk[:1] == b"\x78"
            decoder = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        try:
            body += decoder.decompress(chunk, max(1, max_body - len(body)))
        except zlib.error:
            return bytes(body), False  # undecodable: what decoded so far, nothing more
        if len(body) > max_body or decoder.unconsumed_tail or wire > max_body:
            return bytes(body[:max_body]), True
