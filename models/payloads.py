"""Request body and query-string models of one endpoint, and their rendering.

`infer_body` / `infer_query` learn a tree of field kinds (see `payload_fields`); `render`
draws fresh, seeded values: faker for personal data, fresh pseudonym shapes for ids.
"""

from __future__ import annotations

import copy
import json
import random
import re
import string
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from tracereplay.errors import ConfigError

from .payload_fields import ALPHABETS, Node, field_node, lengths, most_common, object_node, sig
from .payload_ranges import render_after
from .values import query_pairs

if TYPE_CHECKING:  # faker draws values where payloads are rendered (synthesize), not learned
    import faker

JSON_MEDIA = "application/json"
FORM_MEDIA = "application/x-www-form-urlencoded"
TEXT_MEDIA = "text/plain"
_FORM = re.compile(r"^[\w.\-\[\]%+]+=[^&=]*(&[\w.\-\[\]%+]+=[^&=]*)*$")
_INT_TEXT = re.compile(r"^-?(0|[1-9]\d{0,17})$")
_FLOAT_TEXT = re.compile(r"^-?\d+\.\d+$")


# --- rendering ----------------------------------------------------------------------


def _render_text(node: Node, rng: random.Random, fake: faker.Faker) -> str:
    length = rng.randint(node["min"], node["max"])
    if node.get("style") == "digits":
        return "".join(rng.choices(string.digits, k=length))
    words = node.get("style") == "words"
    out = ""
    while len(out) < length:
        out += fake.sentence() + " " if words else fake.word()
    out = out[:length]
    return out[:-1] + "." if out.endswith(" ") else out


def _render_datetime(node: Node, rng: random.Random) -> str:
    low, high = datetime.fromisoformat(node["min"]), datetime.fromisoformat(node["max"])
    return _format_datetime(low + (high - low) * rng.random(), node)


def _format_datetime(moment: datetime, node: Node) -> str:
    text = moment.isoformat(sep=str(node.get("sep", "T")), timespec=str(node["prec"]))
    return text + str(node["tz"])


def _render_date(node: Node, rng: random.Random) -> str:
    low, high = date.fromisoformat(node["min"]), date.fromisoformat(node["max"])
    return (low + timedelta(days=rng.randint(0, (high - low).days))).isoformat()


def _chars(rng: random.Random, abc: str, length: int) -> str:
    return "".join(rng.choices(ALPHABETS[abc], k=max(length, 0)))


def _render_object(node: Node, rng: random.Random, fake: faker.Faker) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ends = []
    for entry in node["fields"]:
        if entry.get("with") or "p" not in entry or rng.random() < entry["p"]:
            if entry["k"] == "after":  # a range end (payload_ranges) waits for its start
                ends.append(entry)
                out[entry["key"]] = None  # its place in the order
            else:
                out[entry["key"]] = _render(entry, rng, fake)
    for entry in ends:
        if entry.get("with") and entry["from"] not in out:
            del out[entry["key"]]
        else:
            out[entry["key"]] = render_after(
                entry, out, rng, lambda fmt: _render(fmt, rng, fake), _format_datetime
            )
    return out


