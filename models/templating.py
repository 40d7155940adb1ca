"""Endpoint templates: concrete request paths → `METHOD /template`, learned from one trace.

`Templater.fit` learns the templates, `to_json`/`from_json` keep them in the model file, and
`endpoint`/`params` apply them to any path (of this trace or another one, for compare).

Rules, applied to the segments of a path (`path.split("/")`, query and fragment dropped):

* **Shapes.** A segment is a parameter value when (after percent-decoding) it is an integer,
  a UUID (any case), a date or timestamp (`2026-11-26`, `2026-11-26T10:00:00Z`; `20261126`
  is an integer), a hex digest (≥ 8 hex characters with a digit and a letter, or ≥ 16), an
  email (`a@b.c`, also `a%40b.c`), a tracereplay pseudonym (`anon_…`, JWT-shaped `eyJ….….…`)
  or a long token (≥ 16 characters of base64/base62 with ≥ 2 digits that is not words joined
  by `-`/`_`). Everything else looks literal: `v1`, `api`, `health`, `data-freshness`.
* **Cardinality.** Paths form a tree of segments, built over all methods. Under one
  prefix, a literal-looking child is *frequent* when it carries ≥ `frequent_min` requests and
  ≥ `frequent_share` of the requests of its literal siblings. When ≥ `min_distinct` children
  are not frequent, they are values of a parameter (slugs: `/articles/my-first-post`), merged
  with any shaped values there; frequent siblings stay literal. A few distinct words
  (`/metrics/overview|workflows|…`) stay literal, and so does `stats` beside
  `/clients/{uuid}`. The empty segment (trailing slash) is never a parameter value.
* **Names.** A parameter is named after the literal segment just before it, singularized
  (`clients/{…}` → `{client_id}`, `cache/client/{…}` → `{client_id}`); else `{id}`. A name
  used twice in one template gets a number: `{id}`, `{id2}`.
* **Exactness.** A trailing slash is kept: `/clients/` and `/clients` are two templates.
  The method is part of the endpoint. Query strings are not part of the template.
* **Applying.** A path takes the learned template it fully matches (literal segments first,
  then parameters: a shape-learned parameter takes shaped values only, a cardinality-learned
  one any non-empty value), preferring a template of the same method. A path that matches
  none follows the learned tree as far as it goes; the rest of its segments get the shape
  rules, unknown literal segments kept as they are.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracereplay.errors import ConfigError, UsageError

from .shapes import cut_path, skeleton_codes, value_kind

if TYPE_CHECKING:  # pandas loads where a model is built, not by synthesize
    import pandas as pd

__all__ = [
    "Endpoint",
    "Templater",
    "add_endpoints",
    "endpoint_codes",
    "request_endpoints",
    "value_kind",
]

DEFAULT_MIN_DISTINCT = 10
DEFAULT_FREQUENT_SHARE = 0.05
DEFAULT_FREQUENT_MIN = 3

_WORD = re.compile(r"[A-Za-z][A-Za-z_-]*")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "zes", "uses")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


def _param_base(previous: str | None) -> str:
    if previous is None or not _WORD.fullmatch(previous):
        return "id"
    return _singular(previous.lower()).replace("-", "_") + "_id"


def _template(parts: list[str | None]) -> str:
    """Join segments back into a template; None marks a parameter, named after the literal
    segment before it."""
    used: set[str] = set()
    out: list[str] = []
    for i, part in enumerate(parts):
        if part is not None:
            out.append(part)
            continue
        base = _param_base(parts[i - 1] if i > 0 else None)
        name, number = base, 2
        while name in used:
            name, number = f"{base}{number}", number + 1
        used.add(name)
        out.append("{" + name + "}")
    return "/".join(out)


def _segments(path: str) -> list[str]:
    return cut_path(path).split("/")


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: a method and a path template; `str()` reads `GET /clients/{client_id}`."""

    method: str
    template: str

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


# --- learning: a counted tree of segments ------------------------------------------------


@dataclass
class _Count:
    n: int = 0
    literals: dict[str, _Count] = field(default_factory=dict)
    param: _Count | None = None
    any_value: bool = False  # `param` takes any value, not only shaped ones

    def merge(self, other: _Count) -> None:
        self.n += other.n
        self.any_value = self.any_value or other.any_value
        for key, child in other.literals.items():
            if key in self.literals:
                self.literals[key].merge(child)
            else:
                self.literals[key] = child
        if other.param is not None:
            if self.param is None:
                self.param = other.param
            else:
                self.param.merge(other.param)


