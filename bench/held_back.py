"""Think time judged fairly around the requests a replay holds back (issue 11 item 3).

A replayed pause next to a request the safety rules skipped spans two planned pauses, so
the replay side leaves it out; these helpers find, from the run's plan and the requests it
sent, which planned pauses it lost, the kept share per transition (from-endpoint →
to-endpoint), and weight each real pause by its transition's kept share, so the real side
leaves out the same kind of pauses. Assumes a pause's chance of being lost depends on its
transition only. Also a weighted two-sample KS (scipy has none) and its noise floor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

KS_C_ALPHA_05 = 1.36
MIN_PLAN_MATCH = 0.999
"""Share of sent requests whose endpoint the plan made again must match, else no figures."""
_SHIFT = 1 << 32


def planned_pauses(sessions: Iterable[Any]) -> pd.DataFrame:
    """One row per planned pause (every request but a session's first): session (its
    index, timing.parquet's `session`), seq (the request after the pause), the
    transition's from / to endpoints and the planned think_s."""
    rows = [
        (s.index, seq, s.requests[seq - 1].endpoint, r.endpoint, float(r.think_s))
        for s in sessions
        for seq, r in enumerate(s.requests)
        if seq
    ]
    return pd.DataFrame(rows, columns=["session", "seq", "from_endpoint", "to_endpoint", "think_s"])


def kept(pauses: pd.DataFrame, sent: pd.DataFrame, left_out: Iterable[int] = ()) -> np.ndarray:
    """Per planned pause, whether the replay kept it: both requests it lies between were
    sent (`sent`: timing.parquet's session, seq) and the session is not `left_out` (cut
    at the run's end: its pauses are not judged). A held-back request thus drops the
    pause before it and the one after it; a session that stopped early drops the rest."""
    keys = sent["session"].to_numpy(np.int64) * _SHIFT + sent["seq"].to_numpy(np.int64)
    session = pauses["session"].to_numpy(np.int64)
    seq = pauses["seq"].to_numpy(np.int64)
    both = np.isin(session * _SHIFT + seq, keys) & np.isin(session * _SHIFT + seq - 1, keys)
    out: np.ndarray = both & ~np.isin(session, np.fromiter(left_out, np.int64))
    return out


def keep_share(pauses: pd.DataFrame, kept_mask: np.ndarray) -> pd.DataFrame:
    """Per transition (from_endpoint, to_endpoint): planned pauses, kept ones, p_keep."""
    frame = pauses[["from_endpoint", "to_endpoint"]].assign(kept=kept_mask.astype(np.int64))
    out = frame.groupby(["from_endpoint", "to_endpoint"], sort=True)["kept"].agg(["size", "sum"])
    out = out.rename(columns={"size": "planned", "sum": "kept"})
    out["p_keep"] = out["kept"] / out["planned"]
    return out


def transition_weights(
    from_endpoint: Iterable[str], to_endpoint: Iterable[str], share: pd.DataFrame
) -> np.ndarray:
    """Each (from, to) pause's weight: its transition's p_keep, 1 when the plan has none."""
    p_keep = share["p_keep"].to_dict()
    return np.array(
        [p_keep.get((f, t), 1.0) for f, t in zip(from_endpoint, to_endpoint, strict=True)], float
    )


def weighted_ks(
    a: np.ndarray,
    b: np.ndarray,
    weights_a: np.ndarray | None = None,
    weights_b: np.ndarray | None = None,
) -> float:
    """Two-sample KS statistic between weighted ECDFs: the largest |F_a(x) − F_b(x)| over
    the pooled values, each ECDF the cumulative weight ≤ x ÷ the total weight. Unit
    weights give scipy.stats.ks_2samp's statistic."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    weights_a = np.ones(len(a)) if weights_a is None else np.asarray(weights_a, float)
    weights_b = np.ones(len(b)) if weights_b is None else np.asarray(weights_b, float)
    grid = np.unique(np.concatenate([a, b]))
    return float(np.max(np.abs(_ecdf(a, weights_a, grid) - _ecdf(b, weights_b, grid))))


def _ecdf(x: np.ndarray, weights: np.ndarray, grid: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    total = weights.sum()
    if not len(x) or total <= 0:
        raise ValueError("a weighted ECDF needs values with a positive total weight")
    cumulative = np.concatenate([[0.0], np.cumsum(weights[order])]) / total
    out: np.ndarray = cumulative[np.searchsorted(x[order], grid, side="right")]
    return out


def effective_n(weights: np.ndarray) -> float:
    """Kish's effective sample size (Σw)² ÷ Σw²: n for unit weights, less when they vary."""
    weights = np.asarray(weights, float)
    return float(weights.sum() ** 2 / np.square(weights).sum())


def ks_floor(n: float, m: float) -> float | None:
    """The two-sample KS noise floor at α = 0.05, 1.36·√((n+m)/(n·m)); with a weighted
    side, n its effective size (an approximation: the weights are themselves estimated)."""
    return round(KS_C_ALPHA_05 * math.sqrt((n + m) / (n * m)), 4) if n and m else None


def weighted_row(
    real: np.ndarray, real_weights: np.ndarray | None, other: np.ndarray
) -> dict[str, Any]:
    """Mean ratio (other ÷ weighted real) and weighted KS with its floor."""
    real, other = np.asarray(real, float), np.asarray(other, float)
    w = np.ones(len(real)) if real_weights is None else np.asarray(real_weights, float)
    real_mean = float(np.average(real, weights=w))
    n_eff = effective_n(w)
    return {
        "think_mean_s": [round(real_mean, 4), round(float(other.mean()), 4)],
        "think_mean_ratio": round(float(other.mean()) / real_mean, 4),
        "ks": round(weighted_ks(real, other, w), 4),
        "ks_floor": ks_floor(n_eff, len(other)),
        "n": [len(real), len(other)],
        "n_effective": round(n_eff, 1),
    }


def fair_think(
    real: dict[str, np.ndarray],
    sessions: Iterable[Any],
    sent: pd.DataFrame,
    left_out: Iterable[int],
    replay_kept: np.ndarray,
) -> dict[str, Any]:
    """Each step of real → plan → replay, think time: `real` has the real pauses
    (`think`) and their transitions (`think_from`, `think_to`); `sessions` the run's
    planned sessions; `sent` timing.parquet's (session, seq, endpoint); `left_out` the
    sessions the replay side does not judge; `replay_kept` the replay's judged pauses.
    Rows: mean ratio (second ÷ first) and KS, the first side weighted where named so;
    `real_weights` each real pause's weight (an array: the caller takes it out)."""
    pauses = planned_pauses(sessions)
    mask = kept(pauses, sent, left_out)
    share = keep_share(pauses, mask)
    weights = transition_weights(real["think_from"], real["think_to"], share)
    plan_all = pauses["think_s"].to_numpy(float)
    plan_kept = plan_all[mask]
    plan_weights = transition_weights(pauses["from_endpoint"], pauses["to_endpoint"], share)
    known = pd.MultiIndex.from_arrays([real["think_from"], real["think_to"]]).isin(share.index)
    planned_at = pauses.set_index(["session", "seq"])["to_endpoint"]
    sent_at = sent.set_index(["session", "seq"])["endpoint"].astype(str)
    both = sent_at.index.intersection(planned_at.index)
    match = float((sent_at.loc[both] == planned_at.loc[both]).mean()) if len(both) else 0.0
    head = {
        "assumes": "a real pause's chance of being lost depends on its transition only",
        "plan_sent_endpoint_match": round(match, 4),
    }
    if match < MIN_PLAN_MATCH:
        return {**head, "error": "the plan made again is not the run's (other code or model): "
                "not scored"}  # fmt: skip
    lost = share.assign(lost=share["planned"] - share["kept"]).sort_values("lost", ascending=False)
    think = np.asarray(real["think"], float)
    return {
        **head,
        "planned_pauses": len(pauses),
        "kept_pauses": int(mask.sum()),
        "replay_kept_pauses": len(replay_kept),
        "real_pauses_of_planned_transitions": round(float(known.mean()), 4),
        # what each side leaves out: the real pauses weighted 1 - p_keep, the plan's lost
        "lost_mean_s": {
            "real": round(float(np.average(think, weights=1 - weights)), 4)
            if (1 - weights).sum() > 0
            else None,
            "plan": round(float(plan_all[~mask].mean()), 4) if (~mask).any() else None,
        },
        # the assumption, checked where it can be: the plan's own pauses weighted by
        # their transition's p_keep against the plan's kept ones (1.0 / 0 if it holds)
        "plan_weighted_vs_plan_kept": weighted_row(plan_all, plan_weights, plan_kept),
        "real_vs_plan_all": weighted_row(think, None, plan_all),
        "real_vs_plan_kept": weighted_row(think, None, plan_kept),
        "real_weighted_vs_plan_kept": weighted_row(think, weights, plan_kept),
        "plan_kept_vs_replay_kept": weighted_row(plan_kept, None, replay_kept),
        "real_vs_replay_kept": weighted_row(think, None, replay_kept),
        "real_weighted_vs_replay_kept": weighted_row(think, weights, replay_kept),
        "real_weights": weights,
        "most_lost": [
            dict(
                transition=f"{f} -> {t}",
                planned=int(r.planned),
                lost=int(r.lost),
                p_keep=round(float(r.p_keep), 4),
            )
            for (f, t), r in lost.head(8).iterrows()
        ],
    }


def boot_floor(
    real: dict[str, np.ndarray], weights: np.ndarray, sessions: int, scale: int,
    rounds: int, seed: int,
) -> dict[str, Any]:  # fmt: skip
    """Where a perfect in-sample model lands by the draw alone, under the measure's own
    assumption: per round, scale × `sessions` real sessions drawn with replacement (whole
    sessions; those past the paused ones have no pause), each pause kept with its
    transition's p_keep (`weights`), against the weighted real pauses; and the old
    measure's floor (every drawn pause against the unweighted real ones). KS mean / p95,
    the mean-think ratio's 95 % range and the share of rounds outside ±3 %."""
    think = np.asarray(real["think"], float)
    session = np.asarray(real["think_session"])
    first = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
    counts = np.diff(np.r_[first, len(session)])
    rng = np.random.default_rng([seed, 23])
    means = (float(np.average(think, weights=weights)), float(think.mean()))
    out: dict[str, list[float]] = {"fair_ks": [], "fair_ratio": [], "old_ks": [], "old_ratio": []}
    for _ in range(rounds):
        pick = rng.integers(0, sessions, scale * sessions)
        pick = pick[pick < len(first)]
        size = counts[pick]
        offset = np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size)
        drawn = np.repeat(first[pick], size) + offset
        kept_drawn = drawn[rng.random(len(drawn)) < weights[drawn]]
        out["fair_ks"].append(weighted_ks(think, think[kept_drawn], weights))
        out["fair_ratio"].append(float(think[kept_drawn].mean()) / means[0])
        out["old_ks"].append(weighted_ks(think, think[drawn]))
        out["old_ratio"].append(float(think[drawn].mean()) / means[1])
    return {"rounds": rounds, **{side: _spread(out[f"{side}_ks"], out[f"{side}_ratio"])
                                 for side in ("fair", "old")}}  # fmt: skip


def _spread(ks: list[float], ratio: list[float]) -> dict[str, Any]:
    r = np.asarray(ratio)
    return {
        "ks_mean": round(float(np.mean(ks)), 4),
        "ks_p95": round(float(np.percentile(ks, 95)), 4),
        "mean_ratio_95": [round(float(x), 4) for x in np.percentile(r, [2.5, 97.5])],
        "mean_outside_3pct": round(float(np.mean(np.abs(r - 1) > 0.03)), 3),
    }
