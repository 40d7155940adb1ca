"""Model fidelity: a captured staging-users trace → model → synthetic traces at 1× and 5×,
each compared with the real one against the model issue's goals, over several seeds.

Builds the model once (timed), then for each scale (1, 5), arrival process ("stratified",
"poisson") and seed synthesizes a trace and runs `compare_traces` on it. Beside each KS D
it reports the two-sample critical value at α = 0.05 (the noise floor: two samples of one
distribution exceed it 5 % of the time), and beside the JSD the value two iid samples of
the real mix would show on average. The arrival MAPE is also taken on a grid 3× finer
than the model's buckets, since on the model's own grid "stratified" reproduces the
counts by construction. Without --trace it first captures one with `tracereplay demo`.

    .venv/bin/python bench/bench_fidelity.py [--trace DIR] [--minutes 20] [--users 30]
        [--seeds 1,2,3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from tracereplay.compare.compare import FIDELITY_GOALS, CompareResult, compare_traces
from tracereplay.models.arrivals import arrival_rate_mape, rate_curve
from tracereplay.models.frame import load_requests
from tracereplay.models.model import build_model
from tracereplay.models.sessions import session_table, sessionize
from tracereplay.models.synthesize import synthesize

SCALES = (1, 5)
PROCESSES = ("stratified", "poisson")
FINE_DIVISOR = 3
KS_C_ALPHA_05 = 1.36  # two-sample KS critical value at α = 0.05: c(α) · sqrt((n + m) / nm)
KS_METRICS = ("session_length", "session_duration", "think_time", "interarrival")
MAPE_FINE = "arrival_rate.mape_fine"
METRICS = (
    "endpoint_mix.jsd", *(f"{m}.ks" for m in KS_METRICS), "arrival_rate.mape", MAPE_FINE,
)  # fmt: skip
GOALS = {**FIDELITY_GOALS, MAPE_FINE: FIDELITY_GOALS["arrival_rate.mape"]}


def ks_floor(n: int, m: int) -> float | None:
    """Two-sample KS D that two samples of sizes n, m of one distribution exceed 5 % of the
    time (asymptotic)."""
    return KS_C_ALPHA_05 * math.sqrt((n + m) / (n * m)) if n and m else None


def jsd_floor(categories: int, n: int, m: int) -> float:
    """Mean JSD (base 2) between two iid multinomial samples of sizes n, m over k
    categories, to first order: (k − 1)(1/n + 1/m) / (8 ln 2). Requests within a session
    are not independent, so the real floor is somewhat higher."""
    return (categories - 1) * (1 / n + 1 / m) / (8 * math.log(2))


def session_starts(trace: Path) -> tuple[np.ndarray, float]:
    """Session start times and the span (s); a synthetic trace's clock starts at its
    capture_start, i.e. the model's time zero (models/frame.py), as in `compare`."""
    sessions = sessionize(load_requests(trace))
    starts = np.sort(session_table(sessions)["start_s"].to_numpy(float))
    return starts, float(sessions["t_s"].max())


def fine_mape(
    real: tuple[np.ndarray, float], other: tuple[np.ndarray, float], bucket_s: float, scale: float
) -> float:
    """Arrival MAPE on `bucket_s` buckets over the whole buckets both traces cover."""
    common = max(1, math.floor(min(real[1], other[1]) / bucket_s + 1e-9))
    curve_r = rate_curve(real[0], real[1], bucket_s)[:common]
    curve_o = rate_curve(other[0], other[1], bucket_s)[:common]
    return float(arrival_rate_mape(curve_r, curve_o, scale))


