"""Field kinds of request payloads: a tree of value generators learned from examples.

`field_node` turns all the values one field took into a `Node` (kind and parameters,
stored as is in the model file); `payloads` renders these trees and owns the models.
"""

from __future__ import annotations

import re
import string
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from fractions import Fraction
from typing import Any

from .payload_ranges import link_ranges

Node = dict[str, Any]
"""One value's generator as it is stored: `{"k": kind, ...parameters}`."""

# A string or number field is an enum when it shows at most ENUM_MAX_VALUES distinct
# values and the chance that its next value is one not seen yet is small: a vocabulary,
# not a sample of an open set. That chance is Good-Turing's estimate, the share of the
# observations whose value was seen only once; at most ENUM_MAX_UNSEEN. (It holds for
# every field whose values are seen twice on average, the rule before, and also for a
# few values seen a few times: `status` = success, error, error.) Longer strings are
# never enums nor constants (the file stays readable).
ENUM_MAX_VALUES = 16
ENUM_MAX_UNSEEN = 0.5
MAX_LITERAL_CHARS = 120
# Share of a field's values that a detector (email, uuid, date, ...) must match.
KIND_SHARE = 0.9


_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_JWT = re.compile(r"^(eyJ[\w-]+)\.([\w-]+)\.([\w-]*)$")
_PREFIXED = re.compile(r"^([A-Za-z]{2,10}_)(?=[\w-]*\d)[\w-]{12,}$")
_OPAQUE = re.compile(r"^((?=.*[a-f])[0-9a-f]{16,}|(?=.*\d)(?=.*[a-z])(?=.*[A-Z])[\w-]{16,})$")
_PHONE = re.compile(r"^\+?[\d(][\d\s().x-]{5,}\d$")
_NUMBER_TEXT = re.compile(r"^-?\d+(\.\d+)?$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_URL = re.compile(r"^https?://[^\s/$.?#]\S*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_COMPANY = re.compile(
    r"^[A-Z][\w'-]*( [A-Z][\w'-]*)*(,? (Inc|LLC|Ltd|PLC|Group|Corp|GmbH)\.?| and Sons)$"
    r"|^[A-Z][a-z']+-[A-Z][a-z']+$|^[A-Z][a-z']+, [A-Z][a-z']+ and [A-Z][a-z']+$"
)
_PERSON = re.compile(r"^[A-Z][\w'.-]*( [A-Z][\w'.-]*){0,3}$")

# Field names (lowercase, alphanumerics only) that say what a string holds.
_NAME_KEYS = {
    **dict.fromkeys(("name", "fullname", "displayname", "contactname", "author"), "full"),
    **dict.fromkeys(("firstname", "givenname"), "first"),
    **dict.fromkeys(("lastname", "surname", "familyname"), "last"),
    "username": "user",
}
_COMPANY_KEYS = {"company", "companyname", "organization", "organisation", "org", "employer"}
_PHONE_KEYS = ("phone", "mobile", "tel", "fax")
ALPHABETS = {
    "hex": "0123456789abcdef",
    "b62": string.ascii_letters + string.digits,
    "b64": string.ascii_letters + string.digits + "-_",
}


def sig(x: float, digits: int = 4) -> float:
    """`x` rounded to `digits` significant digits, so the model file is stable."""
    return float(f"{x:.{digits}g}")


