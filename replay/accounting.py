"""What a replay achieved, from what it sent: summary.json's figures and the final line.

One formula for one process and for P: requests sent within one common wall window — from
the run's time zero (every worker starts its shard on that one clock) for the plan's
window — divided by its length. The plan offered `offered_rps` over the same window (its
requests' planned send times, answers taken as instant); the real trace ran at `real_rps`
over the same stretch of its own clock (compressed by --speed); `achieved_scale` is
achieved ÷ real. Sessions are planned, started, completed, cut (still running when the
run ended: --grace after the last planned start) or skipped (never started). No locust
here: the runner, the CLI and tests share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from .plan import Plan


@dataclass
class SessionLog:
    """Per worker: sessions planned, started, how late, and how they ended."""

    planned: int = 0
    started: int = 0
    completed: int = 0
    login_failed: int = 0
    cut: int = 0
    failed: int = 0
    """Sessions that raised (each ends the run: see ReplayDriver)."""
    lateness_ms: list[float] = field(default_factory=list)
    zero_s: float = 0.0
    """Epoch seconds of the run's time zero (its sessions' start times count from it)."""
    window_s: float = 0.0
    """Wall seconds of the plan's window (starts in [zero, zero + window))."""
    offered: int = 0
    """Planned requests whose planned send time falls in the window."""
    cut_sessions: list[int] = field(default_factory=list)
    """Indices of the sessions cut."""

    def merge(self, data: Mapping[str, Any]) -> None:
        """Add one worker's `sessions.json` (as `asdict` wrote it)."""
        for key in ("planned", "started", "completed", "login_failed", "cut", "failed", "offered"):
            setattr(self, key, getattr(self, key) + int(data.get(key, 0)))
        self.lateness_ms.extend(float(v) for v in data.get("lateness_ms", []))
        self.cut_sessions.extend(int(v) for v in data.get("cut_sessions", []))
        zero = float(data.get("zero_s", 0.0))
        if zero > 0:  # one clock: every worker got the same zero (the earliest, if not)
            self.zero_s = min(self.zero_s, zero) if self.zero_s else zero
        self.window_s = max(self.window_s, float(data.get("window_s", 0.0)))


def offered_requests(plan: Plan) -> int:
    """Requests of `plan` planned to be sent within its window (answers taken as instant)."""
    count = 0
    for session in plan.sessions:
        t = session.start_s
        for seq, request in enumerate(session.requests):
            if seq:
                t += request.think_s
            if t >= plan.duration_s:
                break
            count += 1
    return count


def session_key(index: int) -> str:
    """The replayed trace's `session` value of planned session `index`."""
    return f"replay:{index:08d}"


def percentiles(values: np.ndarray) -> dict[str, float | None]:
    if not len(values):
        return {"p50": None, "p95": None, "p99": None}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "p99": round(float(p99), 3)}


def _column(timing: pa.Table, name: str) -> np.ndarray:
    return np.asarray(timing.column(name).to_numpy(zero_copy_only=False), dtype=float)


def summarize(
    timing: pa.Table, logs: SessionLog, duration_s: float, real_rps: float | None = None
) -> dict[str, Any]:
    """summary.json: the keys DESIGN.md lists, and a few more (see the module doc).

    `duration_s` is the plan's window in wall seconds (the workers' own, when they say).
    """
    requests = timing.num_rows
    ok = np.asarray(timing.column("ok").to_pylist(), dtype=bool) if requests else np.zeros(0)
    sent = _column(timing, "sent_s")
    window = logs.window_s or float(duration_s)
    zero = logs.zero_s or (float(sent.min()) if requests else 0.0)
    in_window = int(np.count_nonzero((sent >= zero) & (sent < zero + window))) if window else 0
    achieved = in_window / window if window > 0 else None
    offered = logs.offered / window if window > 0 else None
    timed_out, truncated = (
        sum(1 for v in timing.column(name).to_pylist() if v) if name in timing.column_names else 0
        for name in ("timed_out", "truncated")
    )
    p_late = percentiles(np.asarray(logs.lateness_ms, dtype=float))
    cut = max(logs.cut, len(logs.cut_sessions))
    return {
        "sessions_planned": logs.planned,
        "sessions_started": logs.started,
        "sessions_completed": logs.completed,
        "sessions_login_failed": logs.login_failed,
        "sessions_cut": cut,
        "sessions_cut_keys": [session_key(i) for i in sorted(logs.cut_sessions)],
        "sessions_failed": logs.failed,
        "sessions_skipped": max(0, logs.planned - logs.started),
        "requests": requests,
        "requests_in_window": in_window,
        "failures": int(requests - int(ok.sum())),
        "requests_timed_out": timed_out,
        "responses_truncated": truncated,
        "window_s": round(window, 3),
        "offered_rps": _round(offered),
        "achieved_rps": _round(achieved),
        "real_rps": _round(real_rps),
        "achieved_scale": _round(
            achieved / real_rps if achieved is not None and real_rps else None
        ),
        "duration_s": duration_s,
        "latency_ms": percentiles(_column(timing, "latency_ms")),
        "latency_intended_ms": percentiles(_column(timing, "latency_intended_ms")),
        "start_lateness_ms": {"p50": p_late["p50"], "p99": p_late["p99"]},
        "start_s": round(zero, 3) if zero else None,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def final_line(s: Mapping[str, Any], out: object) -> str:
    """The run in one line: what happened to the planned sessions, the load offered and
    achieved against the real rate, failures and latency."""
    skipped_requests = (
        (s.get("skipped") or {}).get("total") if isinstance(s.get("skipped"), dict) else None
    )
    sessions = (
        f"sessions {s['sessions_planned']} planned: {s['sessions_started']} started, "
        f"{s.get('sessions_completed', 0)} completed, {s['sessions_cut']} cut, "
        f"{s.get('sessions_skipped', 0)} skipped"
    )
    rates = f"offered {_rate(s.get('offered_rps'))}, achieved {_rate(s.get('achieved_rps'))}"
    window = s.get("window_s")
    if window:
        rates += f" over the {window:g} s window"
    if s.get("real_rps"):
        rates += f" (real {_rate(s['real_rps'])}: {s['achieved_scale']:g}×)"
    truncated = s.get("responses_truncated", 0)
    failures = (
        f"{s['requests']} requests, {s['failures']} failures ({s.get('requests_timed_out', 0)} "
        "timed out"
        + (f", {truncated} bodies cut at --max-body" if truncated else "")
        + (f", {skipped_requests} requests skipped" if skipped_requests else "")
        + ")"
    )
    latency = (
        f"latency p95 {s['latency_ms']['p95']} ms (from intended send "
        f"{s['latency_intended_ms']['p95']} ms), start lateness p99 "
        f"{s['start_lateness_ms']['p99']} ms"
    )
    return f"{sessions}; {rates}; {failures}; {latency} → {out}"


def _rate(value: object) -> str:
    return f"{value:,.1f} req/s" if isinstance(value, int | float) else "? req/s"
