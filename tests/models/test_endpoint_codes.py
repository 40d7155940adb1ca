"""The endpoints' statistics and the payload sample by passes over the requests
(models/endpoint_codes.py) are what grouping the requests by endpoint gave: the same
counts, shares, parameter kinds, latency percentiles and status mixes, and the same sampled
rows in the same order (the code before, kept here as the reference)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tracereplay.models import endpoint_codes
from tracereplay.models.endpoint_codes import EndpointCodes, endpoint_stats
from tracereplay.models.endpoints import (
    EndpointRows,
    sample_rows,
)
from tracereplay.models.light_columns import RequestColumns
from tracereplay.models.session_sample import part_ranks, payload_rows

NAMES = ["GET /a/{id}", "POST /b", "GET /c/{x}/d/{y}", "DELETE /a/{id}", "GET /e"]


def stats_before(requests: RequestColumns, groups: EndpointRows) -> list[dict[str, Any]]:
    """`sample_reads._endpoint_stats` before the passes, through each endpoint's rows: kept
    as the passes' fallback (`_grouped_stats`, main's code but its `_codes_used` moved)."""
    return endpoint_codes._grouped_stats(requests, groups)


def payload_rows_before(
    groups: EndpointRows, sample: int, seed: int, part: np.ndarray | None
) -> list[np.ndarray]:
    """`session_sample.payload_rows` before the passes: through each endpoint's rows."""
    parts = int(np.max(part)) + 1 if part is not None and len(part) else 0
    if parts < 2 or part is None:
        return sample_rows(groups, sample, seed)
    rank = part_ranks(parts, seed)
    out = []
    for i in range(len(groups.names)):
        rows = groups.rows(i)
        if len(rows) > sample:
            ranked = rank[np.asarray(part)[rows]]
            cut = int(np.searchsorted(np.cumsum(np.bincount(ranked, minlength=parts)), sample))
            whole, last = rows[ranked < cut], rows[ranked == cut]
            rng = np.random.default_rng([seed, i])
            more = last[rng.choice(len(last), sample - len(whole), replace=False)]
            rows = np.concatenate([whole, more])[rng.permutation(sample)]
        out.append(rows)
    return out


def columns(n: int, seed: int, durations: str, statuses: str) -> tuple[RequestColumns, np.ndarray]:
    """`n` requests over NAMES (each used), paths of uuid, int, word or null values."""
    rng = np.random.default_rng(seed)
    endpoint = rng.integers(0, len(NAMES), n).astype(np.int32)
    endpoint[: len(NAMES)] = np.arange(len(NAMES))
    values = [f"{v:08x}-aaaa-4bbb-8ccc-{v:012x}" for v in range(40)] + ["7", "12", "x-y"]
    uuid_only = values[:40] if seed % 2 else values  # every kind: uuid, int, other
    raw: list[str | None] = []
    for e in endpoint.tolist():  # a path of the endpoint's template, a few null
        template = NAMES[e].split(" ", 1)[1].split("/")
        filled = [str(rng.choice(uuid_only)) if t.startswith("{") else t for t in template]
        raw.append(None if e == 4 and rng.random() < 0.3 else "/".join(filled))
    distinct = sorted({p for p in raw if p is not None})
    paths = pa.array([*distinct, None], pa.string())
    where = {p: i for i, p in enumerate(distinct)}
    path = np.array([where.get(p, len(distinct)) for p in raw], np.int32)  # type: ignore[arg-type]
    duration = {
        "spread": rng.lognormal(3, 1, n),
        "ties": rng.integers(0, 4, n).astype(float),
        "negative": rng.normal(0, 5, n),
        "minus zero": np.where(rng.random(n) < 0.5, -0.0, 1.5),
        "none": np.full(n, np.nan),
    }[durations]
    duration[rng.random(n) < 0.2] = np.nan
    status = {
        "http": rng.choice([200, 201, 404, 500], n).astype(np.float32),
        "odd": rng.choice([-3, 0, 1200, 200], n).astype(np.float64),
        "none": np.full(n, np.nan, np.float32),
    }[statuses]
    status[rng.random(n) < 0.1] = np.nan
    requests = RequestColumns(
        row=np.arange(n, dtype=np.int32),
        first_ts=pd.Timestamp("2026-01-01", tz="UTC"),
        t_s=np.arange(n, dtype=float),
        duration_ms=duration,
        status=status,
        key=np.zeros(n, np.int32),
        key_values=pa.array(["k"]),
        method=np.zeros(n, np.int32),
        methods=["GET"],
        path=path,
        paths=paths,
    )
    return requests, endpoint


@pytest.mark.parametrize("durations", ["spread", "ties", "negative", "minus zero", "none"])
@pytest.mark.parametrize("statuses", ["http", "odd", "none"])
@pytest.mark.parametrize("n", [5, 9_000])
def test_the_statistics_are_those_of_each_endpoint_s_rows(
    durations: str, statuses: str, n: int
) -> None:
    requests, endpoint = columns(n, n + len(durations), durations, statuses)
    codes = EndpointCodes.of(endpoint, NAMES)
    before = stats_before(requests, EndpointRows.of(endpoint, NAMES))
    assert endpoint_stats(requests, codes) == before
    if n > 5:  # what is compared is there
        assert before[0]["params"] and (before[1]["status"] != {}) == (statuses != "none")
        assert ("latency_ms" in before[1]) == (durations != "none")


def test_too_many_cells_go_by_the_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    requests, endpoint = columns(3_000, 1, "spread", "odd")
    codes = EndpointCodes.of(endpoint, NAMES)
    before = stats_before(requests, EndpointRows.of(endpoint, NAMES))
    monkeypatch.setattr(endpoint_codes, "_MAX_CELLS", 10)
    assert endpoint_stats(requests, codes) == before


def test_the_codes_are_the_grouping_s() -> None:
    rng = np.random.default_rng(2)
    names = [f"GET /e{i}" for i in rng.permutation(30)]
    endpoint = rng.integers(0, 30, 5_000).astype(np.int32)
    endpoint[:30] = np.arange(30)
    codes, rows = EndpointCodes.of(endpoint, names), EndpointRows.of(endpoint, names)
    assert codes.names == rows.names
    assert np.array_equal(codes.bounds, rows.bounds)
    assert np.array_equal(codes.grouped().order, rows.order)


@pytest.mark.parametrize("parts", [1, 2, 7, 40])
@pytest.mark.parametrize("sample", [1, 30, 400, 5_000])
@pytest.mark.parametrize("ordered", [True, False])
def test_the_payload_sample_is_the_one_drawn_from_each_endpoint_s_rows(
    parts: int, sample: int, ordered: bool
) -> None:
    """Endpoints of 1 to ~3,000 requests over parts in scan order (a file each) or
    shuffled; the rows and their order."""
    rng = np.random.default_rng(parts * sample)
    counts = [3_000, 1, 450, 29, 1_200, 31]
    endpoint = rng.permutation(np.repeat(np.arange(len(counts)), counts)).astype(np.int32)
    part = (np.arange(len(endpoint)) * parts // len(endpoint)).astype(np.int16)
    if not ordered:
        part = rng.permutation(part)
    names = [f"GET /e{i}" for i in rng.permutation(len(counts))]
    codes = EndpointCodes.of(endpoint, names)
    for seed in (0, 9):
        new = payload_rows(codes, sample, seed, part)
        old = payload_rows_before(EndpointRows.of(endpoint, names), sample, seed, part)
        assert len(new) == len(old) == len(counts)
        for a, b in zip(new, old, strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b)