def _insert(root: _Count, segments: list[str], n: int) -> None:
    node = root
    node.n += n
    for segment in segments:
        if value_kind(segment):
            node.param = node.param or _Count()
            node = node.param
        else:
            node = node.literals.setdefault(segment, _Count())
        node.n += n


def _decide(root: _Count, min_distinct: int, frequent_share: float, frequent_min: int) -> None:
    stack = [root]
    while stack:
        node = stack.pop()
        literal_total = sum(child.n for child in node.literals.values())
        floor = max(frequent_min, frequent_share * literal_total)
        rare = sorted(k for k, child in node.literals.items() if k and child.n < floor)
        if len(rare) >= min_distinct:
            merged = node.param or _Count()
            for key in rare:
                merged.merge(node.literals.pop(key))
            node.param = merged
            node.any_value = True
        stack.extend(node.literals[k] for k in sorted(node.literals))
        if node.param is not None:
            stack.append(node.param)


def _learned_parts(root: _Count, segments: list[str]) -> tuple[list[str | None], list[bool]]:
    """The fitted tree's reading of a fitted path: literal or None (a parameter) per
    segment, and whether that parameter takes any value."""
    parts: list[str | None] = []
    any_value: list[bool] = []
    node = root
    for segment in segments:
        child = node.literals.get(segment)
        any_value.append(child is None and node.any_value)
        if child is not None:
            parts.append(segment)
            node = child
        else:
            assert node.param is not None, "every fitted segment is a literal or a parameter"
            parts.append(None)
            node = node.param
    return parts, any_value


# --- applying: a tree of learned templates -----------------------------------------------


@dataclass
class _Node:
    literals: dict[str, _Node] = field(default_factory=dict)
    param: _Node | None = None
    any_value: bool = False  # `param` takes any value, not only shaped ones
    ends: dict[str, str] = field(default_factory=dict)  # method -> template


@dataclass(frozen=True)
class _Route:
    method: str
    template: str
    any_value: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "template": self.template}
        if self.any_value:
            out["any_value"] = list(self.any_value)
        return out


