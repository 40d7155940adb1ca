"""Verdicts that know their sample size: PASS / NOISE / FAIL on constructed samples of
known difference, the noise floor's false-FAIL rate, sessions needed, and goals files."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.compare.compare_factory import ENDPOINTS, frame, session_records, workload
from tests.factories import T0, make_record, write_trace
from tracereplay.cli import main
from tracereplay.compare.compare import compare_frames
from tracereplay.compare.verdicts import (
    Goals,
    judge,
    load_goals,
    parse_goals,
    sessions_needed,
    worst,
)
from tracereplay.errors import ConfigError
from tracereplay.trace import TraceRecord


def judged(real: pd.DataFrame, other: pd.DataFrame, metric: str) -> tuple[str | None, dict]:
    doc = compare_frames(real, other, scale=1).to_json()
    section = doc[metric.split(".", maxsplit=1)[0]]
    return section["verdict"], section["judged_by"]


# --- the rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "floor", "pvalue", "verdict"),
    [
        (0.04, 0.20, 0.9, "pass"),  # within the goal: pass, however small the sample
        (0.05, 0.01, 0.0, "pass"),  # at the goal
        (0.10, 0.15, 0.001, "noise"),  # below the floor: halves of REAL differ as much
        (0.10, 0.05, 0.30, "noise"),  # the test cannot tell either
        (0.10, 0.05, 0.001, "fail"),  # above goal, above floor, significant
        (0.10, None, None, "fail"),  # nothing says it is noise
        (None, 0.05, None, None),  # no value: not judged
    ],
)
def test_the_rule(
    value: float | None, floor: float | None, pvalue: float | None, verdict: str | None
) -> None:
    assert judge(value, 0.05, floor=floor, pvalue=pvalue, alpha=0.05, needed=None).verdict == (
        verdict
    )


def test_no_goal_is_measured_not_judged_and_fail_beats_noise_beats_pass() -> None:
    j = judge(0.5, None, floor=0.01, pvalue=0.0, alpha=0.05, needed=None)
    assert j.verdict is None and j.reason == "no goal: measured, not judged"
    assert worst(["pass", "noise", None]) == "noise"
    assert worst(["noise", "fail", "pass"]) == "fail"
    assert worst([None, None]) is None


def test_sessions_needed_scales_as_the_noise_shrinks() -> None:
    # KS noise ~ 1/sqrt(sessions): a floor twice the goal needs 4× the sessions.
    assert sessions_needed(100, 0.05, 0.10, 0.5) == 400
    # JSD noise ~ 1/sessions: twice the goal needs 2× the sessions.
    assert sessions_needed(100, 0.01, 0.02, 1.0) == 200
    # The test's critical value counts too, when it is the larger.
    assert sessions_needed(100, 0.05, 0.05, 0.5, critical=0.15) == 900
    assert sessions_needed(100, None, 0.1, 0.5) is None


# --- constructed samples of known difference --------------------------------------------


def test_same_workload_with_enough_sessions_passes() -> None:
    real = frame(workload(600, seed=1))
    other = frame(workload(600, seed=2, prefix="o"))
    verdicts = compare_frames(real, other, scale=1).verdicts()
    for metric in ("endpoint_mix.jsd", "session_length.ks", "think_time.ks"):
        assert verdicts[metric] == "pass", (metric, verdicts)
    # 600 exponential gaps a side give a KS D near 0.05 by chance: pass or noise, never fail.
    assert "fail" not in verdicts.values(), verdicts


def test_pauses_twice_as_long_fail_with_enough_sessions() -> None:
    real = frame(workload(400, seed=1, think_s=1.0))
    other = frame(workload(400, seed=2, think_s=2.0, prefix="o"))
    verdict, by = judged(real, other, "think_time.ks")
    assert verdict == "fail"
    assert by["pvalue"] < 1e-6 and by["noise_floor"] < 0.1


def test_the_same_difference_on_a_sample_too_small_to_tell_is_noise() -> None:
    """Pauses twice as long again, now in 6 sessions a side: the KS D is above the goal,
    but two halves of REAL differ as much. NOISE, with the sessions it would take."""
    real = frame(workload(6, seed=1, think_s=1.0))
    other = frame(workload(6, seed=2, think_s=2.0, prefix="o"))
    verdict, by = judged(real, other, "think_time.ks")
    assert verdict == "noise"
    doc = compare_frames(real, other, scale=1).to_json()
    assert doc["think_time"]["ks"] > 0.05
    assert by["sessions_needed"] > 6
    assert doc["verdict"] != "fail"


def _mix(units: int, counts: tuple[int, int, int], prefix: str) -> pd.DataFrame:
    """`units` times: requests to ENDPOINTS in exactly these counts, two per session."""
    paths = [p for p, c in zip(ENDPOINTS, counts, strict=True) for _ in range(c)]
    records: list[TraceRecord] = []
    for u in range(units):
        for s in range(0, len(paths), 2):
            key, start = f"{prefix}{u}-{s}", u * 60.0 + s * 5.0
            records += session_records(key, start, paths[s : s + 2])
    return frame(records)


def test_endpoint_mix_fails_with_enough_requests_and_is_noise_on_few() -> None:
    """Shares (0.5, 0.3, 0.2) against (0.3, 0.3, 0.4), JSD 0.05: on 10 requests a side
    no test can tell (NOISE); on 600 a side it is plain (FAIL)."""
    small = judged(_mix(1, (5, 3, 2), "r"), _mix(1, (3, 3, 4), "o"), "endpoint_mix.jsd")
    big = judged(_mix(60, (5, 3, 2), "r"), _mix(60, (3, 3, 4), "o"), "endpoint_mix.jsd")
    assert small[0] == "noise" and small[1]["pvalue"] > 0.05
    assert small[1]["sessions_needed"] > 5
    assert big[0] == "fail" and big[1]["pvalue"] < 1e-6


def test_two_samples_of_one_workload_rarely_fail() -> None:
    """The floor's purpose: samples of one workload (small, and clustered: pauses share a
    session's tempo) must not FAIL. With every goal set to 0, a value above the floor and
    significant fails; over 20 pairs (60 verdicts) at most 2 may. The KS p-value alone,
    which takes clustered pauses for independent ones, would call several different."""
    goals = Goals(dict.fromkeys(("think_time.ks", "session_length.ks", "interarrival.ks"), 0.0))
    fails = p_alone = 0
    for seed in range(20):
        real = frame(_tempo_workload(30, seed=seed))
        other = frame(_tempo_workload(60, seed=1000 + seed, prefix="o"))
        result = compare_frames(real, other, scale=1, goals=goals, rounds=100)
        fails += sum(v == "fail" for v in result.verdicts().values())
        p_alone += sum((j.pvalue or 1.0) < 0.05 for j in result.judgements.values())
    assert fails <= 2, fails
    assert p_alone >= 3, p_alone  # the data are clustered: the floor is what keeps them apart


def _tempo_workload(sessions: int, *, seed: int, prefix: str = "s") -> list[TraceRecord]:
    """Sessions with a tempo each (a slow reader is slow all session): pauses within one
    session hang together, which a KS p-value alone does not know."""
    rng = np.random.default_rng(seed)
    records, start = [], 0.0
    for i in range(sessions):
        start += float(rng.exponential(3.0))
        tempo, t = float(rng.lognormal(0.0, 1.0)), start
        for j in range(int(rng.integers(3, 12))):
            t += float(rng.exponential(tempo)) if j else 0.0
            records.append(
                make_record(ts=T0 + timedelta(seconds=t), path="/api/items", session=f"{prefix}{i}")
            )
    return records


# --- goals ------------------------------------------------------------------------------


def test_default_goals() -> None:
    goals = load_goals()
    assert goals.goals == {
        "endpoint_mix.jsd": 0.01,
        "status_mix.jsd": 0.01,
        "session_length.ks": 0.05,
        "think_time.ks": 0.05,
        "interarrival.ks": 0.05,
        "arrival_rate.mape": 0.1,
    }
    assert goals.alpha == 0.05


def test_a_goals_file_overrides_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "goals.toml"
    path.write_text(
        "version = 1\nalpha = 0.01\n[goals]\nthink_time.ks = 0.2\n"
        '"session_duration.ks" = 0.1\ninterarrival.ks = false\n'
    )
    goals = load_goals(path)
    assert goals.alpha == 0.01 and goals.source == str(path)
    assert goals.goals["think_time.ks"] == 0.2 and goals.goals["session_duration.ks"] == 0.1
    assert "interarrival.ks" not in goals.goals
    assert goals.goals["endpoint_mix.jsd"] == 0.01  # the rest stay


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[goals]\nthink.ks = 0.1\n", "unknown metric 'think.ks' (known: endpoint_mix.jsd"),
        ('[goals]\n"think_time.ks" = "small"\n', "goals.think_time.ks must be a number or false"),
        ('[goals]\n"think_time.ks" = -1\n', "goals.think_time.ks must be a finite number >= 0"),
        ("alpha = 2\n", "alpha must be a number between 0 and 1 (e.g. 0.05)"),
        ("version = 3\n", "version 3 not supported (want 1)"),
        ("colour = 1\n", "unknown key 'colour' (want version, alpha and [goals])"),
        ("goals = 3\n", "goals must be a table ([goals])"),
    ],
)
def test_bad_goals_files_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_goals(text, source="g.toml", base=load_goals())
    assert str(info.value).startswith(f"goals file g.toml: {message}")


def _trace(path: Path, records: list[TraceRecord]) -> Path:
    return write_trace(path, records)


def test_compare_exits_1_only_on_fail_and_goals_decide(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = _trace(tmp_path / "real", workload(300, seed=1, think_s=1.0))
    slower = _trace(tmp_path / "slower", workload(300, seed=2, think_s=2.0, prefix="o"))
    tiny_real = _trace(tmp_path / "tiny_real", workload(5, seed=1, think_s=1.0))
    tiny = _trace(tmp_path / "tiny", workload(5, seed=2, think_s=2.0, prefix="o"))
    base = ["compare", "--scale", "1", "--session-timeout", "10m"]
    assert main([*base, str(real), str(slower)]) == 1
    assert "think_time.ks" in capsys.readouterr().out
    # A sample too small to tell: the same difference is NOISE, and compare exits 0.
    assert main([*base, str(tiny_real), str(tiny)]) == 0
    assert "NOISE" in capsys.readouterr().out
    # A goal the user can live with: the difference passes.
    goals = tmp_path / "goals.toml"
    goals.write_text(
        "[goals]\nthink_time.ks = 0.5\nsession_length.ks = 0.5\ninterarrival.ks = 0.5\n"
        "endpoint_mix.jsd = 0.5\narrival_rate.mape = 5\n"
    )
    out = tmp_path / "out"
    assert main([*base, str(real), str(slower), "--goals", str(goals), "--out", str(out)]) == 0
    assert '"goals_source": "' + str(goals) in (out / "compare.json").read_text()
    capsys.readouterr()
    bad = tmp_path / "bad.toml"
    bad.write_text("[goals]\nnope = 1\n")
    assert main([*base, str(real), str(slower), "--goals", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tracereplay: error: goals file ")


def test_noise_floor_ks_d_is_ks_2samps_d_to_the_bit() -> None:
    from scipy.stats import ks_2samp

    from tracereplay.compare.verdicts import ks_d

    rng = np.random.default_rng(7)
    for case in range(200):
        n, m = rng.integers(2, 120, 2)
        if case % 2:  # many ties, across and within the samples
            a, b = rng.integers(0, 6, n) * 0.1, rng.integers(0, 8, m) * 0.1
        else:
            a, b = rng.exponential(1.0, n), rng.exponential(1.3, m)
        want = float(ks_2samp(a, b, method="asymp").statistic)
        assert ks_d(a, b) == want
        # Merged a few values at a time: runs of ties cross the blocks' would-be edges.
        assert ks_d(a, b, block=int(rng.integers(1, 5))) == want
        assert ks_d(np.sort(b), np.sort(a), presorted=True, block=3) == want
    assert ks_d(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    tied = np.array([0.0, 0.0, 1.0, 1.0])  # equal samples: D is 0 across every tie
    assert ks_d(tied, tied.copy()) == 0.0
