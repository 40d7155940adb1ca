"""Achieved vs planned N× and session shape, synthesized and replayed (issue 11).

Shape, no replay: the model's own synthetic sessions at each --model-scales N and seed
(--seeds) against the real ones: mean think time, and the KS statistic with the
two-sample noise floor at α = 0.05 (1.36·√((n+m)/(n·m))) of think time, inter-arrival
(× N), session length and session duration. Length and duration are judged on the
uncensored sessions of both sides: real sessions the capture's edges censor
(models/session_shape.py) are left out, and each synthetic session is cut at the real
trace's end and left out by the same rule, so both samples are selected alike
(`session_length_all` / `session_duration_all`: every session, as compare sees them).

Replays: starts `tracereplay demo-target` (service times off, no login rate limit) on a
free 127.0.0.1 port and replays the model at each --scale with each --processes
(bounded: --duration and the default --grace, the model's p99 session duration). Per run:
summary.json's figures (planned = offered_rps ÷ real_rps, achieved_scale, sessions
planned/started/completed/cut/skipped, start lateness) and the same shape figures,
replayed (sessions cut at the run's end left out) vs real (inter-arrival: the real
arrivals of the run's window). Also the plans' offered ÷ (N × real) over the model's
whole span, seeds 1-3. Without --trace it first captures one with `tracereplay demo`.

Think time around held-back requests (`think_fair`, bench/held_back.py): the run's plan
made again, the real pauses weighted by their transition's kept share, beside the
unweighted figures and the plan's; `--rescore WORKDIR` scores a kept --work dir's runs
again from its files (the plan is made with this tree's synthesizer: a run made with
other code says `plan_sent_endpoint_match` < 1 and is not scored).

    .venv/bin/python bench/bench_scale.py [--trace DIR] [--model-scales 1,5,10]
        [--seeds 1,2,3] [--scales 1,5] [--processes 1,2] [--duration 60s] [--seed 1]
        [--no-replay] [--json out.json] [--work DIR]
    .venv/bin/python bench/bench_scale.py --rescore DIR --trace DIR [--seed 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from held_back import boot_floor, fair_think, ks_floor

from tracereplay.compare.run_summary import pauses_over_skips
from tracereplay.demo.accounts import accounts_csv, sandbox_accounts
from tracereplay.models.frame import load_requests
from tracereplay.models.model import build_model, load_model, write_model
from tracereplay.models.session_shape import censoring
from tracereplay.models.sessions import session_table, sessionize
from tracereplay.models.synthesize import Synthesizer
from tracereplay.models.templating import Templater, add_endpoints
from tracereplay.processes import LOOPBACK, free_port, running
from tracereplay.replay.accounting import offered_requests
from tracereplay.replay.sources import plan_from_model
from tracereplay.replay.window import model_real_rps

SEED = 7
BOOT_ROUNDS = 100
"""Rounds of held_back.boot_floor, the fair think measure's perfect-model floor."""
BANDS = ((1, 2), (3, 5), (6, 13), (14, 10**9))
"""Session-length bands of the per-band figures (duration and mean think by length)."""


def capture(work: Path, minutes: str, users: str) -> Path:
    out = work / "demo"
    subprocess.run(
        [sys.executable, "-m", "tracereplay.cli", "demo", "--out", str(out),
         "--duration", minutes, "--users", users, "--scale", "0"],
        check=True, timeout=3600,
    )  # fmt: skip
    return out / "trace"


