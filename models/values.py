"""The values an HTTP exchange carries, by location: what a request sends (path segments,
query values, headers, cookies, JSON leaves, form fields) and what a response hands out
(JSON leaves, Set-Cookie values, non-standard headers), as correlation finding reads them
(see models/correlations.py for the rules on which values count).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, unquote

from tracereplay.cookies import cookie_pairs
from tracereplay.errors import ConfigError

from .templating import path_template

MIN_INT_DIGITS = 4
# Transport headers never carry a value a server handed out; skipping them saves work.
_TRANSPORT_HEADERS = frozenset(
    {"host", "content-length", "content-type", "accept", "accept-encoding", "accept-language",
     "connection", "user-agent", "cookie", "te", "transfer-encoding", "x-forwarded-for"}
)  # fmt: skip
_RESPONSE_META = _TRANSPORT_HEADERS | {
    "date", "server", "content-encoding", "cache-control", "expires", "last-modified", "vary",
    "age", "retry-after", "strict-transport-security", "x-content-type-options", "via"}  # fmt: skip
_DATE = re.compile(r"\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?)?$")


@dataclass(frozen=True, order=True)
class Location:
    """Where a value sits: json (JSON pointer, arrays as `*`), header (lower-case name),
    cookie (name), path (template parameter or segment index), query, form (field)."""

    where: str
    key: str

    def to_json(self) -> dict[str, str]:
        return {"where": self.where, "key": self.key}

    @staticmethod
    def from_json(data: Any) -> Location:
        if not isinstance(data, dict) or not {"where", "key"} <= data.keys():
            raise ConfigError(f"model: a location needs `where` and `key`, got {data!r}")
        return Location(str(data["where"]), str(data["key"]))


Values = list[tuple[Location, str]]
JsonMemo = dict[tuple[object, int], Values]
"""A body's eligible JSON leaves by (body, min_len): samples repeat the same answers
(a list, a profile) many times, and parsing is most of what reading values costs."""


def _text(value: object, min_len: int) -> str | None:
    """The value as matchable text, or None when it is too short or not an id-like leaf.
    Dates and timestamps are left out: clients take them from their clock, so a match
    with a response's date is a coincidence of the day, not a data flow."""
    if isinstance(value, bool) or value is None or (isinstance(value, str) and _DATE.match(value)):
        return None
    if isinstance(value, int):
        return str(value) if abs(value) >= 10 ** (MIN_INT_DIGITS - 1) else None
    if isinstance(value, str):
        digits = value.removeprefix("-")
        if len(value) >= min_len or (digits.isdigit() and len(digits) >= MIN_INT_DIGITS):
            return value
    return None


def json_leaves(doc: object, pointer: str = "") -> Iterator[tuple[str, object]]:
    if isinstance(doc, dict):
        for name, child in doc.items():
            escaped = str(name).replace("~", "~0").replace("/", "~1")
            yield from json_leaves(child, f"{pointer}/{escaped}")
    elif isinstance(doc, list):
        for child in doc:
            yield from json_leaves(child, f"{pointer}/*")
    else:
        yield pointer, doc


def _pairs(headers: object) -> list[tuple[str, str]]:
    """Header pairs with lower-case names, from a list of pairs, a mapping or nothing."""
    items = headers.items() if isinstance(headers, dict) else headers
    if not isinstance(items, Iterable) or isinstance(items, str):
        return []
    return [(str(name).lower(), str(value)) for name, value in items]


def _decode(body: object) -> str:
    if isinstance(body, bytes | bytearray):
        return bytes(body).decode("utf-8", "replace")
    return body if isinstance(body, str) else ""


def _json_values(body: object, min_len: int, memo: JsonMemo | None = None) -> Values:
    """The eligible leaves of a JSON body (`_eligible` of `json_leaves`, in that order),
    found in one pass: a leaf too short to match costs no Location. With `memo`, once per
    distinct body (the list is shared: callers only read it)."""
    if memo is None or not isinstance(body, bytes | str):
        return _parsed_values(body, min_len)
    key = (body, min_len)
    found = memo.get(key)
    if found is None:
        found = memo[key] = _parsed_values(body, min_len)
    return found


