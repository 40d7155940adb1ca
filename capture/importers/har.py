"""HAR 1.2 import: the entries of a HAR file (Chrome, Firefox, mitmproxy's savehar) as `Exchange`s.

Owns the mapping from HAR fields to `Exchange` fields and the one-line errors for a malformed file.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from tracereplay.capture.exchange import Exchange, Headers
from tracereplay.errors import UsageError

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
"""URL schemes an entry may have to be imported; others (data:, blob:, ...) are skipped."""

# Spelled as mitmproxy spells them, so HAR imports and flow dumps agree.
_HTTP_VERSIONS = {
    "http/1.0": "HTTP/1.0",
    "http/1.1": "HTTP/1.1",
    "h2": "HTTP/2.0",
    "http/2": "HTTP/2.0",
    "http/2.0": "HTTP/2.0",
    "h3": "HTTP/3",
    "http/3": "HTTP/3",
}


_SURROGATE = re.compile("[\ud800-\udfff]")
_FIRST, _LAST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)
_METHOD = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")  # a token: no space, no line break


class EntryError(ValueError):
    """A malformed HAR entry; `iter_har` prefixes the file and the entry's index."""


def iter_har(path: Path, *, on_skip: Callable[[str], None] | None = None) -> Iterator[Exchange]:
    """Every entry of the HAR file at `path` as an `Exchange`, in file order.

    Entries whose URL is not http(s)/ws(s), and Chrome's entries served from its own cache
    (`_fromCache`), are skipped and reported to `on_skip`. A file
    or an entry that cannot be read is a `UsageError` naming the file and, for an entry,
    its index in `log.entries` (0-based, as `jq '.log.entries[17]'` counts).
    """
    entries = load_entries(path)
    # A HAR entry's `connection` is unique within its file (a browser's own numbering).
    lineage = str(path.resolve())
    for index in range(len(entries)):
        # Drop each parsed entry once converted: the JSON tree need not outlive the import.
        entry, entries[index] = entries[index], None
        if isinstance(entry, dict) and entry.get("_fromCache"):
            # Chrome's answers from its own cache never reached the server: not load.
            if on_skip is not None:
                on_skip("served from the browser cache")
            continue
        try:
            exchange = exchange_from_entry(entry)
        except EntryError as exc:
            raise UsageError(f"{path}: entry {index}: {exc}") from None
        if exchange is None:
            if on_skip is not None:
                on_skip("non-HTTP URL")
            continue
        if exchange.client_conn is not None:
            exchange.client_conn = f"{lineage}#{exchange.client_conn}"
        yield exchange


def load_entries(path: Path) -> list[Any]:
    """`log.entries` of the HAR file at `path` (the rest of the document is dropped)."""
    try:
        # utf-8-sig: Fiddler and other Windows tools start the file with a BOM.
        with path.open(encoding="utf-8-sig") as handle:
            document = json.load(handle)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise UsageError(f"{path}: not valid JSON ({where}: {exc.msg})") from None
    except RecursionError:
        raise UsageError(f"{path}: not a HAR file (JSON nested too deeply)") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise UsageError(f"{path}: not a HAR file ({str(exc).splitlines()[0][:120]})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a HAR file (not UTF-8 text)") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    log = document.get("log") if isinstance(document, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    if not isinstance(entries, list):
        raise UsageError(f"{path}: not a HAR file (no log.entries)")
    return entries


def exchange_from_entry(entry: Any) -> Exchange | None:
    """One HAR entry as an `Exchange`; None for a URL that is not HTTP (data:, blob:, ...).

    HAR stores bodies decoded, so the `*_body_encoding` fields stay None even when a
    Content-Encoding header says how the body travelled.
    """
    if not isinstance(entry, dict):
        raise EntryError("not a JSON object")
    request = entry.get("request")
    if not isinstance(request, dict):
        raise EntryError("request missing")
    method = _required_str(request, "method", "request.method")
    if not _METHOD.fullmatch(method):
        raise EntryError(f"request.method {method[:40]!r} is not an HTTP method")
    url = _required_str(request, "url", "request.url")
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            return None
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:  # an unbalanced IPv6 bracket or a port out of range
        raise EntryError("request.url is not a valid URL") from None
    if not parts.hostname:
        raise EntryError("request.url has no host")
    req_headers = _headers(request, "request.headers")
    exchange = Exchange(
        ts=_started(entry),
        method=method,
        path=parts.path or "/",
        query=parts.query,
        scheme=scheme,
        host=parts.hostname,
        port=port,
        req_headers=req_headers,
        req_body=_post_data(request, req_headers),
        http_version=_http_version(request.get("httpVersion")),
        client_conn=_connection(entry.get("connection")),
    )
    response = entry.get("response")
    if not isinstance(response, dict):
        response = {}
    har_error = response.get("_error")  # Chrome's net::ERR_..., mitmproxy's flow error
    exchange.error = _text(har_error) if isinstance(har_error, str) and har_error else None
    status = _status(response.get("status"))
    if status is None:
        exchange.error = exchange.error or "no response"
        return exchange
    exchange.status = status
    exchange.resp_headers = _headers(response, "response.headers")
    exchange.resp_body = _content(response)
    exchange.duration_ms = _duration_ms(entry.get("time"))
    return exchange


def _connection(value: Any) -> str | None:
    """HAR's `connection` (the TCP connection's id or port; optional), as text."""
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) in ("", "0"):
        return None
    return _text(str(value))[:200]