def ks_row(real: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    real, other = np.asarray(real, float), np.asarray(other, float)
    if not len(real) or not len(other):
        return {"ks": None, "ks_floor": None, "n": [len(real), len(other)]}
    return {
        "ks": round(float(stats.ks_2samp(real, other).statistic), 4),
        "ks_floor": ks_floor(len(real), len(other)),
        "n": [len(real), len(other)],
    }


def real_shape(trace: Path, timeout_s: float, templates: dict[str, Any]) -> dict[str, Any]:
    """The real sessions: all, and those the capture's edges do not censor; and each
    endpoint's (the model's templates) response times, in seconds."""
    frame = add_endpoints(load_requests(trace), Templater.from_json(templates), params=False)
    real = sessionize(frame, timeout_s)
    table = session_table(real)
    timed = real.dropna(subset=["duration_ms"])
    seconds = timed["duration_ms"].to_numpy(float) / 1000.0
    by_endpoint = timed.groupby(timed["endpoint"].astype(str), sort=True).indices
    latency = {name: seconds[rows] for name, rows in by_endpoint.items()}
    edges = censoring(real, timeout_s)
    t = real["t_s"].to_numpy(float)
    table["pauses_s"] = real.groupby("session_id", sort=True)["think_s"].sum().to_numpy()
    paused = real.dropna(subset=["think_s"])
    by_session = paused.groupby("session_id", sort=True)["think_s"]
    before = real["endpoint"].astype(str).groupby(real["session_id"], sort=False).shift(1)
    return {
        "think": real["think_s"].dropna().to_numpy(float),
        "think_from": before[real["think_s"].notna()].astype(str).to_numpy(),
        "think_to": paused["endpoint"].astype(str).to_numpy(),
        "think_session": paused["session_id"].to_numpy(),
        "pauses_by_session": [g.to_numpy(float) for _, g in by_session],
        "table": table,
        "uncensored": table[~edges.any],
        "threshold_s": edges.threshold_s,
        "span": (float(t.min()), float(t.max())),
        "starts": np.sort(table["start_s"].to_numpy(float)),
        "latency": latency,
        "latency_all": seconds,
        "templates": templates,
    }


def shape_rows(
    real: dict[str, Any],
    think: np.ndarray,
    table: pd.DataFrame,
    uncensored: pd.DataFrame,
    scale: float,
) -> dict[str, Any]:
    """KS (with the two-sample floor) of each shape figure, real vs other; length and
    duration both over all sessions and over the uncensored ones of each side."""
    starts = np.sort(table["start_s"].to_numpy(float))
    out = {
        "think_mean_s": [round(float(real["think"].mean()), 4), round(float(think.mean()), 4)],
        "think_mean_ratio": round(float(think.mean() / real["think"].mean()), 4),
        "think_time": ks_row(real["think"], think),
        "interarrival": ks_row(np.diff(real["starts"]), np.diff(starts) * scale),
        "session_length": ks_row(real["uncensored"]["length"], uncensored["length"]),
        "session_duration": ks_row(real["uncensored"]["duration_s"], uncensored["duration_s"]),
        "session_length_all": ks_row(real["table"]["length"], table["length"]),
        "session_duration_all": ks_row(real["table"]["duration_s"], table["duration_s"]),
    }
    out["bands"] = bands(real["uncensored"], uncensored)
    return out


def bands(real: pd.DataFrame, other: pd.DataFrame) -> list[dict[str, Any]]:
    """Per session-length band, real vs other (uncensored sessions of each side): sessions,
    median duration, mean think (the band's pauses ÷ its pauses' count) and duration KS."""
    out = []
    for lo, hi in BANDS:
        row: dict[str, Any] = {"band": f"{lo}-{hi}" if hi < 10**9 else f"{lo}+"}
        for side, frame in (("real", real), ("other", other)):
            part = frame[(frame["length"] >= lo) & (frame["length"] <= hi)]
            paused = int((part["length"] - 1).sum())
            row[side] = {
                "sessions": len(part),
                "median_duration_s": round(float(part["duration_s"].median()), 3)
                if len(part)
                else None,
                "mean_think_s": round(float(part["pauses_s"].sum() / paused), 4)
                if paused
                else None,
            }
        real_part = real[(real["length"] >= lo) & (real["length"] <= hi)]
        other_part = other[(other["length"] >= lo) & (other["length"] <= hi)]
        row["duration"] = ks_row(real_part["duration_s"], other_part["duration_s"])
        out.append(row)
    return out


def real_latency(
    real: dict[str, Any], endpoints: list[str], rng: np.random.Generator
) -> np.ndarray:
    """A response time (s) per request, drawn from the real ones of its endpoint (all
    endpoints' when the real trace has none of it)."""
    pools = real["latency"]
    return np.array([rng.choice(pools.get(e, real["latency_all"])) for e in endpoints])


def synthetic_shape(model: dict[str, Any], real: dict[str, Any], scale: int, seed: int) -> dict:
    """The model's own synthetic sessions (no replay) over the real span vs the real ones.
    A synthesized session has pauses only; a real one's duration (first to last request
    start) also holds the response times of all but its last request, so each request
    is given a response time drawn from the real ones of its endpoint (all endpoints'
    when the trace has none of it), seeded, and the session's later requests start that
    much later (`session_duration_pauses`: without them). Uncensored on both sides: each
    synthetic session is cut at the real trace's end and judged by the real trace's
    censoring rule (first request within the threshold of the start, last within it of
    the end), so both samples are selected alike."""
    sample = synthetic_sample(model, real, scale, seed)
    table = sample["table"]
    out = shape_rows(real, sample["think"], table, sample["uncensored"], scale)
    out["session_duration_pauses"] = ks_row(
        real["uncensored"]["duration_s"], table.loc[~table["cut"], "pauses_s"]
    )
    out["sessions"] = sample["sessions"]
    return out


def synthetic_sample(
    model: dict[str, Any], real: dict[str, Any], scale: int, seed: int
) -> dict[str, Any]:
    """synthetic_shape's samples: every pause (`think`), every session (`table`, with
    `cut`), and the sessions as seen within the real span, uncensored (`uncensored`)."""
    synth = Synthesizer(model, seed)
    starts = synth.session_starts(scale, None, speed=1.0, process="stratified")
    first, last = real["span"]
    threshold = real["threshold_s"]
    rng = np.random.default_rng([seed, 11])
    think: list[float] = []
    rows = []
    for i, start in enumerate(starts):
        drawn = synth.session_requests(i, float(start))
        paused = np.array([r.record.ts.timestamp() for r in drawn]) - synth.start.timestamp()
        answer = real_latency(real, [r.endpoint for r in drawn], rng)
        t = paused + np.concatenate([[0.0], np.cumsum(answer[:-1])])
        think.extend(np.diff(paused).tolist())
        seen = t[t <= last]
        if len(seen):
            cut = bool(last - seen[-1] < threshold or seen[0] - first < threshold)
            rows.append((seen[0], len(t), t[-1] - t[0], cut, len(seen), seen[-1] - seen[0],
                         paused[-1] - paused[0], paused[len(seen) - 1] - paused[0]))  # fmt: skip
    columns = ["start_s", "length", "duration_s", "cut", "seen_length", "seen_duration_s",
               "pauses_s", "seen_pauses_s"]  # fmt: skip
    table = pd.DataFrame(rows, columns=columns)
    window = table.assign(length=table["seen_length"], duration_s=table["seen_duration_s"],
                          pauses_s=table["seen_pauses_s"])  # fmt: skip
    uncensored = window[~window["cut"]]
    return {"think": np.asarray(think), "table": table, "uncensored": uncensored,
            "sessions": len(starts)}  # fmt: skip


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
         str(accounts), "--force", *(["--profile", args.profile] if args.profile else [])],
        capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    row = summary_row(out)
    row["exit"] = done.returncode
    row["seconds"] = round(time.monotonic() - started, 1)
    text = " ".join(done.stderr.split())
    row["final_line"] = text[text.rfind("sessions ") :] if "sessions " in text else text[-300:]
    return row


