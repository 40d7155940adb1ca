"""Replay plans from a model and from a trace: determinism, shards, scale, speed, copies,
header filtering and the source check, on a small login-then-browse trace."""

from __future__ import annotations

import json
import random
import uuid
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.factories import T0, make_record, write_trace
from tracereplay.errors import UsageError
from tracereplay.models import synthesize as synthesize_module
from tracereplay.models.model import build_model, write_model
from tracereplay.models.synthesize import Synthesizer
from tracereplay.replay.plan import Plan, PlannedSession
from tracereplay.replay.sources import (
    MAX_DEFAULT_JITTER_S,
    default_jitter_s,
    load_source,
    plan_from_model,
    plan_from_trace,
)
from tracereplay.trace import TraceRecord, open_trace
from tracereplay.trace.schema import row_to_record

SESSIONS = 30
SESSION_GAP_S = 20.0
KEPT = {"user-agent", "accept", "content-type", "x-request-id"}
CAPTURED_HEADERS = (
    ("host", "127.0.0.1:8000"),
    ("connection", "keep-alive"),
    ("accept-encoding", "gzip, br"),
    ("user-agent", "test-agent/1.0"),
    ("accept", "application/json"),
    ("x-request-id", "req-1"),
)


def _session(i: int, rng: random.Random) -> list[TraceRecord]:
    key, token = f"s-{i:02d}", f"tok-{i:02d}-{rng.getrandbits(48):012x}"
    t = T0 + timedelta(seconds=i * SESSION_GAP_S + rng.uniform(0, 5))
    login = json.dumps({"data": {"access_token": token}}).encode()
    body = json.dumps({"email": f"user{i}@anon.invalid", "password": "[removed]"}).encode()
    records = [
        make_record(
            ts=t, session=key, client=key, method="POST", path="/api/v1/auth/login",
            req_headers=(*CAPTURED_HEADERS, ("content-type", "application/json"),
                         ("content-length", str(len(body)))),
            req_body=body, req_body_size=len(body), resp_body=login,
            resp_body_size=len(login),
        )
    ]  # fmt: skip
    auth = (*CAPTURED_HEADERS, ("authorization", f"Bearer {token}"), ("cookie", f"t={token}"))
    for _ in range(rng.randint(2, 6)):
        t += timedelta(seconds=rng.uniform(0.5, 4.0))
        client_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        path, query = rng.choice(
            [("/api/v1/clients/", "page=1"), (f"/api/v1/clients/{client_id}", None)]
        )
        records.append(
            make_record(ts=t, session=key, client=key, path=path, query=query, req_headers=auth)
        )
    return records


def _records() -> list[TraceRecord]:
    rng = random.Random(7)
    return [r for i in range(SESSIONS) for r in _session(i, rng)]


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_trace(tmp_path_factory.mktemp("sources") / "trace", _records())


@pytest.fixture(scope="module")
def model(trace: Path) -> dict[str, Any]:
    return build_model(trace)


def _sends(session: PlannedSession) -> tuple[tuple[str, str, str | None, bytes | None], ...]:
    return tuple((r.method, r.path, r.query, r.body) for r in session.requests)


def _union(shards: list[Plan]) -> list[PlannedSession]:
    return sorted((s for p in shards for s in p.sessions), key=lambda s: s.index)


# ---- load_source --------------------------------------------------------------------------


def test_load_source_tells_models_from_traces(
    trace: Path, model: dict[str, Any], tmp_path: Path
) -> None:
    assert load_source(write_model(model, tmp_path / "m.json")) == "model"
    assert load_source(trace) == "trace"


