"""The one place a replay URL is made: `--host` (an `Origin`) + a path checked when the model
or trace is loaded. The runner sends only what `outgoing_url` returns.

A path is accepted in origin form only: one leading "/", not followed by "/" or "\\" (nor
after percent-decoding); no backslash, whitespace or control character. So no scheme,
authority or userinfo can ride in a path, in any case or encoding, and `--host` + path is
read as the same host by every URL parser. The finished URL is parsed once more and must
name the origin exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from tracereplay.errors import UsageError

_SCHEMES = {"http": 80, "https": 443}
# Whitespace and controls (C0, DEL, C1): a URL parser strips or splits on them.
_BAD_CHAR = re.compile(r"[\x00-\x20\x7f-\x9f\\]")
_BAD_QUERY_CHAR = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")
_DECODE_ROUNDS = 3  # a double-encoded "%252F%252F" is still caught


class UnsafeUrlError(UsageError):
    """A path or query that could address another host than --host; or a bad --host."""


@dataclass(frozen=True)
class Origin:
    """`--host`, checked: scheme, host and port, nothing else."""

    scheme: str
    host: str
    port: int
    base: str
    """"scheme://host[:port]" as given (no trailing slash)."""


def parse_origin(text: str) -> Origin:
    """`--host` as an `Origin`; an `UnsafeUrlError` saying what is wrong otherwise."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrlError(f"--host {text!r}: not a URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES or not parts.hostname or _BAD_CHAR.search(parts.netloc):
        raise UnsafeUrlError(f"--host {text!r}: want an http(s)://host[:port] URL")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrlError(f"--host {text!r}: no user or password in the URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UnsafeUrlError(f"--host {text!r}: give the base URL only (no path)")
    port = port or _SCHEMES[scheme]
    return Origin(scheme, parts.hostname, port, f"{scheme}://{parts.netloc}")


def check_path(path: object, where: str) -> str:
    """`path` when it is a path on --host (see the module rules); else an `UnsafeUrlError`
    naming `where` (the template, the trace row)."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise UnsafeUrlError(f"{where}: {_show(path)} is not a path (it must start with one /)")
    if _BAD_CHAR.search(path):
        raise UnsafeUrlError(
            f"{where}: {_show(path)} is not a plain path "
            "(a backslash, whitespace or a control character)"
        )
    text = path
    for _ in range(_DECODE_ROUNDS + 1):
        if text[1:2] in ("/", "\\"):
            raise UnsafeUrlError(
                f"{where}: {_show(path)} starts like a host, not a path on --host "
                "(// or /\\, maybe percent-encoded)"
            )
        decoded = unquote(text, errors="replace")
        if decoded == text:
            break
        text = decoded
    return path


def check_method(method: object, where: str) -> str:
    """`method` when it is an HTTP token (no space, no line break); else UnsafeUrlError."""
    if not isinstance(method, str) or not _METHOD.fullmatch(method):
        raise UnsafeUrlError(f"{where}: method {_show(method)} is not an HTTP method")
    return method


def check_query(query: object, where: str) -> str | None:
    """`query` (None or text without control characters); else an `UnsafeUrlError`."""
    if query is None or query == "":
        return None
    if not isinstance(query, str) or _BAD_QUERY_CHAR.search(query):
        raise UnsafeUrlError(f"{where}: query {_show(query)} holds a control character")
    return query


@dataclass(frozen=True)
class OutgoingUrl:
    """A URL on --host. Only `outgoing_url` makes one; the runner sends nothing else."""

    text: str


def outgoing_url(origin: Origin, path: str, query: str | None = None) -> OutgoingUrl:
    """--host + `path` (+ "?" `query`), checked before and after it is put together."""
    check_path(path, "request")
    query = check_query(query, "request")
    text = origin.base + path + (f"?{query}" if query else "")
    parts = urlsplit(text)
    same = (parts.scheme, parts.hostname, parts.port or _SCHEMES[parts.scheme])
    if same != (origin.scheme, origin.host, origin.port) or "@" in parts.netloc:
        raise UnsafeUrlError(f"request: {_show(path)} would not go to {origin.base}")
    return OutgoingUrl(text)


def _show(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
