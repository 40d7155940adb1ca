"""The payload sample of a trace of many files is a cluster sample (issue 15): each endpoint
fills its quota from the files in the session sample's seeded order, so reading the sampled
requests' bodies and query strings decodes few files; with one file it is the sample of
before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.models.test_cluster_sample import FILES, _files_read, write_files
from tracereplay.models import model as model_module
from tracereplay.models.endpoint_codes import EndpointCodes
from tracereplay.models.endpoints import sample_rows
from tracereplay.models.frame import LIGHT_COLUMNS, read_request_columns
from tracereplay.models.model import build_model, model_json
from tracereplay.models.session_sample import part_ranks, payload_rows
from tracereplay.models.source import ParquetSource, part_of


def _groups(counts: list[int], parts: int, seed: int = 5) -> tuple[EndpointCodes, np.ndarray]:
    """Endpoints e0, e1, ... with these request counts, the requests shuffled over `parts`
    parts of (nearly) equal size in scan order."""
    rng = np.random.default_rng(seed)
    endpoint = rng.permutation(np.repeat(np.arange(len(counts)), counts))
    part = (np.arange(len(endpoint)) * parts // len(endpoint)).astype(np.int16)
    return EndpointCodes.of(endpoint, [f"e{i}" for i in range(len(counts))]), part


def test_each_endpoint_fills_its_quota_from_the_first_ranked_parts() -> None:
    groups, part = _groups([5000, 300, 40, 1200], parts=10)
    chosen = payload_rows(groups, 250, seed=3, part=part)
    rank = part_ranks(10, 3)
    for i, rows in enumerate(chosen):
        every = groups.grouped().rows(i)
        if len(every) <= 250:  # all of them, as before
            assert np.array_equal(np.sort(rows), np.sort(every))
            continue
        assert len(rows) == 250 == len(set(rows.tolist()))
        assert set(rows.tolist()) <= set(every.tolist())
        ranks = rank[part[rows]]
        cut = int(ranks.max())
        # every request of the parts ranked before the last one read, some of that one
        assert set(every[rank[part[every]] < cut].tolist()) <= set(rows.tolist())
        held = np.bincount(rank[part[every]], minlength=10)
        assert held[:cut].sum() < 250 <= held[: cut + 1].sum()
    # the big endpoint lies in one or two parts, where a uniform draw lies in all ten
    assert len(set(part[chosen[0]].tolist())) <= 2
    assert len(set(part[sample_rows(groups.grouped(), 250, 3)[0]].tolist())) == 10
    # 800 of its ~500 a part lie in two: its first half is no part's alone (the order
    # within the sample is seeded, not by part), as infer_payloads' half check wants
    rows = payload_rows(groups, 800, seed=3, part=part)[0]
    assert len(set(part[rows].tolist())) == 2
    assert set(part[rows[:400]].tolist()) == set(part[rows[400:]].tolist())


def test_the_payload_sample_is_seeded_and_one_part_is_the_uniform_sample() -> None:
    groups, part = _groups([3000, 900, 2000], parts=6)
    once = payload_rows(groups, 500, seed=1, part=part)
    again = payload_rows(groups, 500, seed=1, part=part)
    assert all(np.array_equal(a, b) for a, b in zip(once, again, strict=True))
    other = payload_rows(groups, 500, seed=2, part=part)
    assert not all(np.array_equal(a, b) for a, b in zip(once, other, strict=True))
    uniform = sample_rows(groups.grouped(), 500, 1)
    for alone in (None, np.zeros(len(part), np.int16)):
        drawn = payload_rows(groups, 500, seed=1, part=alone)
        assert all(np.array_equal(a, b) for a, b in zip(drawn, uniform, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(once, uniform, strict=True))


def _files_needed(trace: Path, sample: int) -> set[str]:
    """Per endpoint, the files in seeded rank order until they hold `sample` of its
    requests (all files holding it when fewer): the files the payload sample needs."""
    source = ParquetSource.open(trace)
    requests = read_request_columns(source.batches(LIGHT_COLUMNS), source=str(trace))
    _, endpoint, _ = model_module._templates(requests)
    part = part_of(source, requests.row)
    assert part is not None
    rank = part_ranks(FILES, 0)
    files = [Path(f).name for f in source.trace.dataset.files]
    needed: set[str] = set()
    for code in np.unique(endpoint):
        held = np.bincount(part[endpoint == code], minlength=FILES)
        taken = 0
        for f in np.argsort(rank):
            if held[f] and taken < sample:
                needed.add(files[f])
                taken += held[f]
    return needed


def test_the_model_reads_the_bodies_of_the_files_the_payload_sample_needs_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = write_files(tmp_path / "t")
    read = _files_read(monkeypatch, "req_body")
    built = build_model(trace, payload_sample=15, correlations=False)
    needed = _files_needed(trace, 15)
    assert sorted(set(read)) == sorted(needed) and len(read) == len(set(read))
    assert len(needed) < FILES // 2
    note = built["provenance"]["sampling"]["payloads"]
    assert note["files"] == FILES and note["files_sampled"] == len(needed)
    assert note["endpoints_sampled"] > 0 and note["read"] < note["requests"]
    again = build_model(trace, payload_sample=15, correlations=False)
    assert model_json(built) == model_json(again)
    # The body of an endpoint learned from a few files is the one all of them give here
    whole = build_model(trace, payload_sample=1000, correlations=False)
    assert "files" not in whole["provenance"]["sampling"]["payloads"]
    for name, endpoint in whole["endpoints"].items():
        body = built["endpoints"][name]["body"]
        assert (body is None) == (endpoint["body"] is None)
        if body is not None:
            assert {f["key"] for f in body["root"]["fields"]} == {
                f["key"] for f in endpoint["body"]["root"]["fields"]
            }
