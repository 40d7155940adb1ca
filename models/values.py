"""The values an HTTP exchange carries, by location: what a request sends (path segments,
query values, headers, cookies, JSON leaves, form fields) and what a response hands out
(JSON leaves, Set-Cookie values, non-standard headers), as correlation finding reads them
(see models/correlations.py for the rules on which values count).
"""

from __future__ import annotations

import json
import re
from collections.abc import Container, Iterable, Iterator
from functools import lru_cache
from typing import Any, NamedTuple
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


class Location(NamedTuple):
    """Where a value sits: json (JSON pointer, arrays as `*`), header (lower-case name),
    cookie (name), path (template parameter or segment index), query, form (field). A
    named tuple, compared and ordered as (where, key): hashed in C (the walk hashes each
    of its values' places several times; a dataclass's hash is a Python call)."""

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


_INT_FLOOR = 10 ** (MIN_INT_DIGITS - 1)


def _text(value: object, min_len: int) -> str | None:
    """The value as matchable text, or None when it is too short or not an id-like leaf.
    Dates and timestamps are left out: clients take them from their clock, so a match
    with a response's date is a coincidence of the day, not a data flow."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value) if abs(value) >= _INT_FLOOR else None
    if isinstance(value, str) and _eligible_text(value, min_len):
        return value
    return None


def _eligible_text(text: str, min_len: int) -> bool:
    """Long enough (or a number of enough digits) and no date: `_text` of a string."""
    if len(text) < min_len:
        digits = text.removeprefix("-")
        if not (digits.isdigit() and len(digits) >= MIN_INT_DIGITS):
            return False
    # A date has its first "-" fifth (`_DATE`: four digits, each one character): the
    # pattern only for those (cap20's walk: 0.19 M strings judged, few of them dates).
    return text[4:5] != "-" or _DATE.match(text) is None


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
    if type(headers) is list:  # what Arrow's map columns give: no ABC check (slow)
        return [(str(name).lower(), str(value)) for name, value in headers]
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
    if not body:  # None or empty: no JSON (json.loads would raise, at a cost)
        return []
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
    """`_text` of every leaf under `doc`, with its place, in document order. Strings and
    ints, most leaves, are judged without a call to `_text` (a list of 1,000 objects has
    ~10,000 leaves), floats, bools and nulls (never a value) skipped before their place is
    looked up, and each member's place is made once per (pointer, name): the objects of an
    array share theirs, one table of names per pointer (cap20's responses: the walk's
    values 0.23 -> 0.1 s, then 0.19 -> 0.13 CPU s)."""
    places: dict[str, dict[object, Location]] = {}
    if isinstance(doc, dict):
        _object_leaves(doc, pointer, min_len, out, places)
    elif isinstance(doc, list):
        _array_leaves(doc, f"{pointer}/*", min_len, out, places)
    elif (found := _text(doc, min_len)) is not None:
        out.append((_place("json", pointer), found))


def _object_leaves(
    doc: dict[Any, Any],
    pointer: str,
    min_len: int,
    out: Values,
    places: dict[str, dict[object, Location]],
) -> None:
    named = places.get(pointer)
    if named is None:
        named = places[pointer] = {}
    for name, child in doc.items():
        kind = type(child)
        value: str | None = None
        if kind is str:
            # `_eligible_text`'s common answer without the call: long enough, no date
            if (len(child) < min_len or child[4:5] == "-") and not _eligible_text(child, min_len):
                continue
            value = child
        elif kind is int:
            if abs(child) < _INT_FLOOR:
                continue
            value = str(child)
        elif kind is float or kind is bool or child is None:
            continue
        place = named.get(name) or _member(named, pointer, name)
        if value is not None:
            out.append((place, value))
        elif isinstance(child, dict):
            _object_leaves(child, place.key, min_len, out, places)
        elif isinstance(child, list):
            _array_leaves(child, f"{place.key}/*", min_len, out, places)
        elif (found := _text(child, min_len)) is not None:
            out.append((place, found))


def _member(named: dict[object, Location], pointer: str, name: object) -> Location:
    """The place of member `name` of the objects at `pointer`, made and kept in `named`."""
    key = str(name)
    if "~" in key or "/" in key:
        key = key.replace("~", "~0").replace("/", "~1")
    place = named[name] = _place("json", f"{pointer}/{key}")
    return place


def _array_leaves(
    doc: list[Any],
    inner: str,
    min_len: int,
    out: Values,
    places: dict[str, dict[object, Location]],
) -> None:
    place = None  # the items' one place, made when a leaf needs it
    for child in doc:
        kind = type(child)
        if kind is str:
            # `_eligible_text`'s common answer without the call: long enough, no date
            if (len(child) >= min_len and child[4:5] != "-") or _eligible_text(child, min_len):
                place = place or _place("json", inner)
                out.append((place, child))
        elif kind is int:
            if abs(child) >= _INT_FLOOR:
                place = place or _place("json", inner)
                out.append((place, str(child)))
        elif kind is float or kind is bool or child is None:
            continue
        elif isinstance(child, dict):
            _object_leaves(child, inner, min_len, out, places)
        elif isinstance(child, list):
            _array_leaves(child, f"{inner}/*", min_len, out, places)
        elif (found := _text(child, min_len)) is not None:
            place = place or _place("json", inner)
            out.append((place, found))


def _sent_leaves(body: object, wanted: Container[str]) -> Values:
    """`_json_values` of a body but only the values in `wanted`, in the same order. Every
    value of `wanted` is eligible (requests send them, judged with the same min_len), and
    eligibility is a text's own: a leaf in it needs no other judging, and the other leaves
    (most of an answer's) no place (cap20's answers: 0.090 -> 0.040 CPU s)."""
    if not body:
        return []
    try:
        doc = json.loads(_decode(body))
    except ValueError:
        return []
    out: Values = []
    if isinstance(doc, dict):
        _sent_object_leaves(doc, "", wanted, out, {})
    elif isinstance(doc, list):
        _sent_array_leaves(doc, "/*", wanted, out, {})
    else:  # a lone scalar (`wanted` holds judged values only: any min_len does here)
        found = _text(doc, 1)
        if found is not None and found in wanted:
            out.append((_place("json", ""), found))
    return out


def _sent_object_leaves(
    doc: dict[Any, Any],
    pointer: str,
    wanted: Container[str],
    out: Values,
    places: dict[str, dict[object, Location]],
) -> None:
    """`_object_leaves` of the values in `wanted` (JSON has no other scalars than
    strings, ints, floats, bools and nulls: the last three are never a value)."""
    named = places.get(pointer)
    if named is None:
        named = places[pointer] = {}
    for name, child in doc.items():
        kind = type(child)
        if kind is str:
            if child in wanted:
                out.append((named.get(name) or _member(named, pointer, name), child))
        elif kind is int:
            if abs(child) >= _INT_FLOOR and (text := str(child)) in wanted:
                out.append((named.get(name) or _member(named, pointer, name), text))
        elif kind is dict:
            place = named.get(name) or _member(named, pointer, name)
            _sent_object_leaves(child, place.key, wanted, out, places)
        elif kind is list:
            place = named.get(name) or _member(named, pointer, name)
            _sent_array_leaves(child, f"{place.key}/*", wanted, out, places)


def _sent_array_leaves(
    doc: list[Any],
    inner: str,
    wanted: Container[str],
    out: Values,
    places: dict[str, dict[object, Location]],
) -> None:
    for child in doc:
        kind = type(child)
        if kind is str:
            if child in wanted:
                out.append((_place("json", inner), child))
        elif kind is int:
            if abs(child) >= _INT_FLOOR and (text := str(child)) in wanted:
                out.append((_place("json", inner), text))
        elif kind is dict:
            _sent_object_leaves(child, inner, wanted, out, places)
        elif kind is list:
            _sent_array_leaves(child, f"{inner}/*", wanted, out, places)


def _eligible(values: Iterable[tuple[Location, object]], min_len: int) -> Values:
    """`_text` of each value, with its place; a string (most values) judged without the
    call (`_text` returns it when `_eligible_text`)."""
    out: Values = []
    for loc, value in values:
        if type(value) is str:
            if _eligible_text(value, min_len):
                out.append((loc, value))
        elif (text := _text(value, min_len)) is not None:
            out.append((loc, text))
    return out


@lru_cache(maxsize=1 << 16)
def _place(where: str, key: str) -> Location:
    """One Location per place (requests repeat the same names)."""
    return Location(where, key)


@lru_cache(maxsize=1 << 12)
def _path_slots(endpoint: str) -> tuple[tuple[str, Location | None], ...]:
    """The endpoint's template segments, each with its parameter's place (None: a literal)."""
    template = path_template(endpoint) or endpoint
    return tuple(
        (slot, _place("path", slot[1:-1]) if slot.startswith("{") and slot.endswith("}") else None)
        for slot in template.split("/")
    )


def _path_values(path: str, endpoint: str) -> list[tuple[Location, object]]:
    slots, segments = _path_slots(endpoint), path.split("/")
    out: list[tuple[Location, object]] = []
    if len(slots) != len(segments):
        slots = (("", None),) * len(segments)
    for index, ((slot, place), raw) in enumerate(zip(slots, segments, strict=True)):
        if place is not None:
            out.append((place, unquote(raw) if "%" in raw else raw))
        elif raw != slot:  # a literal segment of the template names the endpoint
            out.append((_place("path", str(index)), unquote(raw) if "%" in raw else raw))
    return out


def query_pairs(query: str) -> list[tuple[str, str]]:
    """`parse_qsl(query, keep_blank_values=True)`: split in Python's C string methods
    when nothing is to be decoded (no "%", no "+"), the common case, else parse_qsl."""
    if "%" in query or "+" in query:
        return parse_qsl(query, keep_blank_values=True)
    return [(name, value) for piece in query.split("&") if piece
            for name, _, value in (piece.partition("="),)]  # fmt: skip


@lru_cache(maxsize=1 << 14)
def _path_sent(path: str, endpoint: str, min_len: int) -> tuple[tuple[Location, str], ...]:
    """`_eligible` of a path's values: a sample's sessions repeat their paths (real1M's
    correlation sample: 1,246 distinct paths in 19,227 requests)."""
    return tuple(_eligible(_path_values(path, endpoint), min_len))


@lru_cache(maxsize=1 << 14)
def _query_sent(query: str, min_len: int) -> tuple[tuple[Location, str], ...]:
    """`_eligible` of a query string's values (real1M's sample: 5,092 distinct)."""
    return tuple(_eligible([(_place("query", k), v) for k, v in query_pairs(query)], min_len))


def request_values(row: dict[str, Any], min_len: int, memo: JsonMemo | None = None) -> Values:
    """Every value a request sends, with where it sends it (`memo`: see `JsonMemo`)."""
    # `_eligible` judges each value alone: the path's and the query's, judged once per
    # distinct one, come first, as they did in the one list judged whole.
    sent = [*_path_sent(str(row["path"] or ""), str(row["endpoint"]), min_len)]
    query = row["query"]
    if isinstance(query, str) and query:
        sent += _query_sent(query, min_len)
    headers = row["req_headers"]  # (an empty list: no pairs; most of a sample's requests)
    none = type(headers) is list and not headers
    out, content_type = ((), None) if none else _headers_sent(headers, min_len)
    if content_type is not None and "x-www-form-urlencoded" in content_type:
        form = query_pairs(_decode(row["req_body"]))
        out += tuple(_eligible([(_place("form", k), v) for k, v in form], min_len))
        return sent + list(out) if out else sent
    body = _json_values(row["req_body"], min_len, memo)
    return [*sent, *out, *body] if out else sent + body


HeadersSent = tuple[tuple[tuple[Location, str], ...], str | None]


def _headers_sent(headers: object, min_len: int) -> HeadersSent:
    """`_eligible` of the values a request's headers send, and its first Content-Type:
    judged once per distinct list of pairs (a session sends the same again: cap20's
    9,785 requests sent 2,482 distinct lists)."""
    if type(headers) is list:  # Arrow's map column: pairs of text, hashable once a tuple
        try:
            return _listed_headers_sent(tuple(headers), min_len)
        except TypeError:  # (a pair that is a list: not hashable)
            pass
    return _judged_headers(headers, min_len)


@lru_cache(maxsize=1 << 14)
def _listed_headers_sent(headers: tuple[Any, ...], min_len: int) -> HeadersSent:
    return _judged_headers(headers, min_len)


def _judged_headers(headers: object, min_len: int) -> HeadersSent:
    out: list[tuple[Location, object]] = []
    content_type = None  # the first Content-Type
    for name, value in _pairs(headers):
        if name == "cookie":
            out += [(_place("cookie", k), v) for k, v in cookie_pairs(value, unquote=True)]
        elif name not in _TRANSPORT_HEADERS:
            _, _, token = value.partition(" ")
            credential = name in ("authorization", "proxy-authorization") and token
            out.append((_place("header", name), token.strip() if credential else value))
        elif name == "content-type" and content_type is None:
            content_type = value
    return tuple(_eligible(out, min_len)), content_type


def response_values(row: dict[str, Any], min_len: int, memo: JsonMemo | None = None) -> Values:
    """Every value a response yields (JSON leaves, Set-Cookie values, other headers),
    echoes included (`memo`: see `JsonMemo`; the list may be shared: only read it)."""
    out = _header_values(row["resp_headers"])
    values = _json_values(row["resp_body"], min_len, memo)
    # No header value (most responses): the body's list itself, shared with every row of
    # the same body (`memo`).
    return values + _eligible(out, min_len) if out else values


def sent_response_values(
    row: dict[str, Any], wanted: Container[str], found: dict[object, Values]
) -> Values:
    """`response_values` of the values in `wanted` alone, in the same order: what the
    correlation walk reads of a response (`wanted`: the values its requests send, each
    eligible with the walk's min_len). A body's list is made once (`found`, by body) and
    shared by its rows whose headers yield no such value (the list: only read it)."""
    body = row["resp_body"]
    if not isinstance(body, bytes | str):
        values = _sent_leaves(body, wanted)
    elif (kept := found.get(body)) is not None:
        values = kept
    else:
        values = found[body] = _sent_leaves(body, wanted)
    headers = _header_values(row["resp_headers"])
    sent = [pair for pair in headers if pair[1] in wanted] if headers else headers
    return values + sent if sent else values


def _header_values(headers: object) -> list[tuple[Location, str]]:
    """The values a response's headers yield, not judged: Set-Cookie's, the others'."""
    out: list[tuple[Location, str]] = []
    # Arrow's pairs read as they come, the meta headers (most) skipped before their value
    # is made text (`_pairs` made each pair anew: stretchcap_x100's 0.27 -> 0.19 s).
    for name, value in headers if type(headers) is list else _pairs(headers):
        lower = str(name).lower()
        if lower in _RESPONSE_META:
            continue
        header = str(value)
        if lower == "set-cookie":
            pair = header.partition(";")[0]
            out += [(_place("cookie", k), v) for k, v in cookie_pairs(pair, unquote=True)]
        else:  # e.g. a CSRF token or an ETag sent back later
            out.append((_place("header", lower), header))
    return out