def _parsed_values(body: object, min_len: int) -> Values:
    try:
        doc = json.loads(_decode(body))
    except ValueError:
        return []  # no body, not JSON, or cut at the capture's body limit
    out: Values = []
    _eligible_leaves(doc, "", min_len, out)
    return out


def _eligible_leaves(doc: object, pointer: str, min_len: int, out: Values) -> None:
    if isinstance(doc, dict):
        for name, child in doc.items():
            key = str(name)
            if "~" in key or "/" in key:
                key = key.replace("~", "~0").replace("/", "~1")
            _eligible_leaves(child, f"{pointer}/{key}", min_len, out)
    elif isinstance(doc, list):
        inner = f"{pointer}/*"
        for child in doc:
            _eligible_leaves(child, inner, min_len, out)
    elif (text := _text(doc, min_len)) is not None:
        out.append((_json_place(pointer), text))


@lru_cache(maxsize=1 << 16)
def _json_place(pointer: str) -> Location:
    """One Location per JSON pointer (responses repeat the same few thousand)."""
    return Location("json", pointer)


def _eligible(values: Iterable[tuple[Location, object]], min_len: int) -> Values:
    return [(loc, text) for loc, v in values if (text := _text(v, min_len)) is not None]


def _path_values(path: str, endpoint: str) -> Iterator[tuple[Location, object]]:
    template = path_template(endpoint) or endpoint
    segments, slots = path.split("/"), template.split("/")
    if len(slots) != len(segments):
        slots = [""] * len(segments)
    for index, (raw, slot) in enumerate(zip(segments, slots, strict=True)):
        if slot.startswith("{") and slot.endswith("}"):
            yield Location("path", slot[1:-1]), unquote(raw)
        elif raw != slot:  # a literal segment of the template names the endpoint
            yield Location("path", str(index)), unquote(raw)


def request_values(row: dict[str, Any], min_len: int, memo: JsonMemo | None = None) -> Values:
    """Every value a request sends, with where it sends it (`memo`: see `JsonMemo`)."""
    out = list(_path_values(str(row["path"] or ""), str(row["endpoint"])))
    query = row["query"] if isinstance(row["query"], str) else ""
    out += [(Location("query", k), v) for k, v in parse_qsl(query, keep_blank_values=True)]
    headers = _pairs(row["req_headers"])
    for name, value in headers:
        if name == "cookie":
            out += [(Location("cookie", k), v) for k, v in cookie_pairs(value, unquote=True)]
        elif name not in _TRANSPORT_HEADERS:
            _, _, token = value.partition(" ")
            credential = name in ("authorization", "proxy-authorization") and token
            out.append((Location("header", name), token.strip() if credential else value))
    content_type = next((v for k, v in headers if k == "content-type"), "")
    if "x-www-form-urlencoded" in content_type:
        form = parse_qsl(_decode(row["req_body"]), keep_blank_values=True)
        out += [(Location("form", k), v) for k, v in form]
        return _eligible(out, min_len)
    return _eligible(out, min_len) + _json_values(row["req_body"], min_len, memo)


def response_values(row: dict[str, Any], min_len: int, memo: JsonMemo | None = None) -> Values:
    """Every value a response yields (JSON leaves, Set-Cookie values, other headers),
    echoes included (`memo`: see `JsonMemo`)."""
    out: list[tuple[Location, object]] = []
    for name, header in _pairs(row["resp_headers"]):
        if name == "set-cookie":
            pair = header.partition(";")[0]
            out += [(Location("cookie", k), v) for k, v in cookie_pairs(pair, unquote=True)]
        elif name not in _RESPONSE_META:  # e.g. a CSRF token or an ETag sent back later
            out.append((Location("header", name), header))
    return _json_values(row["resp_body"], min_len, memo) + _eligible(out, min_len)
