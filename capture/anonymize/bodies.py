"""Request and response bodies: undo Content-Encoding, parse, anonymize, cut at a limit.

Every stored body went through a parser: JSON (found by media type or by content: a BOM,
text/json, x-json, javascript, NDJSON, JSONP), urlencoded forms, XML (defusedxml), HTML
(html.parser), or plain text as free text. A body that is binary, does not parse as what
it claims to be, or is too large to parse within bounds is stored as its size only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message

from mitmproxy.net import encoding as mitm_encoding

from .markup import anonymize_html, anonymize_xml
from .values import ValueAnonymizer

# Bodies beyond this multiple of the storage limit are not parsed (bounded CPU per exchange
# on huge downloads): they are stored as their size only, never as a raw prefix.
_PARSE_LIMIT_FACTOR = 16
_JSON_TYPES = ("json", "javascript", "ecmascript", "ndjson", "jsonl", "json-seq")
_XML_TYPES = ("application/xml", "text/xml")
_JSONP = re.compile(r"\s*([\w$.]{1,64})\s*\((.*)\)\s*;?\s*", re.DOTALL)
_BOMS = ("\ufeff",)
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
    if _is_binary(mtype) or size > limit * _PARSE_LIMIT_FACTOR:
        return StoredBody(None, size)
    try:
        text = data.decode("utf-8-sig" if charset.lower().replace("_", "-") == "utf-8" else charset)
    except (UnicodeDecodeError, LookupError):
        return StoredBody(None, size)  # binary or mislabelled text: not storable safely
    out = anonymize_text(values, text.lstrip("".join(_BOMS)), mtype)
    if out is None:
        return StoredBody(None, size)
    encoded = out.encode("utf-8")
    return StoredBody(encoded[:limit] if len(encoded) > limit else encoded, size)


def _is_binary(mtype: str) -> bool:
    if mtype.startswith(_BINARY_TYPES) or mtype.startswith("multipart/"):
        return True
    return any(mtype.endswith(sub) or f"/{sub}" in mtype for sub in _BINARY_SUBTYPES)


def anonymize_text(values: ValueAnonymizer, text: str, mtype: str) -> str | None:
    """A decoded body through the parser its media type or content calls for; None when it
    does not parse as what it claims to be."""
    head = text.lstrip()[:1]
    jsonish = any(t in mtype for t in _JSON_TYPES)
    if jsonish or (head in ("{", "[") and not _is_markup(mtype)):
        made = _json(values, text)
        if made is not None or jsonish:
            return made
    if mtype == "application/x-www-form-urlencoded":
        return values.query(text.strip())
    xml = mtype in _XML_TYPES or mtype.endswith("+xml") or (head == "<" and _looks_xml(text))
    if xml and "html" not in mtype:
        return anonymize_xml(values, text)
    if "html" in mtype or (head == "<" and mtype in ("", "text/plain")):
        return anonymize_html(values, text)
    if mtype in ("", "text/plain") and _FORM.fullmatch(text.strip()):
        return values.query(text.strip())
    return values.string(text)


def _is_markup(mtype: str) -> bool:
    return "html" in mtype or "xml" in mtype


def _looks_xml(text: str) -> bool:
    start = text.lstrip()[:100].lower()
    return start.startswith("<?xml") or not start.startswith(("<!doctype html", "<html"))


def _json(values: ValueAnonymizer, text: str) -> str | None:
    """JSON, NDJSON (one document a line) or JSONP (`callback({...})`), anonymized."""
    try:
        return _dump(values.json_value(json.loads(text)))
    except ValueError:
        pass
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        try:
            docs = [json.loads(line) for line in lines]
        except ValueError:
            pass
        else:
            return "\n".join(_dump(values.json_value(d)) for d in docs) + "\n"
    padded = _JSONP.fullmatch(text)
    if padded is not None:
        inner = _json(values, padded.group(2))
        if inner is not None:
            return f"{values.key(padded.group(1))}({inner});"
    return None


def _dump(tree: object) -> str:
    return json.dumps(tree, ensure_ascii=False, separators=(",", ":"))
