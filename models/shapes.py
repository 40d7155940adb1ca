"""Shapes of path segments: which segments are parameter values (an integer, a UUID, a
date, a hex digest, an email, a token), one segment at a time (`value_kind`) or for a whole
Arrow array of paths at once (`path_skeletons`, `skeleton_codes`), with the same answers.

The vectorized form runs the shape rules as RE2 patterns inside Arrow on the segments a
pattern reads exactly as Python's `re` does (printable ASCII without `%`); the other
segments (percent-encoded, spaces, non-ASCII) and the few token candidates go through
`value_kind` itself, so both forms agree on every input (tests/models/test_templating.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_INT = re.compile(r"[0-9]+")
_HEX = re.compile(r"[0-9a-f]{8,}", re.I)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}\S*)?", re.I)
_EMAIL = re.compile(r"[^@\s/]+@[^@\s/]+\.[^@\s/]+")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_TOKEN = re.compile(r"[A-Za-z0-9_\-.~=]{16,}")
_TOKEN_SEPARATORS = re.compile(r"[-_.~=]")
_PSEUDONYM_PREFIX = "anon_"

VALUE = "/"
"""Stands for a shaped segment in a skeleton: no segment of a path can be "/"."""


@lru_cache(maxsize=4096)  # literal segments (`api`, `v1`) recur on every request
def value_kind(segment: str) -> str | None:
    """The shape of a path segment that is a parameter value (int, uuid, date, hex, email,
    token), or None when it looks like a literal word."""
    if not segment:
        return None
    if segment == VALUE:
        return "value"
    text = unquote(segment) if "%" in segment else segment
    return next((kind for kind, test in _KINDS if test(text)), None)


def _has_digit_and_letter(text: str) -> bool:
    return any(c.isdigit() for c in text) and any(c.isalpha() for c in text)


def _is_token(text: str) -> bool:
    if not _TOKEN.fullmatch(text) or sum(c.isdigit() for c in text) < 2:
        return False
    # `refresh-cache-v2`, `2fa-setup-step-12`: words, numbers and short tags joined by
    # separators are names, not credentials; a random token has long mixed parts.
    parts = [p for p in _TOKEN_SEPARATORS.split(text) if p]
    return not all(p.isalpha() or p.isdigit() or len(p) <= 3 for p in parts)


def _is_pseudonym(text: str) -> bool:
    prefixed = text.startswith(_PSEUDONYM_PREFIX) and len(text) > len(_PSEUDONYM_PREFIX)
    return prefixed or _JWT.fullmatch(text) is not None


# In order: `20261126` is an int before it could be hex; a UUID is hex-like too.
_KINDS: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("int", lambda t: _INT.fullmatch(t) is not None),
    ("uuid", lambda t: _UUID.fullmatch(t) is not None),
    ("date", lambda t: _DATE.fullmatch(t) is not None),
    ("hex", lambda t: _HEX.fullmatch(t) is not None and (len(t) >= 16 or _has_digit_and_letter(t))),
    ("email", lambda t: _EMAIL.fullmatch(t) is not None),
    ("token", lambda t: _is_pseudonym(t) or _is_token(t)),
)

# The same rules as RE2 patterns, valid on printable ASCII without `%` (where `\S` is any
# character and `re.I` is an ASCII case fold). The token rule's "not words joined by
# separators" part is left to `value_kind` for the segments that reach it.
_PLAIN = r"^[!-$&-~]+$"
_RE2_SHAPED = (
    r"^[0-9]+$",
    r"^(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[Tt][0-9]{2}:[0-9]{2}.*)?$",
    r"^[0-9a-fA-F]{16,}$",
    r"^[^@/]+@[^@/]+\.[^@/]+$",
    r"^anon_.",
    r"^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$",
)


def _whole(pattern: str) -> str:
    """An anchored `_RE2_SHAPED` pattern as a group that matches a whole segment (`(?i)`
    as the group's flag; `anon_.`, a prefix, followed by anything)."""
    if pattern.startswith("^(?i)"):
        return "(?i:" + pattern[5:-1] + ")"
    return pattern[1:-1] if pattern.endswith("$") else pattern[1:] + ".*"


# One pattern for them all: one pass of RE2's automaton over each segment, not seven (the
# segments it is asked about are printable ASCII: `.` reads any character).
_RE2_ANY_SHAPED = "^(?:" + "|".join(_whole(p) for p in _RE2_SHAPED) + ")$"
_RE2_HEX8 = r"^[0-9a-fA-F]{8,}$"
_RE2_TOKEN = r"^[A-Za-z0-9_.~=-]{16,}$"  # noqa: S105 (a pattern, not a password)


def _matches(segments: pa.Array, pattern: str) -> np.ndarray:
    return np.asarray(pc.match_substring_regex(segments, pattern), dtype=bool)


def shaped(segments: pa.Array) -> np.ndarray:
    """Per segment (a string array without nulls), whether `value_kind` gives it a kind."""
    out = np.zeros(len(segments), dtype=bool)
    if not len(segments):
        return out
    plain = _matches(segments, _PLAIN)
    out = _matches(segments, _RE2_ANY_SHAPED)
    out &= plain
    # The other rules only where those patterns said no (most segments of a large trace
    # are ids they shape: real10M, 28 of 420 k segments left).
    rest = np.flatnonzero(plain & ~out)
    left = segments.take(pa.array(rest))
    # Whether a segment has a digit, a letter, two digits: one match each (Arrow's
    # counting of regex matches took 1.3 s on real10M's 420 k segments, these 0.07 s).
    digit = _matches(left, "[0-9]")
    hexed = _matches(left, _RE2_HEX8) & digit & _matches(left, "[A-Za-z]")
    out[rest] = hexed
    token = _matches(left, _RE2_TOKEN) & _matches(left, "[0-9][^0-9]*[0-9]")
    # Token candidates and every segment the patterns cannot read go through Python.
    slow = np.concatenate([np.flatnonzero(~plain), rest[~hexed & token]])
    for i in slow.tolist():
        out[i] = value_kind(segments[i].as_py()) is not None
    return out


def cut_path(path: str) -> str:
    """The path part a template reads: query and fragment dropped, "" read as "/"."""
    return path.split("?", 1)[0].split("#", 1)[0] or "/"


def cut_paths(paths: pa.Array) -> pa.Array:
    """`cut_path` of each path (strings, no nulls), in Arrow; `paths` itself when no path
    is empty and none holds a "?" or "#" (looked for in the strings' bytes at once: the
    pattern over real10M's 0.65 M distinct paths took 0.10 s, the look 0.01 s)."""
    if not len(paths):
        return paths
    if paths.type != pa.string() or any((_text(paths) == c).any() for c in b"?#"):
        paths = pc.replace_substring_regex(paths, r"(?s)[?#].*", "")
    elif pc.min(pc.binary_length(paths)).as_py() > 0:
        return paths
    return pc.if_else(pc.equal(paths, ""), "/", paths)


def _text(strings: pa.Array) -> np.ndarray:
    """The bytes of these strings (a slice's own), one after the other."""
    _, offsets, data = strings.buffers()
    if data is None:
        return np.zeros(0, dtype=np.uint8)
    at = np.frombuffer(offsets, dtype=np.int32)[strings.offset : strings.offset + len(strings) + 1]
    return np.frombuffer(data, dtype=np.uint8)[at[0] : at[-1]]


def path_skeletons(paths: pa.Array) -> list[tuple[str, ...]]:
    """Per path (distinct strings, no nulls), its segments with every shaped segment
    replaced by VALUE: paths with one skeleton get one endpoint and one tree reading."""
    codes, skeletons = skeleton_codes(paths)
    return [skeletons[c] for c in codes.tolist()]


SKELETON_CHUNK_PATHS = 1 << 16
"""Paths `skeleton_codes` works on at a time: Arrow's arrays of their segments (split,
dictionary, flags, joins) for 64 k paths, not for all (real10M's 645 k distinct paths:
190 → 73 MB at the pool's peak, beside the sessions' arrays; bench/README.md, sess17)."""


def skeleton_codes(
    paths: pa.Array, chunk: int = SKELETON_CHUNK_PATHS
) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """Per path (strings, no nulls), the index (int64) of its skeleton (see
    `path_skeletons`) in the returned list of distinct skeletons, numbered in order of
    first use; Python runs once per distinct skeleton and per distinct segment the
    patterns cannot read, not per path. `chunk` paths at a time, numbered as one pass
    over them all would number them."""
    if len(paths) <= chunk:
        return _skeleton_codes(paths)
    number: dict[tuple[str, ...], int] = {}
    codes = np.empty(len(paths), dtype=np.int64)
    for start in range(0, len(paths), chunk):
        part, skeletons = _skeleton_codes(paths.slice(start, chunk))
        # (a chunk's skeletons come in its order of first use: the new ones too)
        ids = np.array([number.setdefault(k, len(number)) for k in skeletons], np.int64)
        codes[start : start + len(part)] = ids[part]
    return codes, list(number)


def _skeleton_codes(paths: pa.Array) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """`skeleton_codes` of these paths in one pass."""
    if not len(paths):
        return np.zeros(0, dtype=np.int64), []
    lists = pc.split_pattern(cut_paths(paths), "/")
    return split_skeleton_codes(lists, pc.dictionary_encode(lists.flatten()))


def split_skeleton_codes(
    lists: pa.ListArray, encoded: pa.DictionaryArray
) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """`skeleton_codes` of paths already cut and split into their segments (`lists`), the
    segments dictionary-encoded (`encoded`: of `lists.flatten()`)."""
    if not len(lists):
        return np.zeros(0, dtype=np.int64), []
    is_value = pa.array(shaped(encoded.dictionary))
    # A path's key: its shaped flags, "|", its segments joined by "/" with the shaped ones
    # emptied. Segments hold no "/", so the key gives the skeleton back.
    flags = pc.if_else(is_value, "1", "0").take(encoded.indices)
    words = pc.if_else(is_value, "", encoded.dictionary).take(encoded.indices)
    offsets = lists.offsets
    key = pc.binary_join_element_wise(
        pc.binary_join(pa.ListArray.from_arrays(offsets, flags), ""),
        pc.binary_join(pa.ListArray.from_arrays(offsets, words), "/"),
        "|",
    )
    keys = pc.dictionary_encode(key)
    skeletons = []
    for text in keys.dictionary.to_pylist():
        marks, _, joined = text.partition("|")
        segments = joined.split("/")
        skeletons.append(
            tuple(VALUE if m == "1" else w for m, w in zip(marks, segments, strict=True))
        )
    return keys.indices.to_numpy(zero_copy_only=False).astype(np.int64), skeletons