def _norm(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


class _Seen:
    """One string field's values as its distinct values (first seen first) with their
    counts: every detector tests a distinct value once, and stops as soon as the share it
    needs is out of reach (real1M's payload sample: 3x fewer regex matches)."""

    def __init__(self, values: Sequence[str]) -> None:
        self.counts = Counter(values)
        self.n = len(values)

    def __iter__(self) -> Iterator[str]:
        return iter(self.counts)

    def share_at_least(self, test: Callable[[str], object], share: float) -> bool:
        """`share` of the values or more pass `test` (as the share of all values)."""
        misses = 0
        for value, count in self.counts.items():
            if not test(value):
                misses += count
                if (self.n - misses) / self.n < share:  # the most the share can still be
                    return False
        return True

    def mostly(self, pattern: re.Pattern[str]) -> bool:
        return self.share_at_least(pattern.match, KIND_SHARE)

    def tally(self, of: Callable[[str], str]) -> Counter[str]:
        """How many values give each `of(value)`."""
        out: Counter[str] = Counter()
        for value, count in self.counts.items():
            out[of(value)] += count
        return out


def _is_phone(value: str) -> bool:
    # The pattern first: it fails fast on most strings; counting digits does not.
    if _PHONE.match(value) is None or not 7 <= sum(map(str.isdigit, value)) <= 18:
        return False
    return not any(p.match(value) for p in (_NUMBER_TEXT, _IPV4, _DATE, _DATETIME))


def lengths(values: Iterable[str]) -> dict[str, int]:
    sizes = [len(v) for v in values]
    return {"min": min(sizes), "max": max(sizes)}


def most_common(counts: Counter[str]) -> str:
    """The most common item, ties broken alphabetically (order-free)."""
    return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def _first_group(pattern: re.Pattern[str], value: str) -> str:
    """The pattern's first group in `value`, "" when it does not match."""
    found = pattern.match(value)
    return "" if found is None else str(found.group(1))


def _token_node(seen: _Seen) -> Node:
    prefix = most_common(seen.tally(lambda v: _first_group(_PREFIXED, v)))
    chars = set("".join(v.removeprefix(prefix) for v in seen))
    abc = next(name for name, alpha in ALPHABETS.items() if chars <= set(alpha))
    return {"k": "token", "prefix": prefix, "abc": abc, **lengths(seen)}


def _jwt_node(seen: _Seen) -> Node:
    parts = [m.groups() for v in seen if (m := _JWT.match(v))]
    body = [len(p[1]) for p in parts]
    tail = [len(p[2]) for p in parts]
    heads = seen.tally(lambda v: _first_group(_JWT, v))
    heads.pop("", None)  # a value that is no JWT has no head
    return {
        "k": "jwt",
        "head": most_common(heads),
        "body": [min(body), max(body)],
        "sig": [min(tail), max(tail)],
    }


def _identity_node(key: str, seen: _Seen) -> Node | None:  # noqa: PLR0911 (a cascade)
    """Identifiers, pseudonyms and personal data: always rendered fresh, never as the
    observed values. The first detector that matches wins; strict shapes come first."""
    norm = _norm(key)
    if seen.mostly(_UUID):
        return {"k": "uuid"}
    if seen.mostly(_JWT):
        return _jwt_node(seen)
    if seen.mostly(_EMAIL):
        return {"k": "email"}
    if seen.share_at_least(_is_phone, KIND_SHARE) or (
        any(h in norm for h in _PHONE_KEYS) and seen.share_at_least(str.isdigit, KIND_SHARE)
    ):
        return {"k": "phone"}
    if seen.share_at_least(_COMPANY.match, 0.5) or (norm in _COMPANY_KEYS and seen.mostly(_PERSON)):
        return {"k": "company"}
    if norm in _NAME_KEYS and seen.mostly(_PERSON):
        return {"k": "name", "part": _NAME_KEYS[norm]}
    if seen.mostly(_PREFIXED):
        return _token_node(seen)
    return None


def _time_node(seen: _Seen) -> Node | None:
    if seen.mostly(_DATE):
        days = sorted(d for v in seen if (d := _parse(date.fromisoformat, v)) is not None)
        if not days:
            return None
        return {"k": "date", "min": days[0].isoformat(), "max": days[-1].isoformat()}
    if not seen.mostly(_DATETIME):
        return None
    times = [(v, t) for v in seen if (t := _parse(datetime.fromisoformat, v)) is not None]
    if not times:
        return None
    naive = sorted(t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t for _, t in times)
    tz: Counter[str] = Counter()
    sep: Counter[str] = Counter()
    for v, t in times:
        tz["Z" if v.endswith("Z") else "+00:00" if t.tzinfo else ""] += seen.counts[v]
        sep[v[10]] += seen.counts[v]
    micro = any(t.microsecond % 1000 for _, t in times)
    prec = (
        "microseconds"
        if micro
        else "milliseconds"
        if any(t.microsecond for _, t in times)
        else "seconds"
    )
    return {
        "k": "datetime",
        "min": naive[0].isoformat(timespec=prec),
        "max": naive[-1].isoformat(timespec=prec),
        "tz": most_common(tz),
        "prec": prec,
        "sep": most_common(sep),
    }


def _parse(parse: Callable[[str], Any], value: str) -> Any:
    try:
        return parse(value)
    except ValueError:
        return None


def _is_enum(counts: Counter[Any], n: int) -> bool:
    """Of `n` values counted in `counts`."""
    if not 2 <= len(counts) <= ENUM_MAX_VALUES:
        return False
    seen_once = sum(1 for k in counts.values() if k == 1)
    return seen_once <= ENUM_MAX_UNSEEN * n


def _enum_node(counts: Counter[Any], n: int) -> Node:
    keys = sorted(counts, key=lambda v: (v, repr(v)))
    return {"k": "enum", "v": keys, "w": [sig(counts[v] / n, 3) for v in keys]}


def _shaped_node(seen: _Seen) -> Node | None:
    """Strings of a recognisable shape that is not an identity: times, opaque ids, URLs."""
    node = _time_node(seen)
    if node is None and seen.mostly(_OPAQUE):
        node = _token_node(seen)
    if node is None and seen.mostly(_URL):
        node = {"k": "url", "scheme": most_common(seen.tally(lambda v: v.split(":")[0]))}
    return node


def _string_node(key: str, values: list[str]) -> Node:
    seen = _Seen(values)
    node = _identity_node(key, seen)
    if node is not None:
        return node
    short = all(len(v) <= MAX_LITERAL_CHARS for v in seen)
    # One distinct value is a constant, unless it is prose seen once: a single note
    # says nothing about the next one.
    prose = values[0].count(" ") >= 2
    if short and len(seen.counts) == 1 and (len(values) > 1 or not prose):
        return {"k": "const", "v": values[0]}
    if short and _is_enum(seen.counts, seen.n):
        return _enum_node(seen.counts, seen.n)
    node = _shaped_node(seen)
    if node is not None:
        return node
    spaced = any(" " in v for v in seen)
    style = "words" if spaced else "digits" if all(map(str.isdigit, seen)) else "word"
    return {"k": "text", **lengths(seen), "style": style}


def _number_node(values: list[int | float]) -> Node:
    if not all(isinstance(v, int) for v in values):
        values = [float(v) for v in values]  # 1 and 1.0 alike, whichever came first
    counts = Counter(values)
    if len(counts) == 1:
        return {"k": "const", "v": values[0]}
    if _is_enum(counts, len(values)):
        return _enum_node(counts, len(values))
    if all(isinstance(v, int) for v in values):
        return {"k": "int", "min": min(values), "max": max(values)}
    # Decimal places as written (repr), capped: floats keep their observed precision.
    dp = max(
        len(r.split(".")[1]) if "." in (r := repr(float(v))) and "e" not in r else 6 for v in values
    )
    return {
        "k": "float",
        "min": sig(min(values), 6),
        "max": sig(max(values), 6),
        "dp": min(dp, 6),
    }


def object_node(objects: list[dict[str, Any]]) -> Node:
    # Fields ordered by their mean position (exact fractions), so the order does not
    # depend on which body came first.
    position: Counter[str] = Counter()
    values: defaultdict[str, list[Any]] = defaultdict(list)
    for obj in objects:
        for i, (name, value) in enumerate(obj.items()):
            position[name] += i
            values[name].append(value)
    names = sorted(values, key=lambda n: (Fraction(position[n], len(values[n])), n))
    fields: list[Node] = []
    for name in names:
        entry: Node = {"key": name}
        if len(values[name]) < len(objects):
            entry["p"] = sig(len(values[name]) / len(objects), 3)
        fields.append(entry | field_node(name, values[name]))
    return {"k": "obj", "fields": link_ranges(objects, fields)}


def _array_node(key: str, arrays: list[list[Any]]) -> Node:
    lens = [len(a) for a in arrays]
    node: Node = {"k": "arr", "min": min(lens), "max": max(lens)}
    items = [item for a in arrays for item in a]
    if items:
        node["item"] = field_node(key, items)
    return node


_TYPE_ORDER = ("null", "bool", "num", "str", "obj", "arr")


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "num"
    if isinstance(value, str):
        return "str"
    return "obj" if isinstance(value, dict) else "arr"


def _bool_node(values: list[bool]) -> Node:
    if len(set(values)) == 1:
        return {"k": "const", "v": values[0]}
    return {"k": "bool", "true": sig(sum(values) / len(values), 3)}


_TYPED: dict[str, Callable[[str, list[Any]], Node]] = {
    "null": lambda key, values: {"k": "null"},
    "bool": lambda key, values: _bool_node(values),
    "num": lambda key, values: _number_node(values),
    "str": _string_node,
    "obj": lambda key, values: object_node(values),
    "arr": _array_node,
}


_TYPE_NAMES: dict[type, str] = {type(None): "null", bool: "bool", int: "num", float: "num",
                                str: "str", dict: "obj", list: "arr"}  # fmt: skip
"""`_type_of` of the types JSON parsing gives, looked up (a field's every value)."""


def field_node(key: str, values: list[Any]) -> Node:
    """The generator of one field from all its observed values (at least one)."""
    groups: defaultdict[str, list[Any]] = defaultdict(list)
    names = _TYPE_NAMES
    for value in values:
        groups[names.get(type(value)) or _type_of(value)].append(value)
    kinds = [k for k in _TYPE_ORDER if k in groups]
    if len(kinds) == 1:
        return _TYPED[kinds[0]](key, values)
    return {
        "k": "mix",
        "w": [sig(len(groups[k]) / len(values), 3) for k in kinds],
        "of": [_TYPED[k](key, groups[k]) for k in kinds],
    }
