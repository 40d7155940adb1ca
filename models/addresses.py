"""Where a trace's sessions came from: each session's client address (the trace's `addr`
column, else the first X-Forwarded-For address, else the session key) and how many
distinct ones there are — per frame (`session_addresses`) and over columns for every
session of a large trace (`header_addresses`, `first_addresses`). `outcomes.Outcomes`
keeps the count: the replay spreads sessions over that many source addresses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:  # pandas loads where a model is built, not by synthesize
    import pandas as pd


def session_address(row_headers: object, addr: object, session_key: str) -> tuple[str, str]:
    """(address pseudonym, where it came from) of one captured request: the trace's `addr`
    column when present, else the first X-Forwarded-For address, else the session key."""
    if isinstance(addr, str) and addr:
        return addr, "addr"
    items = row_headers.items() if isinstance(row_headers, dict) else row_headers
    if not isinstance(items, Iterable) or isinstance(items, str):
        items = ()
    for name, value in items:
        if str(name).lower() == "x-forwarded-for" and str(value).strip():
            return str(value).split(",")[0].strip(), "x-forwarded-for"
    return session_key, "session"


def session_addresses(sessions: pd.DataFrame) -> tuple[int, str | None]:
    """How many addresses the sessions of a frame come from (each session's first
    request's, see `session_address`), and where most of them were found."""
    firsts = sessions.drop_duplicates("session_id")
    addr = firsts["addr"].tolist() if "addr" in firsts.columns else [None] * len(firsts)
    texts = [a if isinstance(a, str) and a else None for a in addr]
    keys = firsts["session_key"].tolist()  # a list: not an Arrow scalar per item
    rows = zip(firsts["req_headers"], texts, keys, strict=True)
    found = {i: session_address(h, a, str(k)) for i, (h, a, k) in enumerate(rows) if a is None}
    missing = np.fromiter(found, np.int64, len(found))
    address = pa.array([a for a, _ in found.values()], pa.string())
    source = np.array([ADDRESS_SOURCES.index(s) for _, s in found.values()], np.int8)
    return first_addresses(pa.array(texts, pa.string()), missing, address, source)


ADDRESS_SOURCES = ("addr", "x-forwarded-for", "session")
"""Where `session_address` finds an address, as `header_addresses` codes them."""
_FORWARDED = "x-forwarded-for"


def header_addresses(
    headers: pa.Array | pa.ChunkedArray, keys: pa.Array, at: np.ndarray | None = None
) -> tuple[pa.Array, np.ndarray]:
    """`session_address(headers[i], None, keys[i])` for every i, over columns: the
    addresses (strings) and their sources (codes into ADDRESS_SOURCES). Python reads only
    the header entries that may be X-Forwarded-For (`_may_forward`), never a whole header
    list. `at`: the headers are those of these of `keys` only (ascending; the others hold
    no X-Forwarded-For, `may_forward`)."""
    if isinstance(headers, pa.ChunkedArray):
        headers = headers.combine_chunks() if headers.num_chunks else pa.array([], headers.type)
    if isinstance(headers.type, pa.MapType):  # as a list of entries: Arrow's list kernels
        entry = pa.struct([headers.type.key_field, headers.type.item_field])
        headers = headers.cast(pa.list_(entry))
    entries = pc.list_flatten(headers)
    names = entries.field(0)
    maybe = np.flatnonzero(_may_forward(names))
    parents = pc.list_parent_indices(headers).to_numpy()[maybe]
    found: dict[int, str] = {}
    candidates = zip(
        parents.tolist(),
        names.take(pa.array(maybe)).to_pylist(),
        entries.field(1).take(pa.array(maybe)).to_pylist(),
        strict=True,
    )
    for i, name, value in candidates:  # as session_address: the first one per request
        if i not in found and str(name).lower() == _FORWARDED and str(value).strip():
            found[i] = str(value).split(",")[0].strip()
    source = np.full(len(keys), ADDRESS_SOURCES.index("session"), np.int8)
    if not found:
        return keys, source
    if isinstance(keys, pa.DictionaryArray):
        keys = keys.dictionary.take(keys.indices)
    at_headers = np.fromiter(found, np.int64, len(found))  # ascending, as the entries
    here = at_headers if at is None else np.asarray(at, np.int64)[at_headers]
    source[here] = ADDRESS_SOURCES.index(_FORWARDED)
    mask = np.zeros(len(keys), bool)
    mask[here] = True
    replaced = pa.array([found[i] for i in sorted(found)], pa.string())
    return pc.replace_with_mask(keys, pa.array(mask), replaced), source


def may_forward(names: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The positions of the requests (ascending) whose header names (lists of strings,
    `source.KEYS`) hold one that may be X-Forwarded-For (`_may_forward`): the only ones
    whose header values `header_addresses` needs."""
    if isinstance(names, pa.ChunkedArray):
        names = names.combine_chunks() if names.num_chunks else pa.array([], names.type)
    maybe = _may_forward(pc.list_flatten(names))
    parents = pc.list_parent_indices(names).to_numpy()[maybe]  # ascending, as the entries
    first = np.ones(len(parents), bool)
    np.not_equal(parents[1:], parents[:-1], out=first[1:])
    return np.asarray(parents[first])


def _may_forward(names: pa.Array) -> np.ndarray:
    """Per header name, whether it may be X-Forwarded-For: its name in any case, any name
    that is not ASCII (Python's `lower` is the judge), a null."""
    maybe = pc.or_(pc.equal(pc.utf8_lower(names), _FORWARDED), pc.invert(pc.string_is_ascii(names)))
    return np.asarray(pc.fill_null(maybe, True).to_numpy(False))


def first_addresses(
    addr: pa.Array | pa.ChunkedArray, missing: np.ndarray, address: pa.Array, source: np.ndarray
) -> tuple[int, str | None]:
    """`session_addresses` over columns, for every session of a trace: `addr` of each
    session's first request (in session order); `missing`, the positions whose `addr` is
    empty (ascending), `address` and `source` what `session_address` gives them
    (`header_addresses`). The count is Arrow's. Source ties go to the one seen first."""
    kept = np.ones(len(addr), bool)
    kept[missing] = False
    present = addr.filter(pa.array(kept))
    count = _count_distinct(present, address)
    seen: dict[str, tuple[int, int]] = {}  # source: (sessions, first position)
    if len(present):
        seen["addr"] = (len(present), int(np.argmax(kept)))
    for code in np.unique(source).tolist():
        at = np.flatnonzero(source == code)
        seen[ADDRESS_SOURCES[code]] = (len(at), int(missing[at[0]]))
    where = min(seen, key=lambda source: (-seen[source][0], seen[source][1])) if seen else None
    return count, where


def _count_distinct(present: pa.Array | pa.ChunkedArray, address: pa.Array) -> int:
    """Distinct strings among `present` and `address` (nulls not counted). `address` may
    be dictionary-encoded (e.g. session keys as codes into the trace's sorted keys): when
    its dictionary is strictly increasing, so distinct, and `present` empty, the count is
    the number of distinct codes, no string hashed (real10M's 1 M session keys: 0.2-0.35
    s as `unique` of the strings)."""
    if isinstance(address, pa.DictionaryArray):
        if not len(present) and not address.null_count and _strictly_rising(address.dictionary):
            used = np.zeros(len(address.dictionary), bool)
            used[address.indices.to_numpy(False)] = True
            return int(np.count_nonzero(used))
        address = address.dictionary.take(address.indices)
    chunks = present.chunks if isinstance(present, pa.ChunkedArray) else [present]
    # Arrow's count_distinct, as the length of `unique` less a null (half the time on
    # 1 M session keys: 0.25 against 0.55 s).
    distinct = pc.unique(pa.chunked_array([*chunks, address], pa.string()))
    return int(len(distinct) - distinct.null_count)


def _strictly_rising(strings: pa.Array) -> bool:
    if len(strings) < 2:
        return True
    rising = pc.less(strings.slice(0, len(strings) - 1), strings.slice(1))
    return bool(pc.all(pc.fill_null(rising, False)).as_py())
