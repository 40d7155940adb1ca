"""The payloads and correlations stages from the key partitions' samples
(models/partition_reads.py `partition_learned`) give what `build_model`'s
`_learned_from_samples` gives, to the bit: the endpoints, the payload and correlation
sampling notes, the rules, auth, ids and the outcomes' facts (placed among the model's
behaviors), on faker traces of several files (sessions longer than the request bound,
keys split by the timeout, X-Forwarded-For headers, empty and null `addr`), at samples
that bind and that do not, correlations on and off; on a trace whose failed-auth keys are
joined, with the first requests' own keys (`first_request_keys`). Broken inputs fail."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from faker import Faker

from tests.factories import T0, TEST_META, make_record
from tests.models.test_correlations import api_session
from tests.models.test_partition_failed_auth import _source as _failed_auth_source
from tests.models.trace_first_keys import first_request_keys
from tracereplay.models import model as m
from tracereplay.models.behaviors import Behavior
from tracereplay.models.correlations import auth_to_json, correlations_to_json
from tracereplay.models.ids import ids_to_json
from tracereplay.models.key_partitions import KeyPartitions, scan_key_partitions
from tracereplay.models.outcomes import NO_OUTCOMES, outcomes_to_json, place_outcomes
from tracereplay.models.partition_reads import partition_learned
from tracereplay.models.partition_samples import correlation_sample, payload_sample
from tracereplay.models.partition_sessions import (
    PartitionSessions,
    TracePauses,
    merged_sessions,
    partition_sessions,
)
from tracereplay.models.sample_reads import _first_requests
from tracereplay.models.session_sample import (
    CORRELATION_SAMPLE_REQUESTS,
    CORRELATION_SAMPLE_SESSIONS,
    CORRELATION_SESSIONS_PER_ENDPOINT,
)
from tracereplay.models.source import ParquetSource
from tracereplay.trace import open_writer

TIMEOUT_S = 600.0


def _write(path: Path, seed: int, files: int) -> Path:
    """`files` files (appended: one writer each) of faker-named API sessions (login,
    items, logout; some repeated: sessions longer than the bound), some keyed by their
    client, some keys coming back after the timeout (several sessions a key); `addr`
    given, empty or null; X-Forwarded-For on some sessions' requests."""
    fake = Faker(["en_US", "ja_JP"])
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    s = 0
    for f in range(files):
        with open_writer(path, TEST_META, append=f > 0) as writer:
            for k in range(int(rng.integers(8, 16))):
                name = f"{fake.user_name()}-{f}-{k}"
                keyed_by_client = k % 5 == 3
                start = float(rng.integers(0, 3 * 3600))
                for visit in range(int(rng.integers(1, 3))):  # (a key back after the timeout)
                    s += 1
                    steps = api_session(s, refresh=bool(rng.random() < 0.3))
                    steps = steps * int(rng.choice([1, 1, 3]))  # (some long sessions)
                    addr = [None, "", f"192.0.2.{s % 13}", f"198.51.100.{k}"][s % 4]
                    forwarded = rng.random() < 0.5
                    t = start + visit * 2 * TIMEOUT_S
                    for i, exchange in enumerate(steps):
                        headers = dict(exchange.pop("req_headers", ()) or ())
                        if forwarded and i % 3 != 1:
                            headers["X-Forwarded-For"] = f"10.{f}.{s % 7}.{i % 2}, 10.9.9.9"
                        t += float(rng.choice([0.0, 1.0, 5.0]))
                        writer.write(
                            make_record(
                                ts=T0 + timedelta(seconds=t),
                                session=None if keyed_by_client else name,
                                client=f"{fake.ipv4()}-{k}" if not keyed_by_client else name,
                                addr=addr,
                                req_headers=tuple(headers.items()),
                                **exchange,
                            )
                        )
    return path


