"""Achieved vs planned N× and session shape of real replays (issue 11).

Starts `tracereplay demo-target` (service times off, no login rate limit) on a free
127.0.0.1 port, models a staging-users capture, and replays the model at each --scale
with 1 and 2 Locust processes (bounded: --duration and the default --grace, the model's
p99 session duration). For each run it reports what summary.json says — planned
(offered_rps ÷ real_rps), achieved_scale, sessions planned/started/completed/cut/skipped,
start lateness — and, from `compare`, the replayed vs real KS of session length and think
time with the two-sample noise floor at α = 0.05 (replayed sessions cut at the run's end
are left out by compare). It also gives the plans' offered ÷ (N × real) over the model's
whole span at N = scales and 10, seeds 1-3 (no replay), and draws the model's synthetic
sessions and gives their think-time mean and KS against the real ones, so a bias of the
model and one of the replay can be told apart. Without --trace it first captures one with
`tracereplay demo`.

    .venv/bin/python bench/bench_scale.py [--trace DIR] [--scales 1,5] [--processes 1,2]
        [--duration 60s] [--seed 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from tracereplay.compare.compare import compare_traces
from tracereplay.demo.accounts import accounts_csv, sandbox_accounts
from tracereplay.models.frame import load_requests
from tracereplay.models.model import build_model, write_model
from tracereplay.models.sessions import sessionize
from tracereplay.models.synthesize import Synthesizer
from tracereplay.processes import LOOPBACK, free_port, running
from tracereplay.replay.accounting import offered_requests
from tracereplay.replay.sources import plan_from_model
from tracereplay.replay.window import model_real_rps

KS_C_ALPHA_05 = 1.36
SEED = 7


def ks_floor(n: int, m: int) -> float | None:
    return round(KS_C_ALPHA_05 * math.sqrt((n + m) / (n * m)), 4) if n and m else None


def capture(work: Path, minutes: str, users: str) -> Path:
    out = work / "demo"
    subprocess.run(
        [sys.executable, "-m", "tracereplay.cli", "demo", "--out", str(out),
         "--duration", minutes, "--users", users, "--scale", "0"],
        check=True, timeout=3600,
    )  # fmt: skip
    return out / "trace"


def synthetic_think(model: dict[str, Any], real: np.ndarray, scale: int, seed: int) -> dict:
    """Think times of the model's own synthetic sessions (no replay) vs the real ones."""
    synth = Synthesizer(model, seed)
    starts = synth.session_starts(scale, None, speed=1.0, process="stratified")
    think = np.asarray(
        [r.think_s for i, s in enumerate(starts) for r in synth.session_requests(i, float(s))[1:]]
    )
    return {
        "n": len(think),
        "mean_s": round(float(think.mean()), 4),
        "ks": round(float(stats.ks_2samp(real, think).statistic), 4),
        "ks_floor": ks_floor(len(real), len(think)),
    }


def planned(model: dict[str, Any], scales: list[int], seeds: range) -> dict[str, list[float]]:
    """offered ÷ (N × real) of the model's plans over its whole span (no replay)."""
    out: dict[str, list[float]] = {}
    for scale in scales:
        for seed in seeds:
            plan = plan_from_model(model, scale=scale, seed=seed)
            real = model_real_rps(model, plan.duration_s, 1.0) or float("nan")
            ratio = offered_requests(plan) / plan.duration_s / (scale * real)
            out.setdefault(str(scale), []).append(round(ratio, 4))
    return out


def replay(model: Path, host: str, accounts: Path, out: Path, args: argparse.Namespace,
           scale: int, processes: int) -> dict[str, Any]:  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "tracereplay.cli", "replay", str(model), "--host", host,
         "--out", str(out), "--scale", str(scale), "--processes", str(processes),
         "--duration", args.duration, "--seed", str(args.seed), "--credentials",
         str(accounts), "--force"],
        capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    s = json.loads((out / "summary.json").read_text())
    keep = ("sessions_planned", "sessions_started", "sessions_completed", "sessions_cut",
            "sessions_skipped", "sessions_login_failed", "requests", "failures", "window_s",
            "offered_rps", "achieved_rps", "real_rps", "achieved_scale")  # fmt: skip
    row: dict[str, Any] = {k: s.get(k) for k in keep}
    row["exit"] = done.returncode
    row["seconds"] = round(time.monotonic() - started, 1)
    row["planned_scale"] = round(s["offered_rps"] / s["real_rps"], 4) if s.get("real_rps") else None
    row["start_lateness_p99_ms"] = s["start_lateness_ms"]["p99"]
    text = " ".join(done.stderr.split())
    row["final_line"] = text[text.rfind("sessions ") :] if "sessions " in text else text[-300:]
    return row


def shape(real_trace: Path, replayed: Path, scale: int) -> dict[str, Any]:
    result = compare_traces(real_trace, replayed, scale=float(scale))
    values = dict(result.metric_values())
    out: dict[str, Any] = {}
    for name in ("session_length", "think_time"):
        part = getattr(result, name)
        out[name] = {
            "ks": values.get(f"{name}.ks"),
            "ks_floor": ks_floor(part.real_n, part.other_n),
            "n": [part.real_n, part.other_n],
        }
    out["cut_left_out"] = result.cut
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", type=Path)
    parser.add_argument("--minutes", default="75s", help="capture length without --trace")
    parser.add_argument("--users", default="24")
    parser.add_argument("--scales", default="1,5")
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--duration", default="60s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {"runs": []}
    with tempfile.TemporaryDirectory(prefix="bench_scale-") as tmp:
        work = Path(tmp)
        trace = args.trace or capture(work, args.minutes, args.users)
        model_data = build_model(trace)
        model = write_model(model_data, work / "model.json")
        real = sessionize(load_requests(trace))
        real_think = real["think_s"].dropna().to_numpy(float)
        results["trace"] = str(trace)
        results["real_think"] = {"n": len(real_think), "mean_s": round(real_think.mean(), 4)}
        results["synthetic_think"] = {
            str(n): synthetic_think(model_data, real_think, n, args.seed)
            for n in (int(s) for s in args.scales.split(","))
        }
        scales = [int(s) for s in args.scales.split(",")]
        results["planned_over_n_real"] = planned(model_data, sorted({*scales, 10}), range(1, 4))
        first = ("real_think", "synthetic_think", "planned_over_n_real")
        print(json.dumps({k: results[k] for k in first}), flush=True)
        accounts = work / "accounts.csv"
        accounts.write_text(accounts_csv(sandbox_accounts(SEED)))
        port = free_port()
        argv = [
            sys.executable, "-m", "tracereplay.cli", "demo-target", "--port", str(port),
            "--seed", str(SEED), "--service-time-scale", "0", "--login-rate-limit", "0",
        ]  # fmt: skip
        host = f"http://{LOOPBACK}:{port}"
        with running(argv, ready_url=host + "/health", log=work / "target.log"):
            for scale in (int(s) for s in args.scales.split(",")):
                for processes in (int(p) for p in args.processes.split(",")):
                    out = work / f"run-{scale}x-{processes}p"
                    row = replay(model, host, accounts, out, args, scale, processes)
                    row.update(scale=scale, processes=processes)
                    row.update(shape(trace, out / "replayed", scale))
                    results["runs"].append(row)
                    print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