_Renderer = Callable[[Node, random.Random, "faker.Faker"], Any]
_NAME_PARTS: dict[str, Callable[[faker.Faker], str]] = {
    "full": lambda f: f.name(),
    "first": lambda f: f.first_name(),
    "last": lambda f: f.last_name(),
    "user": lambda f: f.user_name(),
}
_RENDERERS: dict[str, _Renderer] = {
    "const": lambda n, r, f: copy.deepcopy(n["v"]),
    "null": lambda n, r, f: None,
    "bool": lambda n, r, f: r.random() < n["true"],
    "int": lambda n, r, f: r.randint(n["min"], n["max"]),
    "float": lambda n, r, f: round(r.uniform(n["min"], n["max"]), n["dp"]),
    "enum": lambda n, r, f: r.choices(n["v"], weights=n["w"])[0],
    "text": _render_text,
    "email": lambda n, r, f: f.email(),
    "name": lambda n, r, f: _NAME_PARTS[n.get("part", "full")](f),
    "phone": lambda n, r, f: f.phone_number(),
    "company": lambda n, r, f: f.company(),
    "url": lambda n, r, f: f.url(schemes=[n.get("scheme", "https")]),
    "uuid": lambda n, r, f: str(uuid.UUID(int=r.getrandbits(128), version=4)),
    "date": lambda n, r, f: _render_date(n, r),
    "datetime": lambda n, r, f: _render_datetime(n, r),
    "token": lambda n, r, f: (
        n["prefix"] + _chars(r, n["abc"], r.randint(n["min"], n["max"]) - len(n["prefix"]))
    ),
    "jwt": lambda n, r, f: ".".join(
        [n["head"], _chars(r, "b64", r.randint(*n["body"])), _chars(r, "b64", r.randint(*n["sig"]))]
    ),
    "obj": _render_object,
    "arr": lambda n, r, f: (
        [_render(n["item"], r, f) for _ in range(r.randint(n["min"], n["max"]))]
        if "item" in n
        else []
    ),
    "mix": lambda n, r, f: _render(r.choices(n["of"], weights=n["w"])[0], r, f),
    "after": lambda n, r, f: _render(n["fmt"], r, f),  # outside an object: no start to follow
}


def _render(node: Node, rng: random.Random, fake: faker.Faker) -> Any:
    return _RENDERERS[node["k"]](node, rng, fake)


_PARAMS = {
    "const": ("v",),
    "bool": ("true",),
    "int": ("min", "max"),
    "float": ("min", "max", "dp"),
    "enum": ("v", "w"),
    "text": ("min", "max"),
    "date": ("min", "max"),
    "datetime": ("min", "max", "tz", "prec"),
    "token": ("prefix", "abc", "min", "max"),
    "jwt": ("head", "body", "sig"),
    "obj": ("fields",),
    "arr": ("min", "max"),
    "mix": ("w", "of"),
    "after": ("from", "unit", "gap", "fmt"),
}


def _check(node: Any, where: str) -> None:
    """Reject a stored tree that `render` could not walk (a hand-edited model file)."""
    if not isinstance(node, dict) or node.get("k") not in _RENDERERS:
        kind = node.get("k") if isinstance(node, dict) else node
        raise ConfigError(f"{where}: unknown payload kind {kind!r}")
    missing = [p for p in _PARAMS.get(node["k"], ()) if p not in node]
    if missing:
        raise ConfigError(f"{where}: a {node['k']!r} node lacks {', '.join(missing)}")
    children = [*node.get("fields", ()), *node.get("of", ())]
    if node["k"] == "after":
        _check_after(node, where)
        children.append(node["fmt"])
    for child in [*children, node["item"]] if "item" in node else children:
        _check(child, where)


def _check_after(node: Node, where: str) -> None:
    ranges = [node["gap"], *(node.get("gaps") or {}).values()]
    if "by" in node and not isinstance(node.get("gaps"), dict):
        raise ConfigError(f"{where}: an 'after' node with 'by' lacks its 'gaps'")
    for pair in ranges:
        ok = isinstance(pair, list) and len(pair) == 2
        if not ok or not all(isinstance(x, int | float) for x in pair) or pair[0] > pair[1]:
            raise ConfigError(f"{where}: an 'after' gap must be [low, high], got {pair!r}")
    fmt_kinds = (node["unit"], "enum", "const")
    if node["unit"] not in ("date", "datetime") or node["fmt"].get("k") not in fmt_kinds:
        raise ConfigError(f"{where}: an 'after' node of unit {node['unit']!r}")


# --- forms and query strings ---------------------------------------------------------


def _coerce(text: str) -> Any:
    """A query or form value as the JSON scalar it spells, so numbers get ranges."""
    if not text or not (text[0] == "-" or text[0].isdecimal()):  # no number: no regex
        return text == "true" if text in ("true", "false") else text
    return _coerce_read(text)


