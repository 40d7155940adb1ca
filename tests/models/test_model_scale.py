"""The columnar model build gives the answers of the per-row one (issue 15, item 6): the
whole model against the base commit's code on a staging capture, and each columnar piece
against the per-row function it replaces."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import T0, make_record, make_table, write_trace
from tests.models.pandas_sessions import session_frame
from tracereplay.errors import TraceCorruptError
from tracereplay.models import synthesize as synthesize_module
from tracereplay.models.addresses import (
    ADDRESS_SOURCES,
    first_addresses,
    header_addresses,
    session_address,
    session_addresses,
)
from tracereplay.models.behaviors import choose_clusters, fit_behaviors, transition_features
from tracereplay.models.frame import (
    LIGHT_COLUMNS,
    load_requests,
    read_request_columns,
    requests_frame,
    session_stats_by_timeout,
    sessionize_requests,
)
from tracereplay.models.model import build_model, model_json
from tracereplay.models.params import param_kind
from tracereplay.models.sessions import session_stats, sessionize
from tracereplay.models.shapes import cut_path, cut_paths
from tracereplay.models.source import ParquetSource
from tracereplay.models.synthesize import synthesize
from tracereplay.trace import read_trace

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "bench_model.py"


def bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_model", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_model"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_model_equals_the_base_commits_on_a_staging_capture(staging_trace: Path) -> None:
    if not (REPO / ".git").exists():
        pytest.skip("needs the git history (the base commit's code is the reference)")
    done = subprocess.run(
        [sys.executable, str(BENCH), "equal", "--trace", str(staging_trace)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    report = json.loads(done.stdout)
    assert report["differences"] == [] and done.returncode == 0, done.stdout + done.stderr


def _model() -> dict[str, Any]:
    behavior = {"name": "b1", "share": 0.6, "entry": {"GET /a": 1.0},
                "transitions": {"GET /a": {"END": 0.5, "GET /a": 0.5}}}  # fmt: skip
    return {
        "templates": {"endpoints": []}, "correlations": [], "auth": {},
        "sessions": {"length": {"p50": 3.0}},
        "arrivals": {}, "behaviors": [behavior, {**behavior, "name": "b2", "share": 0.4}],
        "endpoints": {"GET /a": {"count": 10, "share": 1.0, "body": None, "query": None}},
        "provenance": {"rows": 10, "sessions": 2, "first_ts": "x", "span_s": 1.0,
                       "source": "capture", "policy_hash": "h",
                       "sampling": {"payloads": {"per_endpoint": 5}}},
    }  # fmt: skip


def test_the_equality_check_sees_each_kind_of_difference() -> None:
    differences = bench_module().differences
    assert differences(_model(), _model()) == []
    cases = {
        "share": lambda m: m["behaviors"][0].update(share=0.62),
        "from GET /a": lambda m: m["behaviors"][1]["transitions"]["GET /a"].update(END=0.52),
        "correlations": lambda m: m["correlations"].append({"support": 2}),
        "endpoint GET /a": lambda m: m["endpoints"]["GET /a"].update(share=0.9),
        "behaviors": lambda m: m["behaviors"].pop(),
        "sessions": lambda m: m["sessions"]["length"].update(p50=4.0),
    }
    for what, change in cases.items():
        other = copy.deepcopy(_model())
        change(other)
        found = differences(_model(), other)
        assert found and what in " ".join(found), (what, found)
    # Within the bounds (1 pp of share, 0.01 of a probability), and payloads of a sampled
    # endpoint (10 requests > 5 per endpoint) may differ.
    near = copy.deepcopy(_model())
    near["behaviors"][0]["share"] = 0.605
    near["endpoints"]["GET /a"]["body"] = {"k": "obj"}
    near["sessions"]["length"]["p99"] = 9.0  # keys issue 11 added
    near["sessions"]["requests"] = {"bucket_s": 1.0, "counts": [10]}
    assert differences(_model(), near) == []


def test_request_columns_match_the_pandas_frame(tmp_path: Path) -> None:
    records = [
        make_record(ts=T0 + timedelta(seconds=(i * 7) % 11), session=s, client=c, method=m,
                    path=p, status=st, duration_ms=d)
        for i, (s, c, m, p, st, d) in enumerate([
            ("s2", "c1", "get", "/b", 200, 3.0), (None, "c9", "POST", "/a", None, None),
            ("", "c2", "GET", "/b", 404, 1.5), ("s1", "c1", "Get", "/c?x=1", 200, 2.0),
            ("s2", "c1", "GET", "/a", 500, 9.0), (None, None, "GET", "/a", 200, 1.0),
        ])
    ]  # fmt: skip
    write_trace(tmp_path / "t", records)
    df = load_requests(tmp_path / "t")
    source = ParquetSource.open(tmp_path / "t")
    cols = read_request_columns(source.batches(LIGHT_COLUMNS), source="t")
    assert np.array_equal(cols.t_s, df["t_s"].to_numpy(float))
    assert [cols.keys[k] for k in cols.key] == df["session_key"].tolist()
    assert [cols.methods[m] for m in cols.method] == df["method"].tolist()
    assert cols.paths.take(cols.path).to_pylist() == df["path"].tolist()
    assert np.array_equal(cols.status, df["status"].to_numpy(float), equal_nan=True)
    assert np.array_equal(cols.duration_ms, df["duration_ms"].to_numpy(float), equal_nan=True)
    assert sorted(cols.keys) == cols.keys
    for chosen in ([4, 0, 2, 5], [5, 1]):  # most rows (one read), a few (batch by batch)
        picked = source.rows(cols.row[chosen], ["path", "method"])
        assert picked["path"].to_pylist() == df["path"].iloc[chosen].tolist()


def test_sampled_rows_are_checked_in_full(tmp_path: Path) -> None:
    """`rows` checks only the rows it keeps: a path that is not UTF-8 is a one-line
    TraceCorruptError when its row is read, and costs nothing when it is not."""
    records = [make_record(ts=T0 + timedelta(seconds=i), path=f"/p/{i}") for i in range(8)]
    table = make_table(records)
    paths = pa.array([f"/p/{i}".encode() for i in range(7)] + [b"/p/\xff"]).view(pa.string())
    column = table.schema.get_field_index("path")
    table = table.set_column(column, table.schema.field(column), paths)
    (tmp_path / "t").mkdir()
    pq.write_table(table, tmp_path / "t" / "part-000001.parquet")
    source = ParquetSource.open(tmp_path / "t")
    assert source.rows(np.array([2, 0]), ["path"])["path"].to_pylist() == ["/p/2", "/p/0"]
    with pytest.raises(TraceCorruptError, match="damaged and cannot be read"):
        source.rows(np.array([7]), ["path"])


def test_sampled_clustering_keeps_the_shares() -> None:
    rng = np.random.default_rng(5)
    shapes = [["/a", "/b", "/a", "/b"], ["/x", "/y", "/y", "/z"], ["/a", "/x"]]
    picks = rng.choice(3, size=3000, p=[0.5, 0.35, 0.15])
    paths = [shapes[k] + ["/b"] * int(rng.integers(0, 3)) for k in picks]
    features, _ = transition_features(paths)
    whole = choose_clusters(features, sample=len(paths))
    sampled = choose_clusters(features, sample=300)
    shares = [sorted(np.bincount(labels) / len(paths)) for labels in (whole, sampled)]
    assert len(shares[0]) == len(shares[1]) >= 3
    assert np.allclose(shares[0], shares[1], atol=0.01)


def test_fit_behaviors_on_a_sample_reports_like_the_whole() -> None:
    rows = [(f"s{i}", i * 10.0 + j, p) for i in range(600)
            for j, p in enumerate(["/a", "/b", "/a"] if i % 3 else ["/x", "/y"])]  # fmt: skip
    frame = pd.DataFrame(
        {
            "session_key": [r[0] for r in rows],
            "t_s": [r[1] for r in rows],
            "endpoint": ["GET " + r[2] for r in rows],
        }
    )
    sessions = sessionize(frame)
    whole = [b.to_json() for b in fit_behaviors(sessions, sample=10_000)]
    sampled = [b.to_json() for b in fit_behaviors(sessions, sample=100)]
    assert whole == sampled and len(whole) == 2


def test_model_is_byte_identical_and_reports_its_sample(tmp_path: Path) -> None:
    json_type = (("content-type", "application/json"),)
    records = [
        make_record(ts=T0 + timedelta(seconds=i), session=f"s{i // 5}", method="POST",
                    path=f"/items/{i}", req_headers=json_type,
                    req_body=json.dumps({"n": i, "tag": f"t{i % 3}"}).encode())
        for i in range(300)
    ]  # fmt: skip
    write_trace(tmp_path / "t", records)
    a = build_model(tmp_path / "t", payload_sample=40)
    b = build_model(tmp_path / "t", payload_sample=40)
    assert model_json(a) == model_json(b)
    note = a["provenance"]["sampling"]["payloads"]
    assert note["read"] == 40 and note["requests"] == 300 and note["endpoints_sampled"] == 1
    assert 0 < note["fields_same_on_half"] <= note["fields_sampled"]
    whole = build_model(tmp_path / "t", payload_sample=1000)
    body = whole["endpoints"]["POST /items/{item_id}"]["body"]
    assert body["n"] == 300 and a["endpoints"]["POST /items/{item_id}"]["body"]["n"] == 40
    assert whole["provenance"]["sampling"]["payloads"]["endpoints_sampled"] == 0


def _param_kind_per_value(values: list[str]) -> dict[str, Any]:
    """The per-value rules `param_kind` had before it ran in Arrow (the reference)."""
    seen = sorted(set(values))
    hexdigits = "0123456789abcdefABCDEF"
    uuid = r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
    if seen and all(re.fullmatch(uuid, v) for v in seen):
        return {"kind": "uuid"}
    if seen and all(re.fullmatch(r"[0-9]+", v) for v in seen):
        digits = sorted(len(v) for v in seen)
        return {"kind": "int", "digits": [digits[0], digits[-1]]}
    if seen and all(len(v) >= 8 and all(c in hexdigits for c in v) for v in seen):
        return {"kind": "hex", "length": max(len(v) for v in seen)}
    return {"kind": "other", "examples": seen[:12]}


PARAM_VALUES = ["17426345-d25a-4edf-92e0-f07abb83add2", "7", "0042", "deadbeef", "DEADBEEF99",
                "x", "é", "", "12ab"]  # fmt: skip


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(PARAM_VALUES),
            st.text("0123456789abcdefXé-", max_size=12),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_param_kind_in_arrow_keeps_the_per_value_rules(values: list[str]) -> None:
    assert param_kind(values) == _param_kind_per_value(values)


def test_synthesis_in_worker_processes_writes_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(synthesize_module, "CHUNK_SESSIONS", 1000)  # chunks cut in the parent
    records = [
        make_record(ts=T0 + timedelta(seconds=i * 3), session=f"s{i // 4}", path=f"/a/{i % 7}")
        for i in range(400)
    ]
    write_trace(tmp_path / "t", records)
    model = build_model(tmp_path / "t", correlations=False)
    one = synthesize(model, tmp_path / "one", scale=50, seed=4)
    two = synthesize(model, tmp_path / "two", scale=50, seed=4, processes=2)
    assert (
        one.sessions > synthesize_module.CHUNK_SESSIONS
    )  # so that two processes have chunks to share
    assert read_trace(tmp_path / "one").equals(read_trace(tmp_path / "two"))
    assert one.requests == two.requests == read_trace(tmp_path / "two").num_rows
    synthesize(model, tmp_path / "other", scale=50, seed=5, processes=2)
    assert not read_trace(tmp_path / "one").equals(read_trace(tmp_path / "other"))


def test_tile_appends_copies_as_new_sessions_later(tmp_path: Path) -> None:
    records = [
        make_record(ts=T0 + timedelta(seconds=i), session=f"s{i % 3}", path=f"/a/{i}")
        for i in range(12)
    ]
    write_trace(tmp_path / "t", records)
    rows = bench_module().tile(tmp_path / "t", 3, tmp_path / "tiled")
    whole = read_trace(tmp_path / "tiled").sort_by("ts")
    assert rows == whole.num_rows == 36
    sessions = whole.column("session").to_pylist()
    assert sessions[:12] == [f"s{i % 3}~0" for i in range(12)]
    assert sessions[-12:] == [f"s{i % 3}~2" for i in range(12)]
    ts = whole.column("ts").to_pylist()
    assert ts[12] - ts[0] == timedelta(seconds=11 + 60)  # the span and a minute later
    model = build_model(tmp_path / "tiled")
    assert model["provenance"]["sessions"] == 9


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", None]),  # session
            st.integers(0, 40),  # start, in units of 100 s
            st.one_of(st.none(), st.floats(0, 500_000)),  # duration_ms
        ),
        min_size=1,
        max_size=40,
    )
)
def test_session_stats_by_timeout_are_sessionizes(requests: list[Any]) -> None:
    table = pa.table(
        {
            "ts": pa.array([T0 + timedelta(seconds=100 * t) for _, t, _ in requests]),
            "duration_ms": pa.array([d for *_, d in requests], pa.float64()),
            "session": pa.array([s for s, _, _ in requests], pa.string()),
            "client": pa.array(["c"] * len(requests)),
            "method": pa.array(["GET"] * len(requests)),
            "path": pa.array(["/a"] * len(requests)),
            "status": pa.array([200] * len(requests), pa.int16()),
        }
    )
    columns = read_request_columns(table.to_batches(max_chunksize=7), source="t")
    timeouts = {"short": 200.0, "30m": 1800.0, "long": 3000.0}  # gaps of exactly t occur
    frame = requests_frame(table)
    for name, stats in session_stats_by_timeout(columns, timeouts).items():
        expected = session_stats(sessionize(frame, timeouts[name])).to_json()
        assert stats.to_json() == expected, name
    endpoint = np.arange(len(requests)) % 3
    names = ["GET /z", "GET /a", "POST /a"]
    for timeout in timeouts.values():  # the model's frame, sessionized by numpy or pandas
        pandas_way = sessionize(session_frame(columns, None, endpoint, names), timeout)
        numpy_way = sessionize_requests(columns, endpoint, names, timeout)
        pd.testing.assert_frame_equal(numpy_way, pandas_way, check_exact=True)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.text("/a?#\n1é", max_size=10), min_size=1, max_size=20))
def test_cut_paths_in_arrow_is_cut_path(paths: list[str]) -> None:
    assert cut_paths(pa.array(paths, pa.string())).to_pylist() == [cut_path(p) for p in paths]


@pytest.mark.parametrize(
    "firsts",
    [
        [("a1", None), ("", [("X-Forwarded-For", "9.9.9.9, 1.1.1.1")]), (None, []), ("a1", [])],
        [
            (None, [("x-forwarded-for", "7.7.7.7")]),
            ("b", []),
            (None, [("X-Forwarded-For", "8.8.8.8")]),
            ("c", []),
        ],  # a tie
        [(None, []), (None, [("Host", "h")]), ("", [("x-forwarded-for", "k0")])],  # = a key
        [],
    ],
)
def test_first_addresses_equal_session_addresses(firsts: list[tuple[Any, Any]]) -> None:
    """The columnar count of every session's address (`_with_every_address`) gives what
    `session_addresses` gives on the frame of the sessions' first requests."""
    frame = pd.DataFrame(
        {
            "session_id": range(len(firsts)),
            "session_key": [f"k{i}" for i in range(len(firsts))],
            "addr": [a for a, _ in firsts],
            "req_headers": [h for _, h in firsts],
        }
    )
    addr = pa.array([a for a, _ in firsts], pa.string())
    missing = np.array([i for i, (a, _) in enumerate(firsts) if not a], np.int64)
    headers = pa.array([firsts[i][1] for i in missing], _HEADERS)
    keys = pa.array([f"k{i}" for i in missing], pa.string())
    address, source = header_addresses(headers, keys)  # as _with_every_address
    # Per session in Python, as session_addresses counted before it used first_addresses.
    each = [session_address(h, a, f"k{i}") for i, (a, h) in enumerate(firsts)]
    sources = Counter(source for _, source in each)
    expected = len({a for a, _ in each}), (sources.most_common(1)[0][0] if sources else None)
    assert first_addresses(addr, missing, address, source) == expected
    assert session_addresses(frame) == expected


