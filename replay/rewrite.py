"""Where values live in an HTTP exchange, for runtime correlation: a value read at a
location of a response (JSON pointer, header, cookie), and a request rewritten with values
at its path parameters, query, headers, Cookie header and body fields (shape kept).

No state here; replay/correlate.py decides which value goes where.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, urlencode

from tracereplay.cookies import cookie_pairs
from tracereplay.models.correlations import Location
from tracereplay.models.id_select import nodes_at
from tracereplay.models.templating import path_template

from .plan import PlannedRequest

Scalar = str | int | float


class PreparedRequest(NamedTuple):
    """What the runner sends: the planned request with live values in it (a tuple: one
    per request, built on the sending loop; a frozen dataclass took 1.0 us more)."""

    method: str
    path: str
    query: str | None
    headers: list[tuple[str, str]]
    body: bytes | None


class Response:
    """One response's values by location, its JSON body parsed once."""

    def __init__(
        self, headers: Sequence[tuple[str, str]], body: bytes | None, cookies: dict[str, str]
    ) -> None:
        self._raw_headers = headers
        self._lowered: list[tuple[str, str]] | None = None
        self.body = body
        self.cookies = cookies
        self._doc: object = None
        self._parsed = False

    @property
    def headers(self) -> list[tuple[str, str]]:
        """(name lower-cased, value) of each header; lowered on first use (most answers
        are never asked for a header)."""
        if self._lowered is None:
            self._lowered = [(name.lower(), value) for name, value in self._raw_headers]
        return self._lowered

    def value_at(self, loc: Location) -> Scalar | None:
        if loc.where == "cookie":
            return self.cookies.get(loc.key)
        if loc.where == "header":
            return next((v for k, v in self.headers if k == loc.key), None)
        if loc.where != "json":
            return None  # responses yield JSON leaves, cookies and headers only
        if not self._parsed:
            self._parsed = True
            try:
                self._doc = json.loads(self.body or b"")
            except ValueError:
                self._doc = None
        return _first_at(self._doc, _pointer(loc.key))

    def document(self) -> object:
        """The JSON body parsed (None when it is not JSON), parsed once."""
        self.value_at(Location("json", ""))
        return self._doc

    def values_at(self, loc: Location) -> list[Scalar]:
        """Every value at `loc` (each element of a `*` array), in the answer's order."""
        if loc.where != "json":
            value = self.value_at(loc)
            return [] if value is None else [value]
        self.value_at(loc)  # parses the body once
        return list(_all_at(self._doc, _pointer(loc.key)))


# ---- JSON pointers --------------------------------------------------------------------------


def _pointer(key: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in key.split("/")[1:]]


def _first_at(node: object, parts: list[str]) -> Scalar | None:
    """The leaf at `parts`; `*` takes the first array element that has one."""
    if not parts:
        if isinstance(node, bool) or not isinstance(node, str | int | float):
            return None
        return node
    head, rest = parts[0], parts[1:]
    if isinstance(node, dict):
        return _first_at(node[head], rest) if head in node else None
    if isinstance(node, list):
        if head == "*":
            return next((v for item in node if (v := _first_at(item, rest)) is not None), None)
        if head.isdigit() and int(head) < len(node):
            return _first_at(node[int(head)], rest)
    return None


def _all_at(node: object, parts: list[str]) -> Iterator[Scalar]:
    """Every leaf at `parts`; `*` walks every array element."""
    for leaf in nodes_at(node, parts):
        if not isinstance(leaf, bool) and isinstance(leaf, str | int | float):
            yield leaf


def json_values_at(body: bytes | None, key: str) -> list[Scalar]:
    """Every leaf of a JSON body at pointer `key` (none when the body is not JSON)."""
    try:
        doc = json.loads(body or b"")
    except ValueError:
        return []
    return list(_all_at(doc, _pointer(key)))


def planned_value(request: PlannedRequest, target: Location) -> str | None:
    """The value a planned request sends at `target` (path parameter, query field, first
    JSON leaf, form field), as text; None when it sends none there."""
    if target.where == "path":
        return request.path_params.get(target.key)
    if target.where == "query":
        return next((v for k, v in parse_qsl(request.query or "") if k == target.key), None)
    if target.where == "form" and request.body and is_form(request.headers):
        pairs = parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        return next((v for k, v in pairs if k == target.key), None)
    if target.where == "json":
        values = json_values_at(request.body, target.key)
        return str(values[0]) if values else None
    return None


