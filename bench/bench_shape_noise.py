"""How far from the real sessions a perfect model's synthesis lands by the draw alone
(issue 11, session shape): the noise floors the KS goal (≤ 0.03) is read against.

At N× the model draws N × n sessions against the capture's n. Per N and measure (think
time, inter-arrival × N, uncensored session length and duration, as bench_scale.py
measures them), three figures, each as mean / median / p95 of its KS statistic:

- `tool`: the model's synthesis vs the real sessions, at each of --seeds.
- `boot`: a perfect in-sample model — N × n real sessions drawn with replacement (whole
  sessions, so a session's pauses stay together; inter-arrival: N × (n − 1) real gaps)
  vs the real ones, --boot rounds. The tool's figure is judged against this: a model that
  is the trace's own empirical distribution lands here by the draw alone.
  Also the mean think ÷ real of those rounds (how far the mean moves by the draw).
- `self`: the model against itself — its synthesis at seed s vs at seed s + 1000 (two
  independent draws of N × n sessions; at 1× the two-sample noise of one n-session draw,
  ≈ √2 × one sample's).

    .venv/bin/python bench/bench_shape_noise.py --trace /work/caps/cap20/trace \
        --scales 1,5,10 --seeds 1-10 --boot 200 --json noise.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from bench_scale import real_shape, synthetic_sample
from scipy import stats

from tracereplay.models.model import build_model

MEASURES = ("think_time", "interarrival", "session_length", "session_duration")


def ks(a: np.ndarray, b: np.ndarray) -> float:
    return float(stats.ks_2samp(np.asarray(a, float), np.asarray(b, float)).statistic)


def samples(real: dict[str, Any], drawn: dict[str, Any], scale: int) -> dict[str, np.ndarray]:
    """The four measures' samples of one synthesis (bench_scale's selection)."""
    starts = np.sort(drawn["table"]["start_s"].to_numpy(float))
    return {
        "think_time": drawn["think"],
        "interarrival": np.diff(starts) * scale,
        "session_length": drawn["uncensored"]["length"].to_numpy(float),
        "session_duration": drawn["uncensored"]["duration_s"].to_numpy(float),
    }


def real_samples(real: dict[str, Any]) -> dict[str, np.ndarray]:
    return {
        "think_time": real["think"],
        "interarrival": np.diff(real["starts"]),
        "session_length": real["uncensored"]["length"].to_numpy(float),
        "session_duration": real["uncensored"]["duration_s"].to_numpy(float),
    }


def boot(real: dict[str, Any], scale: int, rng: np.random.Generator) -> dict[str, float]:
    """One round of the perfect in-sample model: N × n real sessions with replacement."""
    mine = real_samples(real)
    pauses = real["pauses_by_session"]
    picked = rng.integers(0, len(pauses), scale * len(pauses))
    think = np.concatenate([pauses[i] for i in picked])
    out = {"think_time": ks(mine["think_time"], think),
           "think_mean_ratio": float(think.mean() / mine["think_time"].mean())}  # fmt: skip
    for name in ("interarrival", "session_length", "session_duration"):
        values = mine[name]
        out[name] = ks(values, values[rng.integers(0, len(values), scale * len(values))])
    return out


def summary(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, float)
    return {
        "mean": round(float(v.mean()), 4),
        "median": round(float(np.median(v)), 4),
        "p95": round(float(np.quantile(v, 0.95)), 4),
        "max": round(float(v.max()), 4),
        "n": len(v),
    }


def seeds_of(text: str) -> list[int]:
    if "-" in text:
        lo, hi = (int(x) for x in text.split("-"))
        return list(range(lo, hi + 1))
    return [int(x) for x in text.split(",")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", type=Path, required=True)
    parser.add_argument("--scales", default="1,5,10")
    parser.add_argument("--seeds", default="1-10", help="1-10 or 1,2,3")
    parser.add_argument("--boot", type=int, default=200, help="bootstrap rounds per N")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    model = build_model(args.trace)
    real = real_shape(args.trace, float(model["sessions"]["timeout_s"]), model["templates"])
    mine = real_samples(real)
    results: dict[str, Any] = {
        "trace": str(args.trace),
        "real": {name: len(values) for name, values in mine.items()},
        "scales": {},
    }
    print(json.dumps(results["real"]), flush=True)
    for scale in (int(x) for x in args.scales.split(",")):
        rng = np.random.default_rng([scale, 5])
        rounds = [boot(real, scale, rng) for _ in range(args.boot)]
        tool: dict[str, list[float]] = {m: [] for m in MEASURES}
        self_: dict[str, list[float]] = {m: [] for m in MEASURES}
        ratio: list[float] = []
        for seed in seeds_of(args.seeds):
            one = samples(real, synthetic_sample(model, real, scale, seed), scale)
            other = samples(real, synthetic_sample(model, real, scale, seed + 1000), scale)
            ratio.append(float(one["think_time"].mean() / mine["think_time"].mean()))
            for m in MEASURES:
                tool[m].append(ks(mine[m], one[m]))
                self_[m].append(ks(one[m], other[m]))
        row = {
            m: {
                "tool": summary(tool[m]),
                "boot": summary([r[m] for r in rounds]),
                "self": summary(self_[m]),
                "tool_by_seed": [round(v, 4) for v in tool[m]],
            }
            for m in MEASURES
        }
        row["think_mean_ratio"] = {
            "tool": summary(ratio),
            "boot": summary([r["think_mean_ratio"] for r in rounds]),
            "tool_by_seed": [round(v, 4) for v in ratio],
        }
        results["scales"][str(scale)] = row
        print(json.dumps({"scale": scale, **row}), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