@dataclass
class _Reference:
    """What `build_model` (one process) gave and passed: the model, `_learned_from_samples`'
    inputs and result, the behaviors the outcomes were placed among, and each session's
    first request's scan position and own key (inputs of `partition_learned`)."""

    model: dict[str, Any]
    args: tuple[Any, ...]
    learned: tuple[Any, ...]
    behaviors: list[Behavior]
    first_row: np.ndarray
    own_key: pa.Array


def _reference(trace: Path, monkeypatch: pytest.MonkeyPatch, **options: Any) -> _Reference:
    seen: dict[str, Any] = {}
    learned = m._learned_from_samples
    placed = m.place_outcomes

    def spy(*args: Any) -> Any:
        requests, sessions = args[2], args[3]
        first = _first_requests(sessions)
        seen["first_row"] = np.asarray(requests.row[first], np.int64)
        seen["own_key"] = requests.key_values.take(pa.array(requests.key[first]))
        seen["args"] = args
        seen["learned"] = learned(*args)
        return seen["learned"]

    def spy_placed(facts: Any, behaviors: list[Behavior]) -> Any:
        seen["behaviors"] = behaviors
        return placed(facts, behaviors)

    with monkeypatch.context() as patch:
        patch.setattr(m, "_learned_from_samples", spy)
        patch.setattr(m, "place_outcomes", spy_placed)
        model = m.build_model(trace, session_timeout_s=TIMEOUT_S, processes=1, **options)
    return _Reference(
        model, seen["args"], seen["learned"], seen.get("behaviors", []), seen["first_row"],
        seen["own_key"],
    )  # fmt: skip


@dataclass
class _Partitioned:
    """The partitions' inputs of `partition_learned`."""

    parts: KeyPartitions
    ids: list[np.ndarray]
    made: list[PartitionSessions]

    def session_keys(self) -> pa.Array:
        """Each session's key (by global id) from the partitions' sessions: the joined
        key where keys are joined."""
        n = sum(len(i) for i in self.ids)
        where = np.zeros(n, np.int64)
        pieces = []
        offset = 0
        for ids, made in zip(self.ids, self.made, strict=True):
            pieces.append(made.keys.take(pa.array(made.key)).cast(pa.string()))
            where[ids] = offset + np.arange(len(ids))
            offset += len(ids)
        every = pa.concat_arrays(pieces) if pieces else pa.array([], pa.string())
        return every.take(pa.array(where))


