"""Request and response bodies: undo Content-Encoding, anonymize by media type, cut at a limit.

JSON is anonymized field by field, urlencoded forms per field, other text through the
detectors; binary bodies and multipart uploads are not stored (only their size).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message

from mitmproxy.net import encoding as mitm_encoding

from .values import ValueAnonymizer

# Bodies beyond this multiple of the storage limit are not parsed as JSON or forms: only
# their head is scanned as text (bounded CPU per exchange on huge downloads).
_PARSE_LIMIT_FACTOR = 16
# Text scanned past the cut, so that a secret straddling the limit is still recognised.
_SCAN_MARGIN = 1024
_FORM = re.compile(r"[\w.%+\-\[\]]+=[^&\s]*(?:&[\w.%+\-\[\]]+=[^&\s]*)*")
_BINARY_TYPES = ("image/", "audio/", "video/", "font/", "application/octet-stream")
_BINARY_SUBTYPES = ("zip", "gzip", "pdf", "protobuf", "grpc", "wasm", "msgpack")


@dataclass(frozen=True, slots=True)
class StoredBody:
    data: bytes | None
    """What is stored: anonymized, possibly cut; None when absent or not storable."""
    size: int
    """Size of the body as the application saw it (after undoing Content-Encoding)."""


EMPTY = StoredBody(None, 0)


def decode_content(raw: bytes, content_encoding: str | None) -> bytes | None:
    """`raw` with its Content-Encoding(s) undone; None when they cannot be."""
    if not content_encoding:
        return raw
    data: bytes = raw
    for enc in reversed([e.strip().lower() for e in content_encoding.split(",") if e.strip()]):
        if enc == "identity":
            continue
        try:
            decoded = mitm_encoding.decode(data, enc)
        except ValueError:
            return None
        if not isinstance(decoded, bytes):
            return None
        data = decoded
    return data


def media_type(headers: Sequence[tuple[str, str]] | None) -> tuple[str, str]:
    """(media type, charset) of a Content-Type header; ("", "utf-8") without one."""
    for name, value in headers or ():
        if name.lower() == "content-type":
            msg = Message()
            msg["content-type"] = value
            charset = msg.get_content_charset() or "utf-8"
            return msg.get_content_type().lower() if value.strip() else "", charset
    return "", "utf-8"


def anonymize_body(
    values: ValueAnonymizer,
    raw: bytes | None,
    content_encoding: str | None,
    headers: Sequence[tuple[str, str]] | None,
) -> StoredBody:
    """The stored form of one body under the policy."""
    if not raw:
        return EMPTY
    data = decode_content(raw, content_encoding)
    if data is None:  # undecodable compression: cannot look inside, so keep nothing
        return StoredBody(None, len(raw))
    size = len(data)
    limit = values.policy.max_body_bytes
    mtype, charset = media_type(headers)
    if _is_binary(mtype):
        return StoredBody(None, size)
    if size > limit * _PARSE_LIMIT_FACTOR:
        data = data[: limit + _SCAN_MARGIN]
        mtype = "text/plain"
    try:
        text = data.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return StoredBody(None, size)  # binary or non-UTF-8 text: not storable safely
    out = _anonymize_text(values, text, mtype)
    encoded = out.encode("utf-8")
    return StoredBody(encoded[:limit] if len(encoded) > limit else encoded, size)


def _is_binary(mtype: str) -> bool:
    if mtype.startswith(_BINARY_TYPES) or mtype.startswith("multipart/"):
        return True
    return any(mtype.endswith(sub) or f"/{sub}" in mtype for sub in _BINARY_SUBTYPES)


def _anonymize_text(values: ValueAnonymizer, text: str, mtype: str) -> str:
    if mtype == "application/json" or mtype.endswith("+json") or _looks_json(mtype, text):
        try:
            tree = json.loads(text)
        except ValueError:
            pass
        else:
            return json.dumps(values.json_value(tree), ensure_ascii=False, separators=(",", ":"))
    if mtype == "application/x-www-form-urlencoded" or (
        mtype in ("", "text/plain") and _FORM.fullmatch(text.strip())
    ):
        return values.query(text.strip())
    return values.text(text)


def _looks_json(mtype: str, text: str) -> bool:
    if mtype not in ("", "text/plain"):
        return False
    head = text.lstrip()[:1]
    return head in ("{", "[")
