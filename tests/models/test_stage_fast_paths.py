"""The fast paths of the payloads and correlations stages give what the plain code gave:
each against a reference written the plain way (the code before issue 15's pay16), on
random inputs and the edge cases (empty, one, ties, nulls, unsorted)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tracereplay.models import arrival_gaps as gap_classes
from tracereplay.models import payload_fields as fields
from tracereplay.models.addresses import first_addresses
from tracereplay.models.arrivals import fit_arrivals
from tracereplay.models.correlations import NO_AUTH
from tracereplay.models.endpoints import EndpointRows
from tracereplay.models.outcomes import carries_basic, session_facts
from tracereplay.models.payloads import _coerce, _coerce_read
from tracereplay.models.session_sample import part_ranks, sample_sessions, session_keys
from tracereplay.models.values import (
    Location,
    _eligible,
    _parsed_values,
    json_leaves,
    query_pairs,
)

# ---- session sample: the order by (first part's rank, key) -----------------------------


def _order_before(session_id: np.ndarray, keys: np.ndarray, part: Any, parts: int) -> np.ndarray:
    """session_sample._order as it was: a lexsort of (part rank, key), by key alone."""
    if parts < 2 or part is None:
        return np.argsort(keys, kind="stable")
    first = np.full(len(keys), parts, dtype=np.int64)
    np.minimum.at(first, session_id, np.asarray(part, dtype=np.int64))
    return np.lexsort((keys, np.r_[part_ranks(parts, 0), parts][first]))  # none: last


@pytest.mark.parametrize("shuffled", [False, True])
@pytest.mark.parametrize("parts", [0, 1, 7])
@pytest.mark.parametrize(("sessions", "per_sample"), [(3_000, 300), (12_000, 300),
                                                      (12_000, 6_000)])  # fmt: skip
def test_the_sample_is_the_one_the_lexsort_took(
    shuffled: bool, parts: int, sessions: int, per_sample: int
) -> None:
    """Of more sessions than the quota's first look (4,096) ranks, the rare endpoints'
    sessions past them are ranked on their own: the same sessions as with every rank."""
    rng = np.random.default_rng(parts + 10 * shuffled + sessions)
    lengths = rng.integers(1, 9, sessions)
    lengths[rng.random(sessions) < 0.01] = 0  # ids without requests
    sid = np.repeat(np.arange(len(lengths)), lengths).astype(np.int32)
    endpoint = rng.integers(0, 12, len(sid)).astype(np.int8)
    endpoint[rng.random(len(sid)) < 0.002] = 12  # a rare endpoint: the quota reads on
    endpoint[rng.random(len(sid)) < 0.0005] = 13
    endpoint[rng.choice(len(sid), 4, replace=False)] = 14  # under the quota: every one read
    part = np.sort(rng.integers(0, parts, len(sid))) if parts else None
    if shuffled:
        order = rng.permutation(len(sid))
        sid, endpoint = sid[order], endpoint[order]
        part = None if part is None else part[order]
    sample = sample_sessions(sid, endpoint, per_sample=per_sample, per_endpoint=5, part=part)
    # the sessions the quota adds, from the reference order
    keys = session_keys(int(sid.max()) + 1, 0)
    reference = _order_before(sid, keys, part, parts)
    rank = np.empty(len(keys), np.int64)
    rank[reference] = np.arange(len(keys))
    chosen = rank < per_sample
    for e in range(15):
        ranks = np.unique(rank[sid[endpoint == e]])[:5]
        chosen[reference[ranks]] = True
    assert np.array_equal(sample.chosen, chosen)


def test_unsigned_session_ids_give_the_sample_signed_ones_give() -> None:
    """Ids in no order, each session's requests in several parts: unsigned ids must not
    pass for ordered ones (their differences wrap around)."""
    rng = np.random.default_rng(1)
    sid = rng.integers(0, 500, 5_000)
    endpoint, part = rng.integers(0, 20, len(sid)), rng.integers(0, 7, len(sid))
    signed, unsigned = (
        sample_sessions(ids, endpoint, per_sample=50, per_endpoint=3, seed=3, part=part)
        for ids in (sid.astype(np.int64), sid.astype(np.uint32))
    )
    assert np.array_equal(signed.chosen, unsigned.chosen)


def test_keys_never_tie_so_a_quicksort_is_the_stable_order() -> None:
    keys = session_keys(200_000, 7)
    assert len(np.unique(keys)) == len(keys)
    assert np.array_equal(np.argsort(keys), np.argsort(keys, kind="stable"))


# ---- arrivals: sorted starts are not sorted again ----------------------------------------


def test_arrivals_of_shuffled_and_sorted_starts_are_the_same() -> None:
    rng = np.random.default_rng(3)
    starts = np.sort(rng.random(20_000) * 3_600)
    starts[[5, 6, 7]] = starts[5]  # ties
    shuffled = rng.permutation(starts)
    with_outside = np.concatenate([shuffled, [np.nan, -1.0, 4_000.0]])
    model = fit_arrivals(starts, 3_600.0)
    assert fit_arrivals(shuffled, 3_600.0) == model
    assert fit_arrivals(with_outside, 3_600.0) == model
    assert fit_arrivals(np.zeros(0), 3_600.0) == fit_arrivals([], 3_600.0)
    assert fit_arrivals([1.0], 3_600.0).sessions == 1


# ---- payload field kinds on distinct values ---------------------------------------------


def _share_before(values: list[str], test: Any) -> float:
    return sum(1 for v in values if test(v)) / len(values)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "b1", "", "x@y.io", "5551234567", "c"]), min_size=1),
       st.sampled_from([0.5, 0.9, 1.0]))  # fmt: skip
def test_a_share_is_reached_as_the_share_of_all_values(values: list[str], share: float) -> None:
    seen = fields._Seen(values)
    for test in (str.isdigit, fields._EMAIL.match, fields._is_phone, bool):
        assert seen.share_at_least(test, share) == (_share_before(values, test) >= share)


_STRINGS = st.one_of(
    st.sampled_from(["3f2b6c1e-9a4d-4b8e-8f0a-1c2d3e4f5a6b", "ana@example.org", "+1 555 0100 22",
                     "2024-01-02", "2024-01-02T03:04:05Z", "2024-01-02 03:04:05.120+00:00",
                     "tok_8d9aa0b1c2d3e4f5", "Acme Inc", "Jane Doe", "https://x.io/a", "ok",
                     "eyJhbGciOi.eyJzdWIiOi.c2ln", "0123456789abcdef01", "a b c", "12345"]),
    st.text(max_size=12),
)  # fmt: skip


def _string_node_before(key: str, values: list[str]) -> dict[str, Any]:
    """`_string_node` with its detectors run on every value (the code before)."""
    seen = _EverySeen(values)
    node = fields._identity_node(key, seen)  # type: ignore[arg-type]
    if node is not None:
        return node
    short = all(len(v) <= fields.MAX_LITERAL_CHARS for v in values)
    prose = values[0].count(" ") >= 2
    if short and len(set(values)) == 1 and (len(values) > 1 or not prose):
        return {"k": "const", "v": values[0]}
    counts = Counter(values)
    if short and fields._is_enum(counts, len(values)):
        return fields._enum_node(counts, len(values))
    node = fields._shaped_node(seen)  # type: ignore[arg-type]
    if node is not None:
        return node
    spaced = any(" " in v for v in values)
    style = "words" if spaced else "digits" if all(map(str.isdigit, values)) else "word"
    return {"k": "text", **fields.lengths(values), "style": style}


class _EverySeen(fields._Seen):
    """`_Seen` that tests every value, repeats included, and never stops early."""

    def __init__(self, values: list[str]) -> None:
        super().__init__(values)
        self.values = values
        self.counts = Counter(dict.fromkeys(values, 1))  # each value, as iterated, once

    def __iter__(self) -> Any:
        return iter(self.values)

    def share_at_least(self, test: Any, share: float) -> bool:
        return _share_before(self.values, test) >= share

    def tally(self, of: Any) -> Counter[str]:
        return Counter(of(v) for v in self.values)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["id", "phone", "company", "name", "when"]),
       st.lists(_STRINGS, min_size=1, max_size=30))  # fmt: skip
def test_string_kinds_on_distinct_values_are_the_kinds_of_every_value(
    key: str, values: list[str]
) -> None:
    try:
        expected = _string_node_before(key, values)
    except StopIteration:  # a token of no alphabet: both fail alike
        with pytest.raises(StopIteration):
            fields._string_node(key, values)
        return
    assert fields._string_node(key, values) == expected


def test_a_field_of_many_repeats_gets_its_enum_and_weights() -> None:
    values = ["open"] * 60 + ["closed"] * 30 + ["held"] * 10
    assert fields.field_node("state", values) == {
        "k": "enum", "v": ["closed", "held", "open"], "w": [0.3, 0.1, 0.6]
    }  # fmt: skip
    assert fields.field_node("n", [1, 1.0, 2] * 5)["k"] == "enum"


@settings(max_examples=2_000, deadline=None)
@given(st.one_of(st.text(alphabet="-0123456789.١٢ truefalsx\n", max_size=8), st.text(max_size=5)))
@example("١.٢")  # a non-ASCII digit first: a float to the pattern
@example("12")
@example("")
@example("true")
def test_a_query_value_is_coerced_as_the_regexes_said(text: str) -> None:
    got, expected = _coerce(text), _coerce_read(text)  # the patterns alone: as before
    assert got == expected and type(got) is type(expected)


@settings(max_examples=2_000, deadline=None)
@given(st.text(alphabet="ab=&%+;20 é", max_size=20))
def test_query_pairs_are_parse_qsl_with_blank_values(query: str) -> None:
    assert query_pairs(query) == parse_qsl(query, keep_blank_values=True)


# ---- correlation values -----------------------------------------------------------------

_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=False),
              st.sampled_from(["2024-01-02", "abcdefgh", "-12345", "1234", "x", "a/b~c", ""])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(["id", "a/b", "t~", "n"]), inner,
                                            max_size=4)),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(_JSON, st.sampled_from([1, 6, 10]))
def test_a_bodys_values_are_its_eligible_json_leaves(doc: Any, min_len: int) -> None:
    body = json.dumps(doc).encode()
    expected = _eligible(((Location("json", p), v) for p, v in json_leaves(doc)), min_len)
    assert _parsed_values(body, min_len) == expected
    assert _parsed_values(b"", min_len) == _parsed_values(None, min_len) == []


def test_a_location_compares_hashes_and_prints_as_before() -> None:
    a, b = Location("json", "/a"), Location("header", "x-id")
    assert sorted([a, b]) == [b, a] and hash(a) == hash(("json", "/a"))
    assert repr(a) == "Location(where='json', key='/a')" and a.to_json() == {
        "where": "json", "key": "/a"
    }  # fmt: skip
    assert Location.from_json(a.to_json()) == a and {a: 1}[Location("json", "/a")] == 1


# ---- addresses: counted over codes ------------------------------------------------------


@pytest.mark.parametrize(
    ("dictionary", "codes", "present"),
    [
        (["k1", "k2", "k3"], [0, 2, 2, 0], []),  # sorted keys, repeats
        (["k3", "k1", "k2"], [0, 1, 1], []),  # not sorted: counted as strings
        (["k1", "k1", "k2"], [0, 1, 2], []),  # a repeated key
        (["k1", "k2"], [0, 1], ["k1", "a9"]),  # addresses beside keys
        (["k1"], [], []),  # empty
        (["k1"], [0], []),  # one
    ],
)
def test_addresses_over_codes_count_as_over_strings(
    dictionary: list[str], codes: list[int], present: list[str]
) -> None:
    strings = pa.array(dictionary, pa.string()).take(pa.array(codes, pa.int32()))
    encoded = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(dictionary))
    addr = pa.array(present + [None] * len(codes), pa.string())
    missing = np.arange(len(present), len(present) + len(codes))
    source = np.full(len(codes), 2, np.int8)
    expected = first_addresses(addr, missing, strings, source)
    assert first_addresses(addr, missing, encoded, source) == expected
    assert expected[0] == len(set(present) | {dictionary[c] for c in codes})
    assert pc.count_distinct(strings).as_py() <= expected[0]


# ---- requests grouped by endpoint: 16-bit ranks -------------------------------------------


@pytest.mark.parametrize(("requests", "endpoints"), [(0, 1), (1, 1), (5_000, 7), (3_000, 70_000)])
def test_requests_are_grouped_as_by_a_stable_sort_of_the_name_ranks(
    requests: int, endpoints: int
) -> None:
    rng = np.random.default_rng(requests + endpoints)
    names = [f"GET /e{i}" for i in rng.permutation(endpoints)]
    endpoint = rng.integers(0, endpoints, requests).astype(np.int32)
    endpoint[: min(requests, endpoints)] = np.arange(min(requests, endpoints))
    groups = EndpointRows.of(endpoint, names)
    by_name = sorted(range(endpoints), key=names.__getitem__)
    rank = np.empty(endpoints, np.int64)
    rank[by_name] = np.arange(endpoints)
    assert groups.names == sorted(names)
    assert np.array_equal(groups.order, np.argsort(rank[endpoint], kind="stable"))
    counts = np.bincount(rank[endpoint], minlength=endpoints)
    assert np.array_equal(groups.bounds, np.r_[0, np.cumsum(counts)])


# ---- outcomes: each request's Basic credential judged once --------------------------------

_HEADERS = [
    [("Authorization", "Basic dXNlcg==")], [("authorization", " basic eA==")],
    [("Authorization", "Bearer tok")], [("Accept", "*/*")], [], None, "Authorization: Basic x",
    {"AUTHORIZATION": "Basic eQ=="}, {"accept": "x"}, (("authorization", "Basic zz"),),
]  # fmt: skip


@pytest.mark.parametrize("seed", range(4))
def test_basic_credentials_give_the_outcomes_a_plain_walk_gives(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = 400
    frame = pd.DataFrame({
        "session_id": rng.integers(0, 60, rows),  # rows in no session order
        "endpoint": rng.choice(["GET /a", "GET /b", "POST /c"], rows),
        "status": rng.choice([200, 401, 403], rows),
        "req_headers": [_HEADERS[i] for i in rng.integers(0, len(_HEADERS), rows)],
        "resp_body": [None] * rows,
        "session_key": [f"k{i}" for i in range(rows)],
    })  # fmt: skip
    frame["seq"] = frame.groupby("session_id").cumcount()
    facts = session_facts(frame, NO_AUTH)
    assert facts is not None
    plain = [carries_basic(h) for h in frame["req_headers"]]
    share = pd.Series(plain).groupby(frame["endpoint"]).mean()
    assert facts.known.basic_auth == tuple(sorted(share[share >= 0.5].index))
    for outcome, (_, group) in zip(facts.per_session, frame.groupby("session_id"), strict=True):
        basic = group["status"][[plain[i] for i in group.index]].tolist()
        assert outcome.login == (None if not basic else
                                 "failed" if all(s == 401 for s in basic) else "ok")  # fmt: skip
    assert facts.paths == [g["endpoint"].tolist() for _, g in frame.groupby("session_id")]
    assert [carries_basic(h) for h in _HEADERS] == [True, True, False, False, False, False,
                                                   False, True, False, True]  # fmt: skip


# ---- arrivals: the gap quantiles' rate classes judged per bucket ---------------------------


def _gap_quantiles_before(gaps: np.ndarray, rates: np.ndarray) -> Any:
    """arrival_gaps.fit_gap_quantiles as it was: a rate per gap, sorted by `np.unique`."""
    keep = gaps > 0
    z = gaps[keep]
    if len(z) < gap_classes.MIN_GAPS:
        return None
    distinct, inverse = np.unique(rates[keep], return_inverse=True)
    r = np.array([gap_classes._sig(float(v), gap_classes.RATE_DIGITS) for v in distinct])[inverse]
    for classes in range(min(4, max(1, len(z) // gap_classes.GAPS_PER_CLASS)), 0, -1):
        cuts = np.quantile(r, np.arange(1, classes) / classes)
        edges = np.unique([gap_classes._sig(float(c), gap_classes.RATE_DIGITS) for c in cuts])
        which = np.searchsorted(edges, r, side="right")
        if len(edges) == classes - 1 and np.bincount(which).min() >= gap_classes.MIN_GAPS:
            break
    quantiles = [np.quantile(z[which == k] / z[which == k].mean(), np.linspace(0, 1, 101))
                 for k in range(len(edges) + 1)]  # fmt: skip
    return gap_classes.GapQuantiles(
        tuple(float(e) for e in edges),
        tuple(tuple(gap_classes._sig(float(v)) for v in q) for q in quantiles),
    )


@pytest.mark.parametrize("sessions", [0, 25, 900, 6_000, 40_000])
def test_gap_quantiles_are_the_ones_a_rate_per_gap_gave(sessions: int) -> None:
    rng = np.random.default_rng(sessions)
    span = 7_200.0
    starts = np.sort(rng.uniform(0, span, sessions) ** 1.3 / span**0.3)  # rates that vary
    starts[1:6] = starts[1] if sessions > 6 else starts[1:6]  # zero gaps
    model = fit_arrivals(starts, span)
    rates = np.asarray(model.rates_per_s) if sessions else np.zeros(1)
    if sessions:  # the fitted rates, unrounded
        edges = np.arange(len(rates)) * model.bucket_s
        counts = np.bincount(np.minimum((starts // model.bucket_s).astype(int), len(rates) - 1),
                             minlength=len(rates))  # fmt: skip
        rates = counts / (np.minimum(edges + model.bucket_s, span) - edges)
    bucket = np.minimum((starts[:-1] // model.bucket_s).astype(np.int64), len(rates) - 1)
    gaps = np.diff(starts) * rates[bucket] if sessions > 1 else np.zeros(0)
    assert model.gap_quantiles == _gap_quantiles_before(gaps, rates[bucket])
    assert gap_classes.fit_gap_quantiles(gaps, rates[bucket]) == model.gap_quantiles
