"""N× that is N×, on one process and on Locust master + 2 workers: every planned session
starts on one clock, none is cut, and `achieved_rps` is the requests sent in the one
common window over its length — the figure timing.parquet gives when counted by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.replay.stub_server import stub_server
from tests.replay.test_replay_e2e import tiny_model
from tracereplay.cli import main

pytestmark = pytest.mark.slow

SCALE = 5


@pytest.mark.parametrize("processes", [1, 2])
def test_scale_5_is_5x_the_real_rate_on_one_clock(
    tmp_path: Path, processes: int, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tiny_model(tmp_path, sessions=40, span_s=8.0)
    out = tmp_path / "run"
    with stub_server() as stub:
        code = main(["replay", str(model), "--host", stub.url, "--out", str(out),
                     "--scale", str(SCALE), "--processes", str(processes), "--force"])  # fmt: skip
    assert code == 0
    s = json.loads((out / "summary.json").read_text())
    planned = s["sessions_planned"]
    assert planned == SCALE * 40
    assert s["sessions_started"] == s["sessions_completed"] == planned
    assert s["sessions_cut"] == s["sessions_skipped"] == 0 and s["sessions_cut_keys"] == []
    # The formula, by hand from what was sent: requests in [time zero, + window) / window.
    sent = pq.read_table(out / "timing.parquet")["sent_s"].to_numpy()
    zero, window = s["start_s"], s["window_s"]
    in_window = int(np.count_nonzero((sent >= zero - 5e-4) & (sent < zero + window)))
    assert abs(s["requests_in_window"] - in_window) <= 1
    assert s["achieved_rps"] == pytest.approx(s["requests_in_window"] / window, rel=1e-3)
    assert s["achieved_scale"] == pytest.approx(s["achieved_rps"] / s["real_rps"], rel=1e-2)
    # Planned and achieved are both N× the real rate (sessions of 3 requests, 40 real ones
    # evenly spread: the plan holds exactly N× the sessions; a few requests fall past the
    # window's end in either).
    assert s["offered_rps"] == pytest.approx(SCALE * s["real_rps"], rel=0.1)
    assert s["achieved_scale"] == pytest.approx(SCALE, rel=0.1)
    assert s["start_lateness_ms"]["p99"] < 500
    line = capsys.readouterr().err
    assert f"sessions {planned} planned: {planned} started, {planned} completed, 0 cut" in line


@pytest.mark.parametrize("scale", [5, 10])
def test_the_plan_offers_n_times_the_real_rate_of_the_staging_capture(
    staging_model: Path, scale: int
) -> None:
    from tracereplay.models.model import load_model
    from tracereplay.replay.accounting import offered_requests
    from tracereplay.replay.sources import plan_from_model
    from tracereplay.replay.window import model_real_rps

    model = load_model(staging_model)
    ratios, variances = [], []
    for seed in (1, 2, 3, 4, 5):
        plan = plan_from_model(model, scale=scale, seed=seed)
        offered = offered_requests(plan) / plan.duration_s
        real = model_real_rps(model, plan.duration_s, 1.0)
        assert real is not None and real > 0
        ratios.append(offered / (scale * real))
        # A plan's requests are a sum over a Poisson number n of sessions of iid lengths L:
        # its relative variance is (1 + cv(L)^2) / n. Seen on 75 s staging captures: one
        # seed 0.88-1.11 at 1x, 0.99-1.08 at 5x, 1.01-1.02 at 10x.
        lengths = np.array([len(s.requests) for s in plan.sessions], dtype=float)
        variances.append((1 + (lengths.std() / lengths.mean()) ** 2) / len(lengths))
    noise = 4 * float(np.sqrt(np.mean(variances) / len(ratios)))  # 4 sd of the mean ratio
    assert noise < 0.2, noise  # the staging capture is large enough to tell 0.8x from 1x
    assert float(np.mean(ratios)) == pytest.approx(1.0, abs=noise), (ratios, noise)


@pytest.mark.parametrize(
    "sessions", [True, [], "x", {"duration_s": True, "requests": 3}, {"duration_s": [1.0]}]
)
def test_a_model_whose_sessions_are_not_objects_has_no_grace_or_rate(sessions: object) -> None:
    """The model file is user input: a JSON value of the wrong type where an object is
    expected gives no figure (the caller's default), never an AttributeError (the fuzz
    test found `sessions.duration_s: true`)."""
    from tracereplay.replay.window import model_grace_s, model_real_rps

    model = {"sessions": sessions, "provenance": True}
    assert model_grace_s(model, 1.0) is None
    assert model_real_rps(model, 10.0, 1.0) is None
    good = {"sessions": {"duration_s": {"p99": 40.0}}}
    assert model_grace_s(good, 2.0) == 20.0