def _required_str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise EntryError(f"{where} missing")
    return _text(value)


def _text(value: str) -> str:
    """`value` with lone surrogates (JSON's unpaired \\udXXX, which UTF-8 cannot encode)
    replaced by U+FFFD, as the bodies get them."""
    return _SURROGATE.sub("\ufffd", value)


def _started(entry: dict[str, Any]) -> datetime:
    value = _required_str(entry, "startedDateTime", "startedDateTime")
    try:
        ts = datetime.fromisoformat(value)
        if ts.tzinfo is None:  # HAR requires an offset; a tool that left it out meant UTC
            ts = ts.replace(tzinfo=UTC)
        ts = ts.astimezone(UTC)
    except (ValueError, OverflowError):
        ts = None
    # The times a trace holds (its reader refuses others as damage): 1970..2200.
    if ts is None or not _FIRST <= ts < _LAST:
        shown = value[:60]
        raise EntryError(f"startedDateTime {shown!r} is not an ISO 8601 date in range") from None
    return ts


def _status(value: Any) -> int | None:
    """The HTTP status, None when no response came (HAR writes 0, or leaves it out)."""
    if value is None or value == 0:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 100 <= value <= 999:
        raise EntryError(f"response.status {value!r} is not an HTTP status")
    return value


def _duration_ms(value: Any) -> float | None:
    """HAR's `time`, the entry's total in ms; -1 (or missing) means not known."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _headers(obj: dict[str, Any], where: str) -> Headers:
    raw = obj.get("headers")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise EntryError(f"{where} is not a list")
    headers: Headers = []
    for item in raw:
        if not isinstance(item, dict):
            raise EntryError(f"{where} holds a value that is not a name/value object")
        name, value = item.get("name"), item.get("value")
        # HTTP/2 pseudo-headers (:method, :path, ...) repeat the request line; not headers.
        if isinstance(name, str) and name and not name.startswith(":"):
            headers.append((_text(name), "" if value is None else _text(str(value))))
    return headers


def _post_data(request: dict[str, Any], headers: Headers) -> bytes | None:
    """The request body from `postData` (mutates `headers` to carry its type)."""
    post = request.get("postData")
    if not isinstance(post, dict):
        return None
    mime_type = post.get("mimeType")
    # Some exporters record the body's type only here; the anonymizer reads it from headers.
    has_type = any(name.lower() == "content-type" for name, _ in headers)
    if isinstance(mime_type, str) and mime_type and not has_type:
        headers.append(("content-type", _text(mime_type)))
    text = post.get("text")
    if isinstance(text, str):
        return _decode_text(text, post.get("encoding"), "request.postData.text")
    params = post.get("params")
    if not isinstance(params, list) or not params:
        return None
    pairs = []
    for param in params:
        if not isinstance(param, dict):
            raise EntryError("request.postData.params holds a value that is not an object")
        name, value = param.get("name"), param.get("value")
        pairs.append(("" if name is None else str(name), "" if value is None else str(value)))
    return urlencode([(_text(k), _text(v)) for k, v in pairs]).encode("ascii")


def _content(response: dict[str, Any]) -> bytes | None:
    """The response body; None when the exporter did not keep it."""
    content = response.get("content")
    if not isinstance(content, dict):
        return None
    text = content.get("text")
    if not isinstance(text, str):
        return None
    return _decode_text(text, content.get("encoding"), "response.content.text")


def _decode_text(text: str, encoding: Any, where: str) -> bytes:
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise EntryError(f"{where} is not valid base64") from None
    # JSON may carry lone surrogates (\udXXX) that UTF-8 cannot encode; keep the rest.
    return text.encode("utf-8", errors="replace")


def _http_version(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return _HTTP_VERSIONS.get(value.lower(), _text(value))