def _replace_at(node: object, parts: list[str], value: Scalar) -> bool:
    """Replace the existing leaf(s) at `parts` (every element for `*`); whether any was."""
    if not parts:
        return False
    head, rest = parts[0], parts[1:]
    slots: list[tuple[Any, Any]] = []  # (container, key or index)
    if isinstance(node, dict) and head in node:
        slots = [(node, head)]
    elif isinstance(node, list) and head == "*":
        slots = [(node, i) for i in range(len(node))]
    elif isinstance(node, list) and head.isdigit() and int(head) < len(node):
        slots = [(node, int(head))]
    changed = False
    for parent, slot in slots:
        child = parent[slot]
        if rest:
            changed = _replace_at(child, rest, value) or changed
        elif not isinstance(child, dict | list):
            parent[slot] = _like(child, value)
            changed = True
    return changed


def _like(planned: object, value: Scalar) -> object:
    """`value` with the planned leaf's JSON type, when it can have it."""
    if isinstance(planned, str):
        return str(value)
    if (
        isinstance(planned, int | float)
        and not isinstance(planned, bool)
        and isinstance(value, str)
    ):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return value
    return value


# ---- request parts ------------------------------------------------------------------------


def header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


def set_header(headers: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    """`name` set to `value` once (replacing every planned copy, where the first was)."""
    out: list[tuple[str, str]] = []
    placed = False
    for key, old in headers:
        if key.lower() != name:
            out.append((key, old))
        elif not placed:
            out.append((key, value))
            placed = True
    if not placed:
        out.append(("-".join(part.capitalize() for part in name.split("-")), value))
    return out


def cookie_text(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def response_cookies(headers: Sequence[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """(name, value) of each Set-Cookie; value "" for one that expires it (Max-Age=0)."""
    for name, header in headers:
        if name.lower() == "set-cookie":
            pair, _, attributes = header.partition(";")
            expired = "max-age=0" in attributes.lower().replace(" ", "")
            yield from ((k, "" if expired else v) for k, v in cookie_pairs(pair))


def set_path(request: PlannedRequest, values: dict[str, str]) -> str:
    """The path with parameters (by template name, or by segment index) replaced."""
    template = path_template(request.endpoint)
    segments, slots = request.path.split("/"), template.split("/")
    for key, value in values.items():
        encoded = quote(value, safe="")
        if key.isdigit() and int(key) < len(segments):
            segments[int(key)] = encoded
        elif len(slots) == len(segments) and "{" + key + "}" in slots:
            segments[slots.index("{" + key + "}")] = encoded
        elif key in request.path_params:  # a path the template does not match: by value
            old = {request.path_params[key], quote(request.path_params[key], safe="")}
            segments = [encoded if s in old else s for s in segments]
    return "/".join(segments)


def set_query(query: str | None, values: dict[str, str]) -> str:
    """The query with each of `values` set once: at its first planned place, else added."""
    out: list[tuple[str, str]] = []
    done: set[str] = set()
    for name, value in parse_qsl(query or "", keep_blank_values=True):
        if name not in values:
            out.append((name, value))
        elif name not in done:  # later copies of a replaced parameter are dropped
            out.append((name, values[name]))
            done.add(name)
    return urlencode(out + [(n, v) for n, v in values.items() if n not in done])


def is_form(headers: Sequence[tuple[str, str]]) -> bool:
    return "x-www-form-urlencoded" in (header(headers, "content-type") or "").lower()


def set_body_fields(
    body: bytes, headers: list[tuple[str, str]], fields: dict[Location, Scalar]
) -> bytes:
    """The body with existing JSON leaves / form fields replaced (its shape kept)."""
    if is_form(headers):
        form = {t.key: str(v) for t, v in fields.items() if t.where == "form"}
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        if not any(name in form for name, _ in pairs):
            return body
        return urlencode([(name, form.get(name, value)) for name, value in pairs]).encode()
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    changed = False
    for target, value in fields.items():
        if target.where == "json":
            changed = _replace_at(doc, _pointer(target.key), value) or changed
    return json.dumps(doc, ensure_ascii=False).encode() if changed else body
