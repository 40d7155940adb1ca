"""model → synthesize → compare on a real staging-users trace captured from the sandbox.

The fidelity bounds here are looser than the goals (bench/README.md has the figures on a
20-minute trace): this trace is ~75 s, so KS statistics carry ±0.1 of sampling noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from tests.factories import TEST_META, make_record, write_trace
from tracereplay.cli import main
from tracereplay.models.model import build_model, load_model, model_json
from tracereplay.models.synthesize import synthesize
from tracereplay.trace import read_trace

pytestmark = pytest.mark.slow

# The sandbox's routes (demo/README.md) — tests may know them, models/ may not.
SANDBOX_ROUTES = {
    "POST /api/v1/auth/login", "POST /api/v1/auth/refresh", "POST /api/v1/auth/logout",
    "GET /api/v1/auth/me", "GET /api/v1/clients/", "POST /api/v1/clients/",
    "GET /api/v1/clients/{client_id}", "PUT /api/v1/clients/{client_id}",
    "DELETE /api/v1/clients/{client_id}", "POST /api/v1/clients/{client_id}/configure",
    "POST /api/v1/clients/{client_id}/test-connection", "POST /api/v1/clients/{client_id}/sync",
    "GET /api/v1/clients/{client_id}/export",
    "GET /api/v1/metrics/overview", "GET /api/v1/metrics/workflows",
    "GET /api/v1/metrics/execution-stats", "GET /api/v1/metrics/executions",
    "GET /api/v1/metrics/historical", "GET /api/v1/metrics/data-freshness",
    "POST /api/v1/metrics/refresh-cache", "GET /api/v1/workflows/",
    "GET /api/v1/workflows/{workflow_id}", "PATCH /api/v1/workflows/{workflow_id}",
    "GET /health", "GET /api/v1/system/health", "GET /api/v1/system/health/detailed",
    "GET /api/v1/cache/stats", "DELETE /api/v1/cache/clear",
    "DELETE /api/v1/cache/client/{client_id}",
}  # fmt: skip


@pytest.fixture(scope="module")
def model(staging_trace: Path) -> dict[str, object]:
    return build_model(staging_trace)


def test_model_recovers_the_routes_and_is_deterministic(
    staging_trace: Path, model: dict[str, object], tmp_path: Path
) -> None:
    endpoints = set(model["endpoints"])  # type: ignore[call-overload]
    assert endpoints <= SANDBOX_ROUTES, endpoints - SANDBOX_ROUTES
    assert len(endpoints) >= 20  # a 75 s day exercises most routes
    out_a, out_b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["model", str(staging_trace), "--out", str(out_a)]) == 0
    assert main(["model", str(staging_trace), "--out", str(out_b)]) == 0
    assert out_a.read_bytes() == out_b.read_bytes() == model_json(model).encode()


def test_model_finds_login_and_correlations(model: dict[str, object]) -> None:
    auth = model["auth"]
    assert isinstance(auth, dict) and auth["login"] == "POST /api/v1/auth/login"
    assert auth["refresh"] == "POST /api/v1/auth/refresh"
    rules = model["correlations"]
    assert isinstance(rules, list)
    assert any(
        r["source"]["endpoint"] == "POST /api/v1/auth/login"
        and r["target"]["where"] == "header"
        and r["target"]["key"] == "authorization"
        for r in rules
    )


def test_synthesis_is_seeded_and_scales_sessions(model: dict[str, object], tmp_path: Path) -> None:
    one = synthesize(model, tmp_path / "one", scale=1, seed=3)
    again = synthesize(model, tmp_path / "again", scale=1, seed=3)
    five = synthesize(model, tmp_path / "five", scale=5, seed=3)
    a, b = read_trace(tmp_path / "one"), read_trace(tmp_path / "again")
    assert a.equals(b) and one.requests == again.requests
    assert 3.5 < five.sessions / max(one.sessions, 1) < 6.5
    assert read_trace(tmp_path / "five").num_rows == five.requests


def test_fidelity_at_1x_and_5x(staging_trace: Path, tmp_path: Path) -> None:
    model_path = tmp_path / "m.json"
    assert main(["model", str(staging_trace), "--out", str(model_path)]) == 0
    # Session length (issue 11): the model draws lengths from the real sessions' censored
    # estimate. At 5× (~320 drawn sessions) the KS stays under 0.1 (20 seeds on each of
    # two 75 s captures: max 0.072 and 0.084, median 0.05) where the chain's own END
    # gave a median of 0.10 (max 0.14-0.16). At 1× (~65 sessions) the draw alone moves
    # the KS up to ~0.22 whatever the model (old and new alike): 0.3 is a sanity bound.
    length_bound = {1: 0.3, 5: 0.1}
    for scale in (1, 5):
        synth = tmp_path / f"syn{scale}"
        assert main(["synthesize", str(model_path), "--out", str(synth),
                     "--scale", str(scale), "--seed", "11"]) == 0  # fmt: skip
        out = tmp_path / f"cmp{scale}"
        main(["compare", str(staging_trace), str(synth), "--scale", str(scale),
              "--out", str(out)])  # fmt: skip
        result = json.loads((out / "compare.json").read_text())
        assert result["endpoint_mix"]["jsd"] <= 0.03
        assert result["session_length"]["ks"] <= length_bound[scale], (scale, result)
        assert result["think_time"]["ks"] <= 0.15
        assert result["interarrival"]["ks"] <= 0.25
        assert result["arrival_rate"]["mape"] <= 0.6


def test_bad_inputs_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["model", str(empty)]) == 2
    not_model = tmp_path / "x.json"
    not_model.write_text(json.dumps({"format": "other/1"}))
    assert main(["synthesize", str(not_model), "--out", str(tmp_path / "s")]) == 2
    assert main(["model", str(tmp_path / "missing")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if line.startswith("tracereplay: error: ")]
    assert len(errors) == 3 and "Traceback" not in "".join(lines)
    assert "not a tracereplay.model/1 file" in errors[1]


def test_one_request_gives_a_valid_degenerate_model(tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "one", [make_record()])
    model = build_model(trace)
    assert model["provenance"]["sessions"] == 1  # type: ignore[index]
    assert load_model(Path(write_json(model, tmp_path / "m.json")))
    result = synthesize(model, tmp_path / "syn", duration_s=60, seed=1)
    assert result.requests == result.sessions  # one-request sessions only
    assert TEST_META.source == "test" and isinstance(read_trace(tmp_path / "one"), pa.Table)


def write_json(model: dict[str, object], path: Path) -> Path:
    path.write_text(model_json(model))
    return path
