"""SLO classes bound to what the real trace taught, on an API with other paths than the
sandbox's: login, CRUD resources, the slowest tenth; the model file agrees; an SLO that
selects nothing is a WARN row and a stderr line."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.compare.compare_factory import frame
from tests.factories import T0, make_record, write_trace
from tracereplay.cli import main
from tracereplay.compare.bindings import learned_from_frame, learned_from_model, learned_from_trace
from tracereplay.compare.compare import compare_frames, sessionized_pair
from tracereplay.compare.slo import load_slos
from tracereplay.models.model import build_model, default_model_path, write_model
from tracereplay.trace import TraceRecord

LOGIN = "POST /v2/session"
ORDER = "/v2/orders/{order_id}"


def _order_id(s: int) -> str:
    return str(uuid.UUID(int=0xC0FFEE_0000 + s * 7919, version=4))


def _ex(method: str, path: str, *, token: str | None = None, status: int = 200,
        resp: Any = None, ms: float = 20.0) -> dict[str, Any]:  # fmt: skip
    headers = [("accept", "application/json")]
    if token:
        headers.append(("authorization", f"Bearer {token}"))
    return {
        "method": method, "path": path, "status": status, "duration_ms": ms,
        "req_headers": tuple(headers),
        "resp_body": None if resp is None else json.dumps(resp).encode(),
    }  # fmt: skip


def shop_session(s: int) -> list[dict[str, Any]]:
    """Sign in, list and create an order, read it, an action below it, a slow report,
    delete the order: a shop API nothing in tracereplay knows."""
    token, order = f"sess-{s:04d}-" + "k" * 20, _order_id(s)
    return [
        _ex("POST", "/v2/session", resp={"session_token": token}, ms=80.0),
        _ex("GET", "/v2/orders", token=token, resp={"orders": []}),
        _ex("POST", "/v2/orders", token=token, status=201, resp={"id": order}, ms=30.0),
        _ex("GET", f"/v2/orders/{order}", token=token, resp={"id": order}),
        _ex("POST", f"/v2/orders/{order}/items", token=token, resp={"ok": True}, ms=40.0),
        _ex("GET", "/v2/reports/yearly", token=token, resp={"total": 3}, ms=900.0 + s),
        _ex("GET", "/v2/catalog", token=token, resp={"items": []}, ms=15.0),
        _ex("DELETE", f"/v2/orders/{order}", token=token, status=204, ms=25.0),
    ]


def shop_records(sessions: int = 12) -> list[TraceRecord]:
    return [
        make_record(ts=T0 + timedelta(seconds=30 * s + i), session=f"shop-{s}", **step)
        for s in range(sessions)
        for i, step in enumerate(shop_session(s))
    ]


def test_classes_bind_to_the_shop_api() -> None:
    real_s, _ = sessionized_pair(frame(shop_records()), frame(shop_records()))
    learned = learned_from_frame(real_s)
    assert learned.login == LOGIN
    assert learned.crud == (
        f"DELETE {ORDER}", "GET /v2/orders", f"GET {ORDER}", "POST /v2/orders",
    )  # fmt: skip
    assert f"POST {ORDER}/items" not in learned.crud  # an action below an item is not CRUD
    # 8 endpoints, login left out: the slowest tenth is one, the yearly report.
    assert learned.complex == ("GET /v2/reports/yearly",)


def test_a_resource_never_deleted_is_not_crud() -> None:
    records = [r for r in shop_records() if r.method != "DELETE"]
    real_s, _ = sessionized_pair(frame(records), frame(records))
    assert learned_from_frame(real_s).crud == ()


def test_the_model_file_binds_the_same_way(tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "shop", shop_records())
    real_s, _ = sessionized_pair(frame(shop_records()), frame(shop_records()))
    from_model = learned_from_model(build_model(trace), source="shop.model.json")
    from_frame = learned_from_frame(real_s)
    assert (from_model.login, from_model.crud, from_model.complex) == (
        from_frame.login, from_frame.crud, from_frame.complex,
    )  # fmt: skip


def test_compare_reads_the_model_beside_real_when_it_is_of_that_trace(tmp_path: Path) -> None:
    real = write_trace(tmp_path / "shop", shop_records())
    out = tmp_path / "out"
    args = ["compare", str(real), str(real), "--scale", "1", "--out", str(out)]
    # Exit 1: the default "p95 < 500 ms over all requests" fails on the slow report.
    assert main(args) == 1
    assert json.loads((out / "compare.json").read_text())["slo"]["bound_from"] == "real trace"
    model = write_model(build_model(real), default_model_path(real))
    assert main(args) == 1
    doc = json.loads((out / "compare.json").read_text())
    assert doc["slo"]["bound_from"] == f"model {model}"
    assert {r["name"]: r["matched"] for r in doc["slo"]["results"]}["login_success"] == [LOGIN]
    # A model of another trace (other rows) is not used.
    write_trace(tmp_path / "half", shop_records(6))
    write_model(build_model(tmp_path / "half"), model)
    assert main(args) == 1
    assert json.loads((out / "compare.json").read_text())["slo"]["bound_from"] == "real trace"


def test_default_slos_judge_the_shop_by_its_own_endpoints() -> None:
    real, other = frame(shop_records()), frame(shop_records())
    doc = compare_frames(real, other, scale=1, slos=load_slos()).to_json()
    results = {r["name"]: r for r in doc["slo"]["results"]}
    assert results["login_success"]["matched"] == [LOGIN]
    assert results["login_success"]["verdict"] == "pass"
    assert results["crud_latency"]["matched"] == [
        f"DELETE {ORDER}", "GET /v2/orders", f"GET {ORDER}", "POST /v2/orders",
    ]  # fmt: skip
    assert results["crud_latency"]["value"] == pytest.approx(30.0)
    complex_ = results["complex_query_latency"]
    assert complex_["matched"] == ["GET /v2/reports/yearly"] and complex_["verdict"] == "pass"
    assert doc["slo"]["warnings"] == []


def test_an_slo_that_selects_nothing_warns_on_stderr_and_in_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = write_trace(tmp_path / "real", shop_records())
    slo = tmp_path / "slo.toml"
    slo.write_text(
        'version = 1\n[slo.historical]\nmetric = "latency_p95_ms"\nop = "<"\nthreshold = 1000\n'
        'endpoints = ["GET */metrics/historical"]\n'
        '[slo.fast]\nmetric = "latency_p95_ms"\nop = "<"\nthreshold = 5000\n'
    )
    out = tmp_path / "out"
    code = main(["compare", str(real), str(real), "--scale", "1", "--slo", str(slo),
                 "--out", str(out)])  # fmt: skip
    assert code == 0  # a WARN is not a FAIL
    captured = capsys.readouterr()
    assert (
        "tracereplay: warning: SLO 'historical' no request matches GET */metrics/historical"
        in captured.err.splitlines()
    )
    assert "WARN" in captured.out
    doc = json.loads((out / "compare.json").read_text())
    assert doc["slo"]["warnings"] == ["historical"] and doc["slo"]["passed"] is True
    assert '<span class="badge warn">WARN</span>' in (out / "report.html").read_text()


def _sessions_walked(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[int]:
    """Patch `module.walk_sessions` to note how many sessions each walk reads."""
    seen: list[int] = []
    walk = module.walk_sessions

    def counting(sessions: Any, *args: Any, **kw: Any) -> Any:
        seen.append(int(sessions["session_id"].nunique()))
        return walk(sessions, *args, **kw)

    monkeypatch.setattr(module, "walk_sessions", counting)
    return seen


def test_the_auth_of_a_frame_is_learned_on_a_bounded_sample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tracereplay.models import session_sample
    from tracereplay.models.correlations import find_auth, find_correlations

    real_s, _ = sessionized_pair(frame(shop_records(60)), frame(shop_records(2)))
    seen = _sessions_walked(monkeypatch, session_sample)
    sampled = session_sample.sampled_auth(real_s, per_sample=10, per_endpoint=2)
    # 10 drawn uniformly, and the 2 lowest keyed of each of the 8 endpoints' (every
    # session calls them all: among the 10): never the 60 sessions.
    assert seen == [10]
    assert sampled == find_auth(real_s, find_correlations(real_s))
    assert sampled.login_endpoint == LOGIN
    seen.clear()
    session_sample.sampled_auth(real_s, per_sample=100)  # more than there are: all of them
    assert seen == [60]


def test_compare_learns_the_auth_the_model_learns_on_its_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracereplay.models import model as model_module
    from tracereplay.models import sample_reads
    from tracereplay.models.correlations import auth_to_json

    trace = write_trace(tmp_path / "shop", shop_records(60))
    seen = _sessions_walked(monkeypatch, sample_reads)
    auth = model_module.learned_auth(trace, correlation_sample=10, correlation_per_endpoint=2)
    assert seen == [10]
    built = build_model(trace, correlation_sample=10, correlation_per_endpoint=2)
    assert auth_to_json(auth) == built["auth"] and auth.login_endpoint == LOGIN
    # With the defaults, as `tracereplay compare` learns it: what the model file gives.
    real_s, _ = sessionized_pair(frame(shop_records(60)), frame(shop_records(2)))
    from_trace = learned_from_trace(trace, real_s)
    from_model = learned_from_model(build_model(trace))
    assert from_trace.source == "real trace"
    assert (from_trace.login, from_trace.crud, from_trace.complex) == (
        from_model.login, from_model.crud, from_model.complex,
    )  # fmt: skip


def test_compare_draws_the_models_sample_from_its_own_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tracereplay compare` does not read and sessionize REAL again for the auth flow: it
    draws the model's sample from its own frame of REAL and walks the same rows."""
    from tracereplay.compare.columns import read_sessionized_rows
    from tracereplay.compare.compare import read_compared
    from tracereplay.models import model as model_module
    from tracereplay.models import sample_reads
    from tracereplay.models.source import ParquetSource

    # Written latest first: a request's scan position is not its place in time.
    trace = write_trace(tmp_path / "shop", shop_records(60)[::-1])
    walked: list[Any] = []
    walk = sample_reads.walk_sessions

    def noting(sessions: Any, *args: Any, **kw: Any) -> Any:
        walked.append(sessions)
        return walk(sessions, *args, **kw)

    monkeypatch.setattr(sample_reads, "walk_sessions", noting)
    sample = {"correlation_sample": 10, "correlation_per_endpoint": 2}
    auth = model_module.learned_auth(trace, **sample)
    real_s, _, rows = read_sessionized_rows(trace, None, 1800.0, scan_rows=True)
    assert rows is not None
    source = ParquetSource.open(trace, read_threads=2)
    again = model_module.sessions_auth(
        source, real_s["session_id"].to_numpy(), real_s["endpoint"], rows, **sample
    )
    assert again == auth and auth.login_endpoint == LOGIN
    model_walk, compare_walk = walked
    assert model_walk["session_id"].nunique() == 10
    for column in ("session_id", "seq", "endpoint", "path", "req_headers", "resp_body"):
        assert model_walk[column].tolist() == compare_walk[column].tolist(), column
    # `read_compared` learns the bindings while it reads OTHER: what REAL's read gives.
    pair = read_compared(trace, trace, bind=True)
    assert pair.learned == learned_from_trace(trace, pair.real_s)
    assert read_compared(trace, trace).learned is None