def test_load_source_rejects_anything_else_in_one_line(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": [1, 2]}))
    empty = tmp_path / "empty"
    empty.mkdir()
    for bad, words in [
        (tmp_path / "missing", "no such model file or trace directory"),
        (other, "not a tracereplay.model/1 file"),
        (empty, "no trace files"),
    ]:
        with pytest.raises(UsageError, match=words) as caught:
            load_source(bad)
        assert "\n" not in str(caught.value) and str(bad) in str(caught.value)


# ---- model source -------------------------------------------------------------------------


def test_model_plan_is_seeded(model: dict[str, Any]) -> None:
    one, again = plan_from_model(model, seed=3), plan_from_model(model, seed=3)
    assert one == again and one.source == "model" and len(one.sessions) > SESSIONS / 2
    assert plan_from_model(model, seed=4) != one
    assert [s.index for s in one.sessions] == list(range(len(one.sessions)))
    starts = [s.start_s for s in one.sessions]
    assert starts == sorted(starts) and one.duration_s == pytest.approx(model["arrivals"]["span_s"])
    for session in one.sessions:
        assert session.role is None and session.requests[0].think_s == 0.0
        assert all(r.think_s >= 0 for r in session.requests)
        for r in session.requests:
            assert r.endpoint in model["endpoints"] and r.endpoint.startswith(r.method + " ")
            for name, value in r.path_params.items():
                assert "{" + name + "}" in r.endpoint and value in r.path
            assert "{" not in r.path


@pytest.mark.parametrize("workers", [2, 3])
def test_model_shards_add_up_to_the_single_process_plan(
    model: dict[str, Any], workers: int
) -> None:
    whole = plan_from_model(model, seed=5, scale=2)
    shards = [plan_from_model(model, seed=5, scale=2, worker=k, workers=workers)
              for k in range(workers)]  # fmt: skip
    assert _union(shards) == list(whole.sessions)
    for k, shard in enumerate(shards):
        assert all(s.index % workers == k for s in shard.sessions)
        assert shard == whole.shard(k, workers)


def test_model_scale_adds_sessions_of_the_same_shape(model: dict[str, Any]) -> None:
    window = 4 * float(model["arrivals"]["span_s"])  # the curve repeats past its span
    one = plan_from_model(model, seed=1, duration_s=window)
    five = plan_from_model(model, seed=1, duration_s=window, scale=5)
    assert 4.5 < len(five.sessions) / len(one.sessions) < 5.5
    assert max(s.start_s for s in five.sessions) < window == five.duration_s

    def shape(plan: Plan) -> tuple[float, float]:
        lengths = [len(s.requests) for s in plan.sessions]
        thinks = [r.think_s for s in plan.sessions for r in s.requests[1:]]
        return float(np.mean(lengths)), float(np.mean(thinks))

    (len1, think1), (len5, think5) = shape(one), shape(five)
    assert len5 == pytest.approx(len1, rel=0.15) and think5 == pytest.approx(think1, rel=0.2)


def test_model_speed_compresses_starts_and_thinks(model: dict[str, Any]) -> None:
    normal, fast = plan_from_model(model, seed=2), plan_from_model(model, seed=2, speed=4)
    span = float(model["arrivals"]["span_s"])
    assert fast.duration_s == pytest.approx(span / 4) and fast.speed == 4
    assert max(s.start_s for s in fast.sessions) < span / 4
    # Same level of the curve for a quarter of the time: about a quarter of the sessions.
    assert len(fast.sessions) == pytest.approx(len(normal.sessions) / 4, abs=3)
    # A session's requests come from its own seed: session i is the same, 4× faster.
    for a, b in zip(normal.sessions, fast.sessions, strict=False):
        assert [r.path for r in a.requests] == [r.path for r in b.requests]
        assert [r.think_s / 4 for r in a.requests] == pytest.approx([r.think_s for r in b.requests])


def test_model_duration_bounds_the_starts(model: dict[str, Any]) -> None:
    plan = plan_from_model(model, seed=1, duration_s=100.0)
    assert plan.duration_s == 100.0 and plan.sessions
    assert all(s.start_s < 100.0 for s in plan.sessions)


def test_synthesizer_sessions_do_not_depend_on_each_other(model: dict[str, Any]) -> None:
    alone = Synthesizer(model, seed=9).session_requests(7, 1.5)
    busy = Synthesizer(model, seed=9)
    for index in range(7):
        busy.session_requests(index, 0.0)
    assert busy.session_requests(7, 1.5) == alone
    assert list(busy.session(7, 1.5)) == [r.record for r in alone]


def test_model_plan_rejects_bad_options(model: dict[str, Any]) -> None:
    bad: list[dict[str, Any]] = [{"scale": 0.0}, {"speed": 0.0}, {"duration_s": -1.0},
        {"seed": -1}, {"worker": 2, "workers": 2}, {"arrivals": "bursty"}]  # fmt: skip
    for options in bad:
        with pytest.raises(UsageError):
            plan_from_model(model, **options)


# ---- trace source -------------------------------------------------------------------------


def test_trace_plan_reissues_captured_sessions_in_order(trace: Path) -> None:
    plan, knowledge = plan_from_trace(trace)
    assert plan.source == "trace" and len(plan.sessions) == SESSIONS
    assert [s.index for s in plan.sessions] == list(range(SESSIONS))
    by_session: dict[str, list[TraceRecord]] = {}
    for record in _records():
        by_session.setdefault(str(record.session), []).append(record)
    captured = sorted(by_session.values(), key=lambda rs: rs[0].ts)
    zero = captured[0][0].ts  # a captured trace's time zero is its first request
    for session, records in zip(plan.sessions, captured, strict=True):
        assert session.copy == 0 and session.role is None
        assert session.start_s == pytest.approx((records[0].ts - zero).total_seconds())
        assert [(r.method, r.path, r.query, r.body) for r in session.requests] == [
            (r.method, r.path, r.query, r.req_body) for r in records
        ]
        # make_record's responses take 12.5 ms; a pause runs from the previous response.
        pauses = [0.0] + [(b.ts - a.ts).total_seconds() - 0.0125 for a, b in pairwise(records)]
        assert [r.think_s for r in session.requests] == pytest.approx(pauses)
        assert session.requests[0].endpoint == "POST /api/v1/auth/login"
    assert plan.duration_s == pytest.approx(max((r.ts - zero).total_seconds() for r in _records()))
    assert knowledge.auth.login_endpoint == "POST /api/v1/auth/login"
    assert any(r.target.key == "authorization" for r in knowledge.rules)
    assert "GET /api/v1/clients/{client_id}" in {str(e) for e in knowledge.templater.endpoints}


def test_trace_plan_keeps_only_replayable_headers(trace: Path) -> None:
    plan, _ = plan_from_trace(trace)
    names = {name for s in plan.sessions for r in s.requests for name, _ in r.headers}
    assert names == KEPT
    params = [r.path_params for s in plan.sessions for r in s.requests if r.path_params]
    assert params and all(set(p) == {"client_id"} for p in params)


@pytest.mark.parametrize("workers", [2, 3])
def test_trace_shards_add_up_to_the_single_process_plan(trace: Path, workers: int) -> None:
    whole, _ = plan_from_trace(trace, scale=3, seed=1)
    shards = [plan_from_trace(trace, scale=3, seed=1, worker=k, workers=workers)[0]
              for k in range(workers)]  # fmt: skip
    assert _union(shards) == list(whole.sessions)
    assert all(shard == whole.shard(k, workers) for k, shard in enumerate(shards))


def test_trace_scale_adds_jittered_copies(trace: Path) -> None:
    base, _ = plan_from_trace(trace)
    plan, _ = plan_from_trace(trace, scale=3, jitter_s=4.0, seed=2)
    assert plan == plan_from_trace(trace, scale=3, jitter_s=4.0, seed=2)[0]
    assert len(plan.sessions) == 3 * SESSIONS and plan.scale == 3
    assert [s.index for s in plan.sessions] == list(range(3 * SESSIONS))
    starts = [s.start_s for s in plan.sessions]
    assert starts == sorted(starts) and min(starts) >= 0
    assert sorted(s.copy for s in plan.sessions) == sorted([0, 1, 2] * SESSIONS)
    originals = {_sends(s): s.start_s for s in base.sessions}
    for session in plan.sessions:
        start = originals[_sends(session)]  # a copy sends what its session sent
        if session.copy == 0:
            assert session.start_s == start
        else:
            assert abs(session.start_s - start) <= 4.0
            assert session.start_s != start or start == 0.0  # clipped at time zero


def test_trace_default_jitter_is_half_the_median_gap_capped(trace: Path) -> None:
    assert default_jitter_s(np.array([0.0, 10.0, 20.0, 40.0])) == 5.0
    assert default_jitter_s(np.arange(0.0, 1000.0, 100.0)) == MAX_DEFAULT_JITTER_S
    assert default_jitter_s(np.array([3.0])) == 0.0
    base, _ = plan_from_trace(trace)
    jitter = default_jitter_s(np.array([s.start_s for s in base.sessions]))
    assert 5.0 < jitter <= SESSION_GAP_S / 2 + 2.5
    plan, _ = plan_from_trace(trace, scale=2)
    originals = {_sends(s): s.start_s for s in base.sessions}
    assert all(abs(s.start_s - originals[_sends(s)]) <= jitter for s in plan.sessions)


def test_trace_speed_compresses_starts_and_thinks(trace: Path) -> None:
    normal, _ = plan_from_trace(trace)
    fast, _ = plan_from_trace(trace, speed=2.5)
    assert fast.duration_s == pytest.approx(normal.duration_s / 2.5)
    for a, b in zip(normal.sessions, fast.sessions, strict=True):
        assert b.start_s == pytest.approx(a.start_s / 2.5)
        assert [r.think_s for r in b.requests] == pytest.approx(
            [r.think_s / 2.5 for r in a.requests]
        )


def test_trace_duration_drops_later_sessions(trace: Path) -> None:
    whole, _ = plan_from_trace(trace, scale=2, seed=4)
    cut, _ = plan_from_trace(trace, scale=2, seed=4, duration_s=200.0)
    assert cut.duration_s == 200.0
    assert list(cut.sessions) == [s for s in whole.sessions if s.start_s < 200.0]
    assert 0 < len(cut.sessions) < len(whole.sessions)


def test_a_trace_with_an_absolute_url_is_refused_naming_it(tmp_path: Path) -> None:
    """No path may carry a host: an absolute URL in any case is refused, not rewritten
    (the rule is the one constructor's, replay/urls.py)."""
    for i, url in enumerate(["https://api.example.test/api/v1/x?page=2", "HTTP://h:1/x"]):
        path = write_trace(tmp_path / f"abs{i}", [make_record(path=url)])
        with pytest.raises(UsageError, match="is not a path") as raised:
            plan_from_trace(path)
        assert str(path) in str(raised.value) and url[:30] in str(raised.value)


def test_trace_plan_rejects_bad_options(trace: Path) -> None:
    bad: list[dict[str, Any]] = [{"scale": 0}, {"scale": 1.5}, {"speed": -1.0},
        {"jitter_s": -2.0}, {"duration_s": 0.0}, {"worker": -1},
        {"session_timeout_s": 0.0}]  # fmt: skip
    for options in bad:
        with pytest.raises(UsageError):
            plan_from_trace(trace, **options)


def test_synthesized_rows_are_the_sessions_drawn_alone(
    model: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows `synthesize` writes for session i (drawn in chunks of arrays, here of 7
    sessions so that sessions sit at every place of a chunk) are what
    `session_requests(i, start)` draws alone, as a replay worker does."""
    monkeypatch.setattr(synthesize_module, "CHUNK_SESSIONS", 7)
    result = synthesize_module.synthesize(model, tmp_path / "s", scale=4, seed=9)
    rows = open_trace(tmp_path / "s").to_table(sort=False).to_pylist()
    assert len(rows) == result.requests
    synth = Synthesizer(model, seed=9)
    starts = synth.session_starts(4, None)
    written: dict[str, list[TraceRecord]] = {}
    for row in rows:
        written.setdefault(row["session"], []).append(row_to_record(row))
    assert len(written) == result.sessions == len(starts)
    drawn = {}
    for index in range(len(starts)):
        alone = synth.session_requests(index, float(starts[index]))
        drawn[f"synth:{index:08d}"] = [r.record for r in alone]
    assert written == drawn
    values = [v for rs in drawn.values() for r in rs for v in (r.query, r.req_body, r.path)]
    assert any(b"@" in v for v in values if isinstance(v, bytes))  # bodies, queries, ids
    assert any("page=" in v for v in values if isinstance(v, str))
    assert any(p.count("/") == 4 and len(p) > 40 for p in values if isinstance(p, str))


def test_pools_rendered_by_worker_processes_write_the_same_rows(
    model: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes rendering the pools' blocks between them first (a large run) write
    what one process rendering them as it goes writes."""
    monkeypatch.setattr(synthesize_module, "CHUNK_SESSIONS", 16)
    monkeypatch.setattr(synthesize_module, "EAGER_POOL_ROWS", 0)
    synthesize_module.synthesize(model, tmp_path / "one", scale=2, seed=3)
    synthesize_module.synthesize(model, tmp_path / "two", scale=2, seed=3, processes=2)
    one = open_trace(tmp_path / "one").to_table(sort=False)
    two = open_trace(tmp_path / "two").to_table(sort=False)
    assert one.num_rows > 100 and one.equals(two)
    assert one.column("req_body").null_count < one.num_rows