def _coerce_read(text: str) -> Any:
    """`_coerce` by its patterns (what a value that may be a number takes)."""
    if text in ("true", "false"):
        return text == "true"
    if _INT_TEXT.match(text):
        return int(text)
    if _FLOAT_TEXT.match(text):
        return float(text)
    return text


def _spell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _pairs_to_objects(pair_lists: list[list[tuple[str, str]]]) -> list[dict[str, Any]]:
    # A name repeated within one string (a=1&a=2) is a list everywhere it occurs.
    repeated = _repeated_names(pair_lists)
    objects = []
    coerced: dict[str, Any] = {}  # values repeat (page=1): each coerced once
    for pairs in pair_lists:
        obj: dict[str, Any] = {}
        for name, text in pairs:
            value = coerced.get(text, coerced)
            if value is coerced:
                value = coerced[text] = _coerce(text)
            if name in repeated:
                obj.setdefault(name, []).append(value)
            else:
                obj.setdefault(name, value)
        objects.append(obj)
    return objects


def _repeated_names(pair_lists: list[list[tuple[str, str]]]) -> set[str]:
    """The names some one list holds twice or more: counted only in a list whose names
    are not all distinct (a Counter per list was ~0.1 s of real1M's 13.5 k query strings)."""
    repeated: set[str] = set()
    for pairs in pair_lists:
        if len(pairs) > 1:
            names = [k for k, _ in pairs]
            if len(set(names)) < len(names):
                repeated.update(k for k, n in Counter(names).items() if n > 1)
    return repeated


def _urlencode(obj: dict[str, Any]) -> str:
    pairs = [
        (name, _spell(item))
        for name, value in obj.items()
        for item in (value if isinstance(value, list) else [value])
    ]
    return urlencode(pairs)


# --- the models ------------------------------------------------------------------------


