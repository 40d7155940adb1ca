"""Dependent date fields: a range's two ends drawn together, not each on its own.

Two date (or datetime) fields of one object where the later one was never before the
earlier one in any request that held both (`start_date`/`end_date`, `from`/`until`) are
a range: drawn apart, the end comes before the start about half the time and an API that
checks them together answers 422. `link_ranges` replaces one of them by an `after` node:
the one whose observed values spread less is drawn as before, the other is it plus (or
minus) a gap drawn from the observed gaps' range, per value of the sibling enum that best
explains the gaps (`period=hour` spans days, `period=month` years: an API may cap the span
per period); it is present exactly when the drawn one is, when the capture never held one
without the other.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

Node = dict[str, Any]

MIN_PAIRS = 3
"""Requests holding both fields it takes to call two fields a range."""
BY_MAX_SPREAD = 0.5
"""An enum sibling explains the gaps when its per-value gap ranges cover at most this
share of the pooled range (weighted by requests)."""


def _moment(kind: str, value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        if kind == "date":
            return datetime.combine(date.fromisoformat(value), datetime.min.time())
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _gap(kind: str, start: datetime, end: datetime) -> float:
    delta = end - start
    return delta.days if kind == "date" else round(delta.total_seconds(), 3)


def _literals(node: Node) -> list[Any]:
    return list(node["v"]) if node["k"] == "enum" else [node["v"]] if node["k"] == "const" else []


def _time_kind(node: Node) -> str | None:
    """ "date" or "datetime" for a node of dates: of that kind, or an enum or constant of
    them (a range that ends today in most requests has few distinct ends)."""
    if node["k"] in ("date", "datetime"):
        return str(node["k"])
    texts = _literals(node)
    if not texts or not all(isinstance(v, str) for v in texts):
        return None
    if all(len(v) == 10 and _moment("date", v) is not None for v in texts):
        return "date"
    if all(len(v) > 10 and _moment("datetime", v) is not None for v in texts):
        return "datetime"
    return None


def _width(node: Node, kind: str) -> float:
    """How far the node's own values spread, in seconds."""
    ends = [node["min"], node["max"]] if node["k"] == kind else _literals(node)
    moments = [m for v in ends if (m := _moment(kind, v)) is not None]
    return (max(moments) - min(moments)).total_seconds() if moments else 0.0


def _spread(gaps: list[float]) -> float:
    return max(gaps) - min(gaps)


def _by_enum(
    pairs: list[tuple[dict[str, Any], float]], enums: list[str]
) -> tuple[str, dict[str, list[float]]] | None:
    """The enum sibling whose values best explain the gaps, with each value's gap range."""
    pooled = _spread([g for _, g in pairs])
    if pooled <= 0:
        return None
    best: tuple[float, str, dict[str, list[float]]] | None = None
    for key in enums:
        groups: defaultdict[str, list[float]] = defaultdict(list)
        for obj, gap in pairs:
            if key in obj:
                groups[str(obj[key])].append(gap)
        if sum(len(g) for g in groups.values()) < len(pairs) or len(groups) < 2:
            continue  # the enum must be there whenever the range is
        score = sum(len(g) * _spread(g) for g in groups.values()) / (len(pairs) * pooled)
        if score <= BY_MAX_SPREAD and (best is None or (score, key) < best[:2]):
            ranges = {v: [min(g), max(g)] for v, g in sorted(groups.items())}
            best = (score, key, ranges)
    return None if best is None else (best[1], best[2])


def link_ranges(objects: list[dict[str, Any]], fields: list[Node]) -> list[Node]:
    """`fields` (of `object_node`, one entry per key) with each range end made an `after`
    node of its start (see the module doc); unchanged when there is none."""
    kinds = {f["key"]: kind for f in fields if (kind := _time_kind(f)) is not None}
    dated = [f for f in fields if f["key"] in kinds]
    if len(dated) < 2:
        return fields
    enums = [f["key"] for f in fields if f["k"] == "enum"]
    out = {f["key"]: f for f in fields}
    anchors: set[str] = set()
    for end in dated:
        best: tuple[float, Node, list[tuple[dict[str, Any], float]]] | None = None
        for start in dated:
            kind = kinds[end["key"]]
            if start is end or kinds[start["key"]] != kind or out[start["key"]]["k"] == "after":
                continue
            pairs = []
            for obj in objects:
                a = _moment(kind, obj.get(start["key"]))
                b = _moment(kind, obj.get(end["key"]))
                if a is not None and b is not None:
                    pairs.append((obj, _gap(kind, a, b)))
            if len(pairs) < MIN_PAIRS or min(g for _, g in pairs) < 0:
                continue
            widest = max(g for _, g in pairs)
            if best is None or widest < best[0]:
                best = (widest, start, pairs)
        if best is None or end["key"] in anchors:
            continue
        _, start, pairs = best
        kind = kinds[end["key"]]
        # The field whose own values spread less is drawn; the other follows it ("the last
        # N days" up to today: the end is drawn, the start is the end minus a span).
        narrower = _width(start, kind) <= _width(end, kind)
        free, tied, sign = (start, end, 1) if narrower else (end, start, -1)
        gaps = [g for _, g in pairs]
        node: Node = {"key": tied["key"], "k": "after", "from": free["key"], "unit": kind,
                      "sign": sign, "gap": [min(gaps), max(gaps)],
                      "fmt": {k: v for k, v in tied.items() if k not in ("key", "p")}}  # fmt: skip
        if all((start["key"] in o) == (end["key"] in o) for o in objects):
            node["with"] = True
        elif "p" in tied:
            node["p"] = tied["p"]
        by = _by_enum(pairs, enums)
        if by is not None:
            node["by"], node["gaps"] = by
        out[tied["key"]] = node
        anchors.add(free["key"])
    return [out[f["key"]] for f in fields]


def render_after(
    node: Node,
    siblings: dict[str, Any],
    rng: random.Random,
    fallback: Callable[[Node], Any],
    format_datetime: Callable[[datetime, Node], str],
) -> Any:
    """The tied end of a range: its free sibling plus (or, `sign` -1, minus) a gap of its
    range (the range of the rendered enum sibling's value when it has one), or
    `fallback(fmt)` without a usable sibling."""
    fmt = node["fmt"]
    start = _moment(node["unit"], siblings.get(node["from"]))
    if start is None:
        return fallback(fmt)
    low, high = node["gap"]
    if "by" in node and str(siblings.get(node["by"])) in node["gaps"]:
        low, high = node["gaps"][str(siblings[node["by"]])]
    sign = -1 if node.get("sign") == -1 else 1
    if node["unit"] == "date":
        days = sign * rng.randint(int(low), int(high))
        return (start + timedelta(days=days)).date().isoformat()
    return format_datetime(start + timedelta(seconds=sign * rng.uniform(low, high)), fmt)