def one_run(result: CompareResult, fine: float) -> dict[str, Any]:
    """The figures of one compare: values, KS noise floors, sample sizes."""
    values: dict[str, Any] = dict(result.metric_values())
    values["session_duration.ks"] = result.session_duration.ks
    values[MAPE_FINE] = fine
    floors: dict[str, float | None] = {}
    sizes: dict[str, list[int]] = {}
    for name in KS_METRICS:
        part = getattr(result, name)
        floors[f"{name}.ks"] = ks_floor(part.real_n, part.other_n)
        sizes[name] = [part.real_n, part.other_n]
    endpoints = len(set(result.endpoint_mix.real) | set(result.endpoint_mix.other or {}))
    floors["endpoint_mix.jsd"] = jsd_floor(endpoints, *result.requests)
    judged = result.judgements  # compare's own: bootstrap floor, p-value, verdict
    return {
        "values": values, "floors": floors, "sample_sizes": sizes,
        "boot_floors": {m: j.noise_floor for m, j in judged.items()},
        "verdicts": {m: j.verdict for m, j in judged.items()},
        "requests": list(result.requests), "sessions": list(result.sessions),
        "model_bucket_s": result.arrival_rate.bucket_s,
    }  # fmt: skip


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, min, max over seeds per metric, the mean noise floor, goal and verdicts."""
    out: dict[str, Any] = {}
    for metric in METRICS:
        values = [r["values"][metric] for r in runs if r["values"][metric] is not None]
        floors = [f for r in runs if (f := r["floors"].get(metric)) is not None]
        boot = [f for r in runs if (f := r["boot_floors"].get(metric)) is not None]
        verdicts = [v for r in runs if (v := r["verdicts"].get(metric))]
        goal = GOALS.get(metric)
        mean = float(np.mean(values)) if values else None
        out[metric] = {
            "mean": mean, "min": min(values, default=None), "max": max(values, default=None),
            "floor_mean": float(np.mean(floors)) if floors else None, "goal": goal,
            "boot_floor_mean": float(np.mean(boot)) if boot else None,
            "verdicts": {v: verdicts.count(v) for v in ("pass", "noise", "fail") if v in verdicts},
            "passed": None if goal is None or mean is None else mean <= goal,
            "seeds_passed": None if goal is None else sum(v <= goal for v in values),
        }  # fmt: skip
    return out


def machine_info() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.MULTILINE)
    return {
        "cpu_model": model.group(1) if model else platform.processor(),
        "cpu_count": os.cpu_count(),
        "load_avg_at_start": list(os.getloadavg()),
        "python": platform.python_version(),
        **{pkg: version(pkg) for pkg in ("numpy", "scipy", "pandas", "pyarrow")},
        "machine": platform.machine(),
    }


def capture_trace(minutes: float, users: int, workdir: Path) -> Path:
    """Run `tracereplay demo` for `minutes` into workdir/demo; its trace directory."""
    out = workdir / "demo"
    exe = Path(sys.executable).with_name("tracereplay")
    argv = [str(exe), "demo", "--duration", f"{minutes:g}m", "--users", str(users)]
    print(f"no --trace: capturing one with `{' '.join([*argv, '--out', str(out)])}` "
          f"(takes ~{minutes:g} min)", flush=True)  # fmt: skip
    done = subprocess.run([*argv, "--out", str(out)], check=False)
    if not (out / "trace").is_dir():
        raise SystemExit(f"bench_fidelity: demo exited {done.returncode} without a trace")
    return out / "trace"


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2%}" if "mape" in metric else f"{value:.4f}"


def render(summary: dict[str, Any], seeds: int, console: Console) -> None:
    table = Table(title=f"model fidelity (mean over {seeds} seeds, min–max)")
    for column in ("metric", "scale", "process", "mean", "min–max", "noise floor", "goal"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    table.add_column("pass (mean, seeds)", justify="right")
    table.add_column("bootstrap floor", justify="right")
    table.add_column("compare's verdicts", justify="right")
    for metric in METRICS:
        for key, part in summary.items():
            s = part[metric]
            verdict = "" if s["passed"] is None else ("pass" if s["passed"] else "FAIL")
            if s["seeds_passed"] is not None:
                verdict += f" {s['seeds_passed']}/{seeds}"
            scale, process = key.split("/")
            table.add_row(
                metric, scale, process, _fmt(s["mean"], metric),
                f"{_fmt(s['min'], metric)}–{_fmt(s['max'], metric)}",
                _fmt(s["floor_mean"], metric), _fmt(s["goal"], metric), verdict,
                _fmt(s["boot_floor_mean"], metric),
                " ".join(f"{k} {n}" for k, n in s["verdicts"].items()),
            )  # fmt: skip
        table.add_section()
    console.print(table)
    console.print(
        "noise floor: KS critical D at α=0.05 for the sample sizes; JSD of two iid samples of "
        "the real endpoint mix (first order). bootstrap floor and verdicts: compare's own "
        "(two halves of the real sessions, compare/verdicts.py). mape_fine: MAPE on model "
        f"bucket / {FINE_DIVISOR}."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, help="real trace (default: capture one)")
    parser.add_argument("--minutes", type=float, default=20.0, help="demo length if no trace")
    parser.add_argument("--users", type=int, default=30, help="demo peak users if no trace")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated synthesis seeds")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    console = Console(width=None if sys.stdout.isatty() else 120)  # logs: no wrapping
    results: dict[str, Any] = {"machine": machine_info(), "seeds": seeds}
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-fid-")))
        trace = args.trace
        if trace is None:
            trace = capture_trace(args.minutes, args.users, workdir)
            results["capture"] = {"minutes": args.minutes, "users": args.users}
        started = time.perf_counter()
        model = build_model(trace)
        results["build_model_s"] = round(time.perf_counter() - started, 2)
        bucket_s = float(model["arrivals"]["bucket_s"])
        fine_s = bucket_s / FINE_DIVISOR
        real = session_starts(trace)
        results.update(
            trace=str(trace), trace_requests=model["provenance"]["rows"],
            trace_sessions=model["provenance"]["sessions"],
            trace_span_s=model["provenance"]["span_s"], model_bucket_s=bucket_s,
            fine_bucket_s=fine_s, runs={}, summary={},
        )  # fmt: skip
        console.print(
            f"{trace}: {results['trace_requests']} requests, {results['trace_sessions']} "
            f"sessions over {results['trace_span_s']} s; model built in "
            f"{results['build_model_s']} s (bucket {bucket_s:g} s, fine grid {fine_s:g} s)"
        )
        for scale in SCALES:
            for process in PROCESSES:
                key, runs = f"{scale}x/{process}", []
                for seed in seeds:
                    out = workdir / f"synth-{scale}-{process}-{seed}"
                    t0 = time.perf_counter()
                    synth = synthesize(model, out, scale=scale, seed=seed, arrivals=process)
                    t1 = time.perf_counter()
                    result = compare_traces(trace, out, scale=float(scale))
                    t2 = time.perf_counter()
                    fine = fine_mape(real, session_starts(out), fine_s, float(scale))
                    run = {"seed": seed, **one_run(result, fine)}
                    run.update(synthesize_s=round(t1 - t0, 2), compare_s=round(t2 - t1, 2))
                    runs.append(run)
                    console.print(
                        f"  {key} seed {seed}: {synth.sessions} sessions, {synth.requests} "
                        f"requests (synthesize {run['synthesize_s']} s, compare "
                        f"{run['compare_s']} s)"
                    )
                results["runs"][key] = runs
                results["summary"][key] = summarize(runs)
    render(results["summary"], len(seeds), console)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