def summary_row(out: Path) -> dict[str, Any]:
    """A run's summary.json figures (planned = offered_rps ÷ real_rps)."""
    s = json.loads((out / "summary.json").read_text())
    keep = ("sessions_planned", "sessions_started", "sessions_completed", "sessions_cut",
            "sessions_skipped", "sessions_login_failed", "requests", "failures", "window_s",
            "offered_rps", "achieved_rps", "real_rps", "achieved_scale")  # fmt: skip
    row: dict[str, Any] = {k: s.get(k) for k in keep}
    row["planned_scale"] = round(s["offered_rps"] / s["real_rps"], 4) if s.get("real_rps") else None
    row["start_lateness_p99_ms"] = s["start_lateness_ms"]["p99"]
    return row


def replay_shape(
    real: dict[str, Any], run: Path, scale: int, model: dict[str, Any], seed: int,
    profile: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The replayed sessions (those cut at the run's end left out, as compare does) vs
    the real ones; replayed sessions are never censored by a capture's edges. With
    `think_fair`: the same think time with the real side weighted to leave out the kind
    of pauses the replay side loses (bench/held_back.py), beside the plan's figures."""
    summary = json.loads((run / "summary.json").read_text())
    templater = Templater.from_json(real["templates"])
    replayed = sessionize(add_endpoints(load_requests(run / "replayed"), templater, params=False))
    cut = set(summary.get("sessions_cut_keys") or ())
    kept = replayed[~replayed["session_key"].isin(cut)].copy()
    # A pause before a request that follows one the safety rules held back spans two
    # real pauses: not a think time of the real kind (3-7 % on the mean at 5-10x).
    spans = pauses_over_skips(run / "replayed", kept)
    if spans is None:
        spans = np.zeros(len(kept), bool)
    kept.loc[spans, "think_s"] = np.nan
    table = session_table(kept)
    table["pauses_s"] = kept.groupby("session_id", sort=True)["think_s"].sum().to_numpy()
    # The run plays the first window_s of the curve: its arrivals are judged against the
    # real arrivals of that window, not of the whole capture (a ramp-up is slower).
    window = float(summary.get("window_s") or np.inf)
    early = {**real, "starts": real["starts"][real["starts"] < window]}
    think = kept["think_s"].dropna().to_numpy(float)
    out = shape_rows(early, think, table, table, scale)
    # The target's latency is not the captured backend's (another host, its load): the
    # replayed sessions' pauses with real response times, as the synthetic rows have.
    ids = kept["session_id"].to_numpy()
    answer = real_latency(real, kept["endpoint"].astype(str).tolist(), np.random.default_rng(11))
    last = np.r_[ids[1:] != ids[:-1], True]
    gaps = np.nan_to_num(kept["think_s"].to_numpy(float)) + np.where(last, 0.0, answer)
    durations = pd.Series(gaps).groupby(ids).sum().to_numpy()
    out["session_duration_real_latency"] = ks_row(real["uncensored"]["duration_s"], durations)
    out["cut_left_out"] = len(cut)
    out["pauses_over_skips_left_out"] = int(spans.sum())
    out["think_fair"] = think_fair(real, run, scale, (model, seed, profile), cut, think)
    return out


def think_fair(real: dict[str, Any], run: Path, scale: int,
               source: tuple[dict[str, Any], int, str | None], cut: set[str],
               think: np.ndarray) -> dict[str, Any]:  # fmt: skip
    """The run's plan made again (as its replay made it: same model, N, window, seed,
    profile) and what timing.parquet says it sent, scored by held_back.fair_think."""
    model, seed, profile = source
    summary = json.loads((run / "summary.json").read_text())
    plan = plan_from_model(model, scale=scale, duration_s=summary.get("duration_s"), seed=seed,
                           profile=profile)  # fmt: skip
    sent = pq.read_table(run / "timing.parquet", columns=["session", "seq", "endpoint"])
    left_out = [int(k.removeprefix("replay:")) for k in cut]
    out = fair_think(real, plan.sessions, sent.to_pandas(), left_out, think)
    if "error" not in out:
        weights = out.pop("real_weights")
        sessions = len(real["table"])
        out["boot"] = boot_floor(real, weights, sessions, scale, BOOT_ROUNDS, seed)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", type=Path)
    parser.add_argument("--minutes", default="75s", help="capture length without --trace")
    parser.add_argument("--users", default="24")
    parser.add_argument("--scales", default="1,5", help="replayed scales")
    parser.add_argument("--model-scales", default="1,5,10", help="synthesized (no replay)")
    parser.add_argument("--seeds", default="1,2,3", help="of the synthesized sessions")
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--duration", default="60s")
    parser.add_argument("--seed", type=int, default=1, help="of the replays")
    parser.add_argument("--profile", help="replay --profile (soak: N x the mean rate)")
    parser.add_argument("--no-replay", action="store_true", help="model-only figures")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--work", type=Path, help="keep the model and runs here")
    parser.add_argument("--rescore", type=Path, metavar="WORKDIR",
                        help="score a --work dir's runs again (model.json, run-*x-*p/; --trace, "
                        "--seed, --profile as replayed); no model, no replay")  # fmt: skip
    args = parser.parse_args()
    if args.rescore:
        return rescore(args)
    results: dict[str, Any] = {"runs": [], "synthetic": []}
    with tempfile.TemporaryDirectory(prefix="bench_scale-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        trace = args.trace or capture(work, args.minutes, args.users)
        model_data = build_model(trace)
        model = write_model(model_data, work / "model.json")
        timeout_s = float(model_data["sessions"]["timeout_s"])
        real = real_shape(trace, timeout_s, model_data["templates"])
        results["trace"] = str(trace)
        results["real"] = {
            "sessions": len(real["table"]),
            "uncensored": len(real["uncensored"]),
            "censored": model_data["sessions"]["censored"],
            "think_mean_s": round(float(real["think"].mean()), 4),
        }
        print(json.dumps(results["real"]), flush=True)
        for n in (int(x) for x in args.model_scales.split(",")):
            for seed in (int(x) for x in args.seeds.split(",")):
                row = {"scale": n, "seed": seed, **synthetic_shape(model_data, real, n, seed)}
                results["synthetic"].append(row)
                print(json.dumps(row), flush=True)
        scales = [int(s) for s in args.scales.split(",")]
        results["planned_over_n_real"] = planned(model_data, sorted({*scales, 10}), range(1, 4))
        print(json.dumps({"planned_over_n_real": results["planned_over_n_real"]}), flush=True)
        if not args.no_replay:
            replays(args, work, trace, model, real, results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


def replays(args: argparse.Namespace, work: Path, trace: Path, model: Path,
            real: dict[str, Any], results: dict[str, Any]) -> None:  # fmt: skip
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
                model_data = load_model(model)
                row.update(replay_shape(real, out, scale, model_data, args.seed, args.profile))
                results["runs"].append(row)
                print(json.dumps(row), flush=True)


def rescore(args: argparse.Namespace) -> int:
    """Each run of a --work dir scored again against --trace, from files only."""
    if args.trace is None:
        print("--rescore needs --trace (the trace the runs were replayed from)", file=sys.stderr)
        return 2
    model = load_model(args.rescore / "model.json")
    real = real_shape(args.trace, float(model["sessions"]["timeout_s"]), model["templates"])
    results: dict[str, Any] = {"trace": str(args.trace), "rescored": str(args.rescore),
                               "real": {"sessions": len(real["table"])}, "runs": []}  # fmt: skip
    runs = sorted(args.rescore.glob("run-*x-*p"), key=lambda p: int(p.name[4:].split("x")[0]))
    for out in runs:
        scale, processes = (int(x) for x in out.name[4:-1].split("x-"))
        row = {"scale": scale, "processes": processes, **summary_row(out)}
        row.update(replay_shape(real, out, scale, model, args.seed, args.profile))
        results["runs"].append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