@pytest.fixture
def partitioned(trace: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    def made(count: int, *, join: bool = False) -> _Partitioned:
        parts = scan_key_partitions(
            ParquetSource.open(trace), count, tmp_path, join_failed_auth=join
        )  # fmt: skip
        opened.append(parts)
        sessions = [
            partition_sessions(p.key_partition(parts.first_ts_us), TIMEOUT_S, {})
            for p in parts.partitions(release=False)
        ]
        ids = merged_sessions(sessions, TracePauses(math.nan, math.nan, {})).ids
        return _Partitioned(parts, ids, sessions)

    opened: list[KeyPartitions] = []
    yield made
    for parts in opened:
        parts.close()


@pytest.fixture(scope="module", params=[(1, 3), (2, 1), (3, 4)], ids=["3files", "1file", "4files"])
def trace(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    seed, files = request.param
    return _write(tmp_path_factory.mktemp("reads") / "t", seed, files)


def _learned(
    trace: Path,
    got: _Partitioned,
    ref: _Reference,
    keys: pa.Array,
    *,
    correlations: bool,
    **broken: Any,
) -> tuple[Any, ...]:
    """`partition_learned` with the reference's options; `broken`: inputs replaced."""
    asked: m._Asked = ref.args[6]
    source = ParquetSource.open(trace)
    payloads = payload_sample(got.parts, source.part_rows(), asked.payload_sample, asked.seed)
    rows = correlation_sample(
        got.parts, got.ids, source.part_rows(), TIMEOUT_S,
        per_sample=asked.correlation_sample, per_endpoint=asked.correlation_per_endpoint,
        seed=asked.seed, requests=asked.correlation_requests,
    )  # fmt: skip
    inputs: dict[str, Any] = {
        "payloads": payloads, "rows": rows, "code_names": got.parts.names,
        "session_key": keys, "first_row": ref.first_row, "stats": ref.args[8],
    }  # fmt: skip
    for name, change in broken.items():
        inputs[name] = change(inputs[name])
    lines: list[str] = []
    learned = partition_learned(
        source, inputs["payloads"], inputs["rows"], inputs["code_names"],
        inputs["session_key"], inputs["first_row"], asked, correlations, inputs["stats"],
        ref.model["provenance"]["rows"], m._Clock(lambda report: lines.append(report.stage)),
    )  # fmt: skip
    assert lines == ["payloads", "payloads", "correlations", "correlations"]  # (build_model's)
    return learned


def _facts(learned: tuple[Any, ...], behaviors: list[Behavior]) -> str:
    """Every output of the stages as text: endpoints, notes, rules, auth, ids, the sample
    chosen, every session's addresses, and the outcomes placed among `behaviors`."""
    endpoints, payload_note, found, sample = learned
    facts = found.outcome_facts()
    outcomes = NO_OUTCOMES if facts is None else place_outcomes(facts, behaviors)
    return json.dumps(
        {
            "endpoints": endpoints,
            "payloads": payload_note,
            "correlations_note": found.note,
            "rules": correlations_to_json(found.rules),
            "auth": auth_to_json(found.auth),
            "ids": ids_to_json(found.ids),
            "chosen": np.flatnonzero(sample.chosen).tolist(),
            "addresses": found.addresses,
            "outcomes": outcomes_to_json(outcomes),
            "facts": None if facts is None else repr(replace(facts, per_session=[], paths=[])),
            "per_session": None if facts is None else repr(facts.per_session),
            "paths": None if facts is None else repr(facts.paths),
        },
        sort_keys=True,
        ensure_ascii=False,
    )


def _model_sections(learned: tuple[Any, ...], behaviors: list[Behavior]) -> dict[str, Any]:
    """The model file's sections these stages make."""
    endpoints, payload_note, found, _ = learned
    facts = found.outcome_facts()
    outcomes = NO_OUTCOMES if facts is None else place_outcomes(facts, behaviors)
    return {
        "endpoints": endpoints,
        "payloads": payload_note,
        "correlations_note": found.note,
        "correlations": correlations_to_json(found.rules),
        "auth": auth_to_json(found.auth),
        "ids": ids_to_json(found.ids),
        "outcomes": outcomes_to_json(outcomes),
    }


def _file_sections(model: dict[str, Any]) -> dict[str, Any]:
    sampling = model["provenance"]["sampling"]
    return {
        "endpoints": model["endpoints"],
        "payloads": sampling["payloads"],
        "correlations_note": sampling["correlations"],
        "correlations": model["correlations"],
        "auth": model["auth"],
        "ids": model["ids"],
        "outcomes": model["outcomes"],
    }


def _same_json(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


SAMPLES = {
    "binding": {
        "payload_sample": 3,
        "correlation_sample": 4,
        "correlation_per_endpoint": 1,
        "correlation_requests": 40,
    },
    "bound-only": {
        "payload_sample": 7,
        "correlation_sample": 10_000,
        "correlation_per_endpoint": 0,
        "correlation_requests": 25,
    },
    "whole": {},
}


@pytest.mark.parametrize("sizes", list(SAMPLES), ids=list(SAMPLES))
@pytest.mark.parametrize("correlations", [True, False], ids=["corr", "nocorr"])
@pytest.mark.parametrize("count", [1, 3])
def test_the_stages_are_the_models(
    trace: Path,
    partitioned: Any,
    monkeypatch: pytest.MonkeyPatch,
    sizes: str,
    correlations: bool,
    count: int,
) -> None:
    options = {**SAMPLES[sizes], "seed": count, "correlations": correlations}
    ref = _reference(trace, monkeypatch, **options)
    got = partitioned(count)
    keys = got.session_keys()
    assert keys.to_pylist() == ref.own_key.to_pylist()  # (no key joined here)
    mine = _learned(trace, got, ref, keys, correlations=correlations)
    assert _facts(mine, ref.behaviors) == _facts(ref.learned, ref.behaviors)
    assert _same_json(_model_sections(mine, ref.behaviors), _file_sections(ref.model))
    sample, found = ref.learned[3], ref.learned[2]
    if correlations:  # the rows walked: the model's (its ids int32 where they fit)
        pd.testing.assert_frame_equal(mine[2].heavy, found.heavy, check_dtype=False)
    if sizes == "binding":  # (what is compared is there)
        assert not sample.whole and ref.learned[1]["endpoints_sampled"] > 0
        if correlations:
            assert found.addresses is not None and found.rules and found.auth.login_endpoint
    if sizes == "bound-only" and correlations:
        assert found.note.get("sessions_cut", 0) > 0
    if not correlations:
        assert found.heavy is None and not found.rules


BROKEN = {
    "stats": lambda stats: stats[::-1],
    "payloads": lambda p: replace(p, counts=np.array([len(r) for r in p.rows])),
    "first_row": lambda rows: np.full_like(rows, rows[-1]),
    "session_key": lambda keys: pa.array(["k"] * len(keys)),
    "code_names": lambda names: names[::-1],
}


@pytest.mark.parametrize("broken", list(BROKEN))
def test_broken_inputs_give_another_model(
    trace: Path, partitioned: Any, monkeypatch: pytest.MonkeyPatch, broken: str
) -> None:
    """Each input is read: a wrong one (statistics out of order, payload counts as if
    uncut, one request as every session's first, keys all alike, codes named in reverse)
    gives other stages."""
    ref = _reference(trace, monkeypatch, **SAMPLES["binding"])
    got = partitioned(3)
    keys = got.session_keys()
    mine = _learned(trace, got, ref, keys, correlations=True, **{broken: BROKEN[broken]})
    assert _facts(mine, ref.behaviors) != _facts(ref.learned, ref.behaviors)


@pytest.mark.parametrize("count", [1, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_joined_keys_need_the_first_requests_own_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int, seed: int
) -> None:
    """A trace whose failed-auth keys are joined (partitioned by the joined key): with
    each session's first request's own key read from the trace (`first_request_keys`) the
    stages are the model's; the partitions' (joined) keys count other addresses."""
    trace = tmp_path / "t"
    _failed_auth_source("parquet", seed, trace)
    options = {"correlation_sample": 6, "correlation_per_endpoint": 0, "seed": seed}
    ref = _reference(trace, monkeypatch, **options)
    source = ParquetSource.open(trace)
    with scan_key_partitions(source, count, tmp_path, join_failed_auth=True) as parts:
        assert parts.join is not None  # (what is tested is there)
        made = [
            partition_sessions(p.key_partition(parts.first_ts_us), TIMEOUT_S, {})
            for p in parts.partitions(release=False)
        ]
        got = _Partitioned(parts, merged_sessions(made, TracePauses(math.nan, math.nan, {})).ids,
                           made)  # fmt: skip
        own = first_request_keys(source, ref.first_row)
        assert own.to_pylist() == ref.own_key.to_pylist()
        mine = _learned(trace, got, ref, own, correlations=True)
        assert _facts(mine, ref.behaviors) == _facts(ref.learned, ref.behaviors)
        joined = got.session_keys()
        assert joined.to_pylist() != own.to_pylist()  # (some session starts on a failed key)
        wrong = _learned(trace, got, ref, joined, correlations=True)
        assert wrong[2].addresses != ref.learned[2].addresses


@pytest.mark.skipif(
    "TRACEREPLAY_REAL_TRACE" not in os.environ or "TRACEREPLAY_REAL_MODEL" not in os.environ,
    reason="set TRACEREPLAY_REAL_TRACE and TRACEREPLAY_REAL_MODEL (its model file, made with "
    "the defaults), e.g. /work/data/real1M and /work/data/models/real1M.main.json",
)
def test_a_real_trace_gives_its_model_files_sections(tmp_path: Path) -> None:
    """A real trace in 16 partitions at the model's defaults (seed 0, timeout 1800 s): the
    endpoints, payload and correlation notes, correlations, auth, ids and outcomes (placed
    among the file's behaviors, as `build_model` places them) are the model file's. The
    first requests' positions and own keys are read from the trace by the light columns
    (inputs here); the statistics are the file's endpoints' (the `stats` input)."""
    trace = Path(os.environ["TRACEREPLAY_REAL_TRACE"])
    want = json.loads(Path(os.environ["TRACEREPLAY_REAL_MODEL"]).read_text())
    timeout_s = float(want["sessions"]["timeout_s"])
    source = ParquetSource.open(trace)
    with scan_key_partitions(source, 16, tmp_path, join_failed_auth=True) as parts:
        made = [
            partition_sessions(p.key_partition(parts.first_ts_us), timeout_s, {})
            for p in parts.partitions(release=False)
        ]
        got = _Partitioned(parts, merged_sessions(made, TracePauses(math.nan, math.nan, {})).ids,
                           made)  # fmt: skip
        first_row = _first_rows(parts, got.ids, timeout_s)
        keys = got.session_keys() if parts.join is None else first_request_keys(source, first_row)
        del made
        payloads = payload_sample(parts, source.part_rows(), m.PAYLOAD_SAMPLE_REQUESTS, 0)
        rows = correlation_sample(
            parts, got.ids, source.part_rows(), timeout_s,
            per_sample=CORRELATION_SAMPLE_SESSIONS,
            per_endpoint=CORRELATION_SESSIONS_PER_ENDPOINT, seed=0,
            requests=CORRELATION_SAMPLE_REQUESTS,
        )  # fmt: skip
        names = parts.names
    stats = [_stats_of(want["endpoints"][name]) for name in payloads.names]
    asked = m._Asked(
        m.PAYLOAD_SAMPLE_REQUESTS, CORRELATION_SAMPLE_SESSIONS,
        CORRELATION_SESSIONS_PER_ENDPOINT, 0, CORRELATION_SAMPLE_REQUESTS,
    )  # fmt: skip
    learned = partition_learned(
        source, payloads, rows, names, keys, first_row, asked, True, stats,
        want["provenance"]["rows"],
    )  # fmt: skip
    behaviors = [Behavior.from_json(b) for b in want["behaviors"]]
    mine, theirs = _model_sections(learned, behaviors), _file_sections(want)
    for section in mine:
        assert _same_json(mine[section], theirs[section]), section


def _stats_of(entry: dict[str, Any]) -> dict[str, Any]:
    """An endpoint's statistics as `_endpoint_stats` gives them, from its file entry (the
    statistics' keys, in their order: `_merged` puts count, share, params first)."""
    return {k: v for k, v in entry.items() if k not in ("method", "template", "query", "body")}


def _first_rows(parts: KeyPartitions, ids: list[np.ndarray], timeout_s: float) -> np.ndarray:
    """Each session's first request's scan position by global id, from the partitions
    (the model's grouping, as the correlation sample makes it)."""
    from tracereplay.models.partition_samples import _local_sessions

    n = sum(len(i) for i in ids)
    first = np.zeros(n, np.int64)
    for p, part in enumerate(parts.partitions(release=False)):
        local, seq = _local_sessions(part, parts.first_ts_us, timeout_s)
        at = seq == 0
        first[ids[p][local[at]]] = part.row[at]
    return first