_HEADERS = pa.map_(pa.string(), pa.string())


HEADER_ROWS = st.lists(
    st.one_of(
        st.none(),
        st.lists(
            st.tuples(
                st.sampled_from(
                    [
                        "X-Forwarded-For",
                        "x-forwarded-for",
                        "Host",
                        "X-FORWARDED-FOR",
                        "x-forwarded-fo\u212a",
                        "é",
                    ]
                ),
                st.one_of(st.none(), st.text(" ,1.\x1c\u3000a", max_size=6)),
            ),
            max_size=4,
        ),
    ),
    max_size=12,
)
"""Header lists of requests (some null): X-Forwarded-For in any case, look-alikes, odd values."""


@settings(max_examples=300, deadline=None, derandomize=True)
@given(HEADER_ROWS)
def test_header_addresses_is_session_address(
    rows: list[list[tuple[str, str | None]] | None],
) -> None:
    """The columnar address of requests without `addr` is `session_address`'s, for odd
    whitespace, commas, null values, several X-Forwarded-For entries and names in any case."""
    keys = [f"k{i}" for i in range(len(rows))]
    address, source = header_addresses(pa.array(rows, _HEADERS), pa.array(keys, pa.string()))
    expected = [session_address(h, None, k) for h, k in zip(rows, keys, strict=True)]
    assert address.to_pylist() == [a for a, _ in expected]
    assert [ADDRESS_SOURCES[c] for c in source.tolist()] == [s for _, s in expected]


def test_sampled_rows_of_a_file_without_an_additive_column(tmp_path: Path) -> None:
    """A trace written before `addr` existed: `rows` reads it through the dataset, which
    gives the missing column as nulls, in the order asked for."""
    records = [make_record(ts=T0 + timedelta(seconds=i), path=f"/p/{i}") for i in range(8)]
    table = make_table(records)
    (tmp_path / "t").mkdir()
    pq.write_table(table.drop_columns(["addr"]), tmp_path / "t" / "part-000001.parquet")
    source = ParquetSource.open(tmp_path / "t")
    picked = source.rows(np.array([3, 1]), ["path", "addr"])
    assert picked.to_pydict() == {"path": ["/p/3", "/p/1"], "addr": [None, None]}