@dataclass(frozen=True)
class BodyModel:
    """An endpoint's request body generator. `presence` is the share of its requests
    that carried a body; `render` always makes one, the caller decides whether to send it."""

    media_type: str
    root: Node
    presence: float = 1.0
    n: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "media": self.media_type,
            "n": self.n,
            "p": self.presence,
            "root": copy.deepcopy(self.root),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BodyModel:
        try:
            model = cls(
                str(d["media"]), dict(d["root"]), float(d.get("p", 1.0)), int(d.get("n", 0))
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"body model: missing or bad field ({exc})") from exc
        _check(model.root, "body model")
        return model

    def render(self, rng: random.Random, fake: faker.Faker) -> bytes:
        value = _render(self.root, rng, fake)
        if self.root["k"] == "obj" and self.media_type == FORM_MEDIA:
            return _urlencode(value).encode()
        if isinstance(value, str) and not self.media_type.endswith("json"):
            return value.encode()
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class QueryModel:
    """An endpoint's query-string generator; `presence` as in `BodyModel`."""

    root: Node
    presence: float = 1.0
    n: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "p": self.presence, "root": copy.deepcopy(self.root)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> QueryModel:
        try:
            model = cls(dict(d["root"]), float(d.get("p", 1.0)), int(d.get("n", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"query model: missing or bad field ({exc})") from exc
        _check(model.root, "query model")
        if model.root["k"] != "obj":
            raise ConfigError("query model: the root must be an 'obj'")
        return model

    def render(self, rng: random.Random, fake: faker.Faker) -> str:
        return _urlencode(_render(self.root, rng, fake))


def _media(content_type: str | None) -> str | None:
    if not isinstance(content_type, str):
        return None
    return content_type.split(";")[0].strip().lower() or None


def _no_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; accepting them would make ranges order-dependent.
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)
"""What `json.loads(text, parse_constant=_no_constant)` makes anew for every body."""


def _json_loads(text: str) -> Any:
    """`json.loads(text, parse_constant=_no_constant)` through one decoder (a new one per
    body was ~5 % of payload inference), its check for a byte order mark kept."""
    if text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _DECODER.decode(text)


def _classify(body: bytes, declared: str | None) -> tuple[str, Any]:
    """("json" | "form" | "text", parsed value), ("bad", None) for a body that does not
    parse as what it declares, ("bin", None) for binary."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "bin", None
    if declared is None or declared.endswith("json"):
        try:
            return "json", _json_loads(text)
        except ValueError:
            if declared is not None:
                return "bad", None
    if declared == FORM_MEDIA or (declared is None and _FORM.match(text)):
        return "form", query_pairs(text)
    if declared is not None and not declared.startswith("text/") and "xml" not in declared:
        return "bin", None
    return "text", text


_DEFAULT_MEDIA = {"json": JSON_MEDIA, "form": FORM_MEDIA, "text": TEXT_MEDIA}


Parsed = dict[tuple[bytes, str | None], tuple[str, Any]]
"""Bodies classified (`_classify`) by (body, declared media): what `infer_body` reads of
a body it has met before (a sample repeats bodies; the half check reads half again)."""


def infer_body(
    bodies: Sequence[bytes | None],
    content_types: Sequence[str | None] | None = None,
    parsed: Parsed | None = None,
) -> BodyModel | None:
    """The body generator of one endpoint from its requests' bodies (None or b"" when a
    request had none) and, optionally, their Content-Type values. None when no request
    carried a body, or the bodies are binary. The majority kind (JSON, form, text) wins;
    bodies of another kind, and invalid JSON, are left out. `parsed`: bodies classified
    before, added to as bodies are met."""
    if content_types is not None and len(content_types) != len(bodies):
        raise ValueError("bodies and content_types differ in length")
    types = content_types if content_types is not None else [None] * len(bodies)
    by_kind: defaultdict[str, list[tuple[Any, str | None]]] = defaultdict(list)
    media_of: dict[str, str | None] = {}  # each Content-Type's media, made once
    for body, content_type in zip(bodies, types, strict=True):
        if body is None:  # (most requests of a sample: no body)
            continue
        if isinstance(body, bytes | bytearray | memoryview) and len(body):
            declared = media_of.get(content_type) if type(content_type) is str else None
            if declared is None:
                declared = _media(content_type)
                if type(content_type) is str:
                    media_of[content_type] = declared
            kind, value = _classified(
                body if type(body) is bytes else bytes(body), declared, parsed
            )
            by_kind[kind].append((value, declared))
    usable = [k for k in ("json", "form", "text") if by_kind[k]]
    if not usable:
        return None
    kind = max(usable, key=lambda k: len(by_kind[k]))  # ties: the earlier (json) wins
    values = [v for v, _ in by_kind[kind]]
    declared_types = Counter(d for _, d in by_kind[kind] if d)
    media = most_common(declared_types) if declared_types else _DEFAULT_MEDIA[kind]
    if kind == "form":
        root = object_node(_pairs_to_objects(values))
    elif kind == "text":
        root = {"k": "text", **lengths(values), "style": "words"}
    else:
        root = field_node("", values)
    return BodyModel(media, root, sig(len(values) / len(bodies), 3), len(values))


def _classified(body: bytes, declared: str | None, parsed: Parsed | None) -> tuple[str, Any]:
    """`_classify`, through `parsed` when given (the parsed value shared: the models
    only read it)."""
    if parsed is None:
        return _classify(body, declared)
    found = parsed.get((body, declared))
    if found is None:
        found = parsed[(body, declared)] = _classify(body, declared)
    return found


def infer_query(
    queries: Sequence[str | None], split: dict[str, list[tuple[str, str]]] | None = None
) -> QueryModel | None:
    """The query-string generator of one endpoint (None, NaN or "" when a request had
    no query). None when no request had one. `split`: query strings' pairs made before,
    added to (the lists shared: only read)."""
    texts = [q.lstrip("?") for q in queries if isinstance(q, str) and q.lstrip("?")]
    if not texts:
        return None
    if split is None:
        pair_lists = [query_pairs(q) for q in texts]
    else:
        pair_lists = []
        for q in texts:
            pairs = split.get(q)
            if pairs is None:
                pairs = split[q] = query_pairs(q)
            pair_lists.append(pairs)
    objects = _pairs_to_objects(pair_lists)
    return QueryModel(object_node(objects), sig(len(texts) / len(queries), 3), len(texts))
