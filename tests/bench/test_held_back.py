"""The fair think-time measure: a held-back request drops the two planned pauses around it,
the kept share is per transition, real pauses are weighted by it, and the weighted KS is
scipy's ks_2samp on unit weights (and fails two clearly different samples)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.held_back import (
    boot_floor,
    effective_n,
    fair_think,
    keep_share,
    kept,
    planned_pauses,
    transition_weights,
    weighted_ks,
)


def session(index: int, *steps: tuple[str, float]) -> SimpleNamespace:
    requests = tuple(SimpleNamespace(endpoint=e, think_s=t) for e, t in steps)
    return SimpleNamespace(index=index, requests=requests)


PLAN = (
    session(0, ("A", 0.0), ("B", 1.0), ("C", 2.0), ("D", 3.0)),  # C held back
    session(1, ("A", 0.0), ("B", 1.5), ("C", 2.5)),  # all sent
    session(2, ("A", 0.0), ("B", 4.0)),  # cut at the run's end
)
SENT = pd.DataFrame(
    {
        "session": [0, 0, 0, 1, 1, 1, 2, 2],
        "seq": [0, 1, 3, 0, 1, 2, 0, 1],
        "endpoint": list("ABDABCAB"),
    }
)


def test_a_held_back_request_drops_the_pause_before_and_after_it() -> None:
    pauses = planned_pauses(PLAN)
    assert pauses[["session", "seq"]].to_numpy().tolist() == [
        [0, 1], [0, 2], [0, 3], [1, 1], [1, 2], [2, 1],
    ]  # fmt: skip
    mask = kept(pauses, SENT, left_out=[2])
    assert mask.tolist() == [True, False, False, True, True, False]
    # without the cut session left out, its pause is kept
    assert kept(pauses, SENT).tolist() == [True, False, False, True, True, True]


def test_keep_share_is_per_transition_and_weights_the_real_pauses() -> None:
    pauses = planned_pauses(PLAN)
    share = keep_share(pauses, kept(pauses, SENT, left_out=[2]))
    assert share["p_keep"].to_dict() == {("A", "B"): 2 / 3, ("B", "C"): 0.5, ("C", "D"): 0.0}
    assert share["planned"].to_dict() == {("A", "B"): 3, ("B", "C"): 2, ("C", "D"): 1}
    weights = transition_weights(["A", "C", "X", "B"], ["B", "D", "Y", "C"], share)
    assert weights.tolist() == [2 / 3, 0.0, 1.0, 0.5]


def test_fair_think_leaves_out_on_the_real_side_what_the_replay_loses() -> None:
    real = {
        "think": np.array([1.0, 1.0, 9.0, 9.0]),
        "think_from": np.array(["A", "A", "C", "C"]),
        "think_to": np.array(["B", "B", "D", "D"]),
    }
    out = fair_think(real, PLAN, SENT, [2], np.array([1.0, 1.5, 2.5]))
    assert out["planned_pauses"] == 6
    assert out["kept_pauses"] == 3
    assert out["plan_sent_endpoint_match"] == 1.0
    assert out["real_vs_replay_kept"]["think_mean_s"] == [5.0, round(5 / 3, 4)]
    # C -> D is never kept: its long real pauses weigh nothing
    assert out["real_weighted_vs_replay_kept"]["think_mean_s"] == [1.0, round(5 / 3, 4)]
    assert out["real_weighted_vs_replay_kept"]["n_effective"] == 2.0
    assert out["real_vs_plan_all"]["think_mean_s"][1] == round(14 / 6, 4)
    assert out["plan_kept_vs_replay_kept"]["think_mean_ratio"] == 1.0
    assert out["lost_mean_s"] == {"real": 7.0, "plan": 3.0}
    # the check of the assumption: A -> B keeps 1.0 and 1.5 of (1.0, 1.5, 4.0), B -> C
    # 2.5 of (2.0, 2.5): the weighted plan (2/3 of A -> B's, 1/2 of B -> C's) is longer
    weighted_plan = (2 / 3 * 6.5 + 1 / 2 * 4.5) / 3
    assert out["plan_weighted_vs_plan_kept"]["think_mean_s"] == [
        round(weighted_plan, 4),
        round(5 / 3, 4),
    ]
    assert out["most_lost"][0] == {
        "transition": "A -> B", "planned": 3, "lost": 1, "p_keep": round(2 / 3, 4),
    }  # fmt: skip


def test_a_plan_that_is_not_the_runs_is_not_scored() -> None:
    real = {"think": np.ones(2), "think_from": np.array(["A"] * 2), "think_to": np.array(["B"] * 2)}
    other = SENT.assign(endpoint=SENT["endpoint"].replace({"D": "E"}))
    out = fair_think(real, PLAN, other, [2], np.ones(3))
    assert out["plan_sent_endpoint_match"] == round(4 / 5, 4)
    assert "error" in out
    assert "real_weighted_vs_replay_kept" not in out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_weighted_ks_on_unit_weights_is_ks_2samp(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = np.round(rng.lognormal(0.0, 1.0, 700), 1)  # ties within and across the samples
    b = np.round(rng.lognormal(0.05, 1.1, 450), 1)
    assert weighted_ks(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)


def test_integer_weights_are_repeated_values() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 1, 300), rng.normal(0.2, 1, 200)
    w = rng.integers(0, 4, len(a))
    expected = stats.ks_2samp(np.repeat(a, w), b).statistic
    assert weighted_ks(a, b, w) == pytest.approx(expected, abs=1e-12)


def test_weighted_ks_fails_two_clearly_different_samples() -> None:
    rng = np.random.default_rng(5)
    same = weighted_ks(rng.exponential(1.0, 20000), rng.exponential(1.0, 20000))
    shifted = weighted_ks(rng.exponential(1.0, 20000), rng.exponential(1.15, 20000))
    assert same < 0.03 < shifted


def test_effective_n() -> None:
    assert effective_n(np.ones(50)) == pytest.approx(50.0)
    assert effective_n(np.array([1.0, 0.0, 1.0, 0.0])) == pytest.approx(2.0)
    assert effective_n(np.array([1.0, 0.5])) == pytest.approx(1.8)


def test_boot_floor_unit_weights_is_the_old_floor_and_thinning_is_judged_by_its_weights() -> None:
    rng = np.random.default_rng(6)
    session = np.repeat(np.arange(300), 5)
    think = rng.exponential(1.0, len(session))
    real = {"think": think, "think_session": session}
    ones = boot_floor(real, np.ones(len(think)), 320, 1, rounds=20, seed=1)
    assert ones["fair"] == ones["old"]
    assert ones["fair"]["ks_mean"] < 0.05
    # the long pauses are never kept: the fair floor still centres on 1, as the
    # weighted real mean leaves them out too
    weights = np.where(think > 2.0, 0.0, 1.0)
    thinned = boot_floor(real, weights, 320, 1, rounds=20, seed=1)
    low, high = thinned["fair"]["mean_ratio_95"]
    assert low < 1.0 < high