class Templater:
    """Endpoint templates learned from a trace (see the module docstring for the rules)."""

    def __init__(self, routes: Iterable[_Route], options: Mapping[str, float | int]) -> None:
        self._routes = sorted(set(routes), key=lambda r: (r.template, r.method))
        self.options = dict(sorted(options.items()))
        self._root = _Node()
        for route in self._routes:
            node = self._root
            for segment in route.template.split("/"):
                match = _PARAM.fullmatch(segment)
                if match is None:
                    node = node.literals.setdefault(segment, _Node())
                else:
                    node.param = node.param or _Node()
                    node.any_value = node.any_value or match.group(1) in route.any_value
                    node = node.param
            node.ends[route.method] = route.template

    @classmethod
    def fit(cls, method_paths: Iterable[tuple[str, str]], **options: Any) -> Templater:
        """Learn the templates of these (method, path) pairs, one per request."""
        requests = Counter((str(method).upper(), str(path)) for method, path in method_paths)
        return cls.fit_counts(requests, **options)

    @classmethod
    def fit_counts(
        cls,
        requests: Mapping[tuple[str, str], int],
        *,
        min_distinct: int = DEFAULT_MIN_DISTINCT,
        frequent_share: float = DEFAULT_FREQUENT_SHARE,
        frequent_min: int = DEFAULT_FREQUENT_MIN,
    ) -> Templater:
        """Learn the templates of distinct (upper-case method, path) pairs with their request
        counts. Only whether each segment is shaped matters to the rules, so the work is
        done once per skeleton (paths with their shaped segments blanked), not per path."""
        methods, paths = [m for m, _ in requests], [p for _, p in requests]
        codes, skeletons = skeleton_codes(pa.array(paths, type=pa.string()))
        counts = np.fromiter(requests.values(), dtype=np.int64, count=len(requests))
        entries = _skeleton_entries(*_factorized(methods), codes, skeletons, counts)
        return cls.fit_skeletons(
            entries,
            min_distinct=min_distinct,
            frequent_share=frequent_share,
            frequent_min=frequent_min,
        )

    @classmethod
    def fit_skeletons(
        cls,
        requests: Iterable[tuple[str, tuple[str, ...], int]],
        *,
        min_distinct: int = DEFAULT_MIN_DISTINCT,
        frequent_share: float = DEFAULT_FREQUENT_SHARE,
        frequent_min: int = DEFAULT_FREQUENT_MIN,
    ) -> Templater:
        """`fit_counts` from (upper-case method, path skeleton, request count) entries
        (`shapes.skeleton_codes`), one or more per (method, skeleton)."""
        if min_distinct < 2:
            raise UsageError(f"min_distinct must be ≥ 2, not {min_distinct}")
        if not 0.0 <= frequent_share <= 1.0:
            raise UsageError(f"frequent_share must be within [0, 1], not {frequent_share}")
        counts: Counter[tuple[str, ...]] = Counter()
        methods: set[tuple[str, tuple[str, ...]]] = set()
        for method, skeleton, n in requests:
            counts[skeleton] += n
            methods.add((method, skeleton))
        root = _Count()
        for skeleton, n in counts.items():
            _insert(root, list(skeleton), n)
        _decide(root, min_distinct, frequent_share, frequent_min)
        routes = set()
        for method, skeleton in methods:
            parts, any_flags = _learned_parts(root, list(skeleton))
            template = _template(parts)
            labels = template.split("/")
            names = tuple(labels[i][1:-1] for i, flag in enumerate(any_flags) if flag)
            routes.add(_Route(method, template, names))
        options = {
            "min_distinct": min_distinct,
            "frequent_share": frequent_share,
            "frequent_min": frequent_min,
        }
        return cls(routes, options)

    @property
    def endpoints(self) -> list[Endpoint]:
        """The learned endpoints, sorted by template then method."""
        return [Endpoint(r.method, r.template) for r in self._routes]

    def endpoint(self, method: str, path: str) -> Endpoint:
        """The endpoint of one request; paths never seen in `fit` get one too."""
        return self._endpoint_of(method.upper(), _segments(path))

    def _endpoint_of(self, method: str, segments: list[str]) -> Endpoint:
        other_method: _Node | None = None
        for node in self._full_matches(self._root, segments, 0):
            if method in node.ends:
                return Endpoint(method, node.ends[method])
            other_method = other_method or node
        if other_method is not None:
            return Endpoint(method, min(other_method.ends.values()))
        return Endpoint(method, _template(self._partial_parts(segments)))

    def skeleton_endpoint(self, method: str, skeleton: tuple[str, ...]) -> str:
        """The endpoint name of the paths with this skeleton (`shapes.skeleton_codes`)."""
        return str(self._endpoint_of(method, list(skeleton)))

    def params(self, method: str, path: str) -> dict[str, str]:
        """Parameter name → concrete value (as it appears in the path) for one request."""
        return _path_params(self.endpoint(method, path).template, path)

    def _full_matches(self, node: _Node, segments: list[str], i: int) -> Iterator[_Node]:
        # Literal children first, so `/clients/stats` wins over `/clients/{client_id}`.
        if i == len(segments):
            if node.ends:
                yield node
            return
        segment = segments[i]
        child = node.literals.get(segment)
        if child is not None:
            yield from self._full_matches(child, segments, i + 1)
        if node.param is not None and _fits_param(node, segment):
            yield from self._full_matches(node.param, segments, i + 1)

    def _partial_parts(self, segments: list[str]) -> list[str | None]:
        parts: list[str | None] = []
        node: _Node | None = self._root
        for segment in segments:
            if node is not None:
                child = node.literals.get(segment)
                if child is not None:
                    parts.append(segment)
                    node = child
                    continue
                if node.param is not None and _fits_param(node, segment):
                    parts.append(None)
                    node = node.param
                    continue
                node = None
            parts.append(None if value_kind(segment) else segment)
        return parts

    def to_json(self) -> dict[str, Any]:
        """{"options": …, "endpoints": [{"method", "template", "any_value"?}, …]}, sorted."""
        return {
            "options": dict(self.options),
            "endpoints": [route.to_json() for route in self._routes],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Templater:
        """The templater `to_json` wrote."""
        try:
            routes = [
                _Route(
                    str(item["method"]).upper(),
                    str(item["template"]),
                    tuple(str(name) for name in item.get("any_value", ())),
                )
                for item in data["endpoints"]
            ]
            options = {str(k): v for k, v in dict(data.get("options", {})).items()}
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ConfigError(f"endpoint templates: unreadable model section ({exc!r})") from exc
        return cls(routes, options)


def path_template(endpoint: str) -> str:
    """The path template of an endpoint name `METHOD /template` (its query, if any, cut)."""
    return endpoint.partition(" ")[2].partition("?")[0]


def _path_params(template: str, path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for label, value in zip(template.split("/"), _segments(path), strict=True):
        match = _PARAM.fullmatch(label)
        if match is not None:
            out[match.group(1)] = value
    return out


def _fits_param(node: _Node, segment: str) -> bool:
    return bool(segment) and (node.any_value or value_kind(segment) is not None)


def endpoint_names(templater: Templater, methods: list[str], paths: list[str]) -> list[str]:
    """`str(templater.endpoint(method, path))` of each (upper-case method, path) pair,
    worked out once per distinct (method, skeleton)."""
    if not paths:
        return []
    codes, skeletons = skeleton_codes(pa.array(paths, type=pa.string()))
    method_codes, method_values = _factorized(methods)
    width = max(len(skeletons), 1)
    used, which = np.unique(method_codes * width + codes, return_inverse=True)
    names = [
        templater.skeleton_endpoint(method_values[k // width], skeletons[k % width])
        for k in used.tolist()
    ]
    out: list[str] = np.asarray(names, dtype=object)[which.ravel()].tolist()
    return out


def _factorized(values: list[str]) -> tuple[np.ndarray, list[str]]:
    """Codes (int64) into the distinct values, in order of first use, and those values."""
    encoded = pa.array(values, type=pa.string()).dictionary_encode()
    codes = np.asarray(encoded.indices, dtype=np.int64)
    return codes, [str(v) for v in encoded.dictionary.to_pylist()]


def _skeleton_entries(
    method_codes: np.ndarray,
    method_values: list[str],
    codes: np.ndarray,
    skeletons: list[tuple[str, ...]],
    counts: np.ndarray,
) -> list[tuple[str, tuple[str, ...], int]]:
    """`fit_skeletons`' entries of (method, path) pairs (method codes into `method_values`,
    skeleton codes, request counts): one per distinct (method, skeleton) with its summed
    count, in order of first use."""
    width = max(len(skeletons), 1)
    groups, first, group = np.unique(
        method_codes.astype(np.int64) * width + codes, return_index=True, return_inverse=True
    )
    sums = np.bincount(group.ravel(), weights=counts, minlength=len(groups)).astype(np.int64)
    return [
        (method_values[g // width], skeletons[g % width], int(sums[i]))
        for i, g in ((i, int(groups[i])) for i in np.argsort(first, kind="stable").tolist())
    ]


def pair_endpoints(
    methods: list[str],
    paths: pa.Array,
    pair_method: np.ndarray,
    pair_path: np.ndarray,
    counts: np.ndarray,
) -> tuple[Templater, np.ndarray, list[str]]:
    """The templater fitted on distinct (method, path) pairs (codes into `methods` and
    `paths`, sorted by method then path) requested `counts` times each, and each pair's
    index into the endpoint names it returns (one per distinct (method, skeleton) used:
    a name may come more than once)."""
    n_paths = len(paths)
    codes, skeletons = _path_skeletons(paths)
    applied = np.where(paths.is_null().to_numpy(False), codes[n_paths], codes[:n_paths])
    width = max(len(skeletons), 1)
    templater = Templater.fit_skeletons(
        _skeleton_entries(pair_method, methods, codes[:n_paths][pair_path], skeletons, counts)
    )
    used, which = np.unique(pair_method * width + applied[pair_path], return_inverse=True)
    names = [
        templater.skeleton_endpoint(methods[k // width], skeletons[k % width])
        for k in used.tolist()
    ]
    return templater, which.ravel(), names


def request_endpoints(
    methods: list[str], method: np.ndarray, paths: pa.Array, path: np.ndarray
) -> tuple[Templater, np.ndarray, list[str]]:
    """The templater fitted on requests given as codes (`method` into the upper-case
    `methods`, `path` into the distinct `paths`, a null path read as "None" by the fit and
    templated as "/"), and each request's endpoint code (int16 when it fits) into the
    returned names, numbered in order of first use over the sorted distinct (method, path)
    pairs. Python runs per distinct (method, skeleton) only; the requests are counted and
    coded through a table of every (method, path) cell when it is no bigger than the
    requests' codes (3.7 M cells at 10 M requests), else through a sort of them."""
    n_paths = len(paths)
    pairs, counts, per_request = _distinct_pairs(method, path, n_paths, len(methods))
    templater, which, names = pair_endpoints(
        methods, paths, pairs // n_paths, pairs % n_paths, counts
    )
    # The names numbered in order of first use over the pairs.
    name_ids, name_values = _factorized(names)
    name_of_pair = name_ids[which]
    _, first = np.unique(name_of_pair, return_index=True)  # every name has a pair
    order = np.argsort(first, kind="stable")
    kind = np.int16 if len(order) <= np.iinfo(np.int16).max else np.int32
    rank = np.empty(len(order), dtype=kind)
    rank[order] = np.arange(len(order))
    return templater, per_request(rank[name_of_pair]), [name_values[i] for i in order.tolist()]


def endpoint_codes(
    templater: Templater, methods: pd.Series, paths: pd.Series
) -> tuple[np.ndarray, list[str]]:
    """Per request, the index of its endpoint in the returned list of names; each
    distinct (method, path) is templated once."""
    import pandas as pd

    method_codes, method_values = pd.factorize(methods)
    path_codes, path_values = pd.factorize(paths)
    width = max(len(path_values), 1)
    pair_codes, pairs = pd.factorize(method_codes.astype(np.int64) * width + path_codes)
    names = endpoint_names(
        templater,
        [str(method_values[i]) for i in (pairs // width).tolist()],
        [str(path_values[i]) for i in (pairs % width).tolist()],
    )
    name_codes, distinct = pd.factorize(pd.Series(names, dtype=object))
    return np.asarray(name_codes)[pair_codes], [str(n) for n in distinct]


def add_endpoints(df: pd.DataFrame, templater: Templater, *, params: bool = True) -> pd.DataFrame:
    """A copy of `df` with an `endpoint` ("METHOD /template") column and, unless `params`
    is False, `path_params` (dict)."""
    import pandas as pd

    out = df.copy()
    methods = out["method"].fillna("").astype(str).str.upper()
    paths = out["path"].fillna("/").astype(str)
    codes, names = endpoint_codes(templater, methods, paths)
    endpoints = np.asarray(names, dtype=object)[codes]
    out["endpoint"] = pd.Series(endpoints, index=out.index, dtype=object)
    if params:
        values = [
            _path_params(name.partition(" ")[2], path)
            for name, path in zip(out["endpoint"], paths, strict=True)
        ]
        out["path_params"] = pd.Series(values, index=out.index, dtype=object)
    return out


def _path_skeletons(paths: pa.Array) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """`skeleton_codes` of `paths` with a null read as "None", then of "/": the paths'
    own strings read in place when their one null is last (as `RequestColumns.paths` has
    it), the two texts after them coded on their own and numbered on (first use, as one
    pass over them all), where a copy of every distinct path would have been made
    (real10M: 37 MiB beside the sessions' arrays at the parent's peak)."""
    n = len(paths)
    if paths.null_count != 1 or paths[n - 1].is_valid:
        texts = pa.concat_arrays([pc.fill_null(paths, "None"), pa.array(["/"], pa.string())])
        return skeleton_codes(texts)
    codes, skeletons = skeleton_codes(paths.slice(0, n - 1))
    last, more = skeleton_codes(pa.array(["None", "/"], paths.type))
    number = {skeleton: i for i, skeleton in enumerate(skeletons)}
    ids = np.array([number.setdefault(k, len(number)) for k in more], dtype=codes.dtype)
    return np.concatenate([codes, ids[last]]), list(number)


def _distinct_pairs(
    method: np.ndarray, path: np.ndarray, n_paths: int, n_methods: int
) -> tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """The sorted distinct codes `method * n_paths + path` of the requests, each one's
    request count, and what maps a value per distinct pair to one per request. Counted a
    chunk at a time into a table of every cell when it holds no more cells than there are
    requests, else by sorting the requests' pair codes."""
    cells = n_methods * n_paths
    if cells > max(len(method), DENSE_PAIR_CELLS):
        pair = method.astype(np.int64) * n_paths + path
        pairs, inverse, counts = np.unique(pair, return_inverse=True, return_counts=True)
        del pair
        return pairs, counts, lambda values: values[inverse.ravel()]
    counts = np.zeros(cells, dtype=np.int64)
    for chunk in _pair_chunks(method, path, n_paths):
        counts += np.bincount(chunk, minlength=cells)
    pairs = np.flatnonzero(counts)

    def per_request(values: np.ndarray) -> np.ndarray:
        table = np.zeros(cells, dtype=values.dtype)
        table[pairs] = values
        out = np.empty(len(method), dtype=values.dtype)
        at = 0
        for chunk in _pair_chunks(method, path, n_paths):
            np.take(table, chunk, out=out[at : at + len(chunk)])
            at += len(chunk)
        return out

    return pairs, counts[pairs], per_request


DENSE_PAIR_CELLS = 1 << 20
"""(method, path) cells always counted through a table (8 MiB of counts); past it, only
when there are no more cells than requests."""
_PAIR_CHUNK = 1 << 20


def _pair_chunks(method: np.ndarray, path: np.ndarray, n_paths: int) -> Iterator[np.ndarray]:
    """`method * n_paths + path` (intp), a chunk of requests at a time."""
    for start in range(0, len(method), _PAIR_CHUNK):
        chunk = method[start : start + _PAIR_CHUNK].astype(np.intp)
        chunk *= n_paths
        chunk += path[start : start + _PAIR_CHUNK]
        yield chunk
