"""How close a synthetic or replayed trace (OTHER) is to a real one (REAL): the numbers of
`tracereplay compare`, their verdicts and their compare.json form.

Definitions (both traces sessionized alike; endpoints from a templater fitted on REAL):
- Jensen-Shannon divergence: `scipy.spatial.distance.jensenshannon(p, q, base=2) ** 2`,
  i.e. the squared JS distance, in [0, 1]; its p-value is the chi-square test of the two
  count tables.
- `max_share_error`: max over endpoints of |share_real - share_other|, in share units.
- KS: the two-sample statistic D of `scipy.stats.ks_2samp`, with its p-value.
- Scale N: given, else estimated as other sessions/s over real sessions/s (each over its
  own trace span), rounded to 2 significant digits.
- Interarrival: gaps between consecutive session starts; OTHER's gaps are multiplied by N
  because N times more sessions arrive N times closer together.
- Arrival rate: session starts per second on the bucket grid of REAL's `fit_arrivals`;
  OTHER's starts are its sessions' first requests as sent (a replay), or as planned (a
  synthetic trace: nothing was sent; `arrival_rate.source` says which); OTHER's curve
  divided by N; MAPE (buckets where REAL > 0) over the whole buckets both traces cover.
- Think time: the sessions' `think_s` (NaN dropped); session length in requests, duration
  from first to last request start. Sessions a replay cut (run_summary.py) are left out
  of length and duration: a cut session says how long the run was, not the model.
  Sessions a capture's edges cut (`models.session_shape.censoring`, the rule the model
  learns with: REAL's, and OTHER's when it is a capture, not a replay or a synthesis)
  are right-censored there: length and duration compare the two Kaplan-Meier estimates
  (`measures.km_ks`), so REAL's long sessions that ran past the capture's end neither
  count as ended where the capture stopped nor are dropped (which would favour short
  ones); without censored sessions that is plain KS.
- Status mix: shares of exact status codes ("none" when no response came).
- Errors, as users count them: `error_rate` = status >= 400, a transport error or no
  response; `client_error_rate` = 4xx; `server_error_rate` = 5xx, transport error or none.
- A synthetic OTHER (no status, no error anywhere) has null status mix, error rates and
  latency, with a reason: never zero.
- Burstiness: `dispersion_index` of session starts per window, as in the model file;
  OTHER's per-window counts are divided by N first (`other_scaled` = its index ÷ N), so a
  trace of N times the sessions with the same shape has the same value.
Verdicts (pass / noise / fail), noise floors and goals: verdicts.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tracereplay.allocator import give_back_freed
from tracereplay.errors import TraceEmptyError, UsageError
from tracereplay.models.arrivals import DISPERSION_WINDOWS_S, MIN_WINDOWS, fitted_bucket_s
from tracereplay.models.frame import LIGHT_COLUMNS
from tracereplay.models.session_shape import censoring
from tracereplay.models.sessions import DEFAULT_SESSION_TIMEOUT_S, session_table, sessionize
from tracereplay.models.templating import Templater, add_endpoints

from .bindings import Learned, learned_from_frame, learned_from_trace
from .columns import read_pair, read_sessionized, read_sessionized_rows
from .measures import (
    NO_STATUS,
    PLANNED_STARTS,
    SENT_STARTS,
    ArrivalComparison,
    Json,
    MixComparison,
    RequestTables,
    SampleComparison,
    arrival_rate,
    dispersion,
    error_rates,
    estimate_scale,
    km_ks,
    ks,
    latency_of,
    mix,
    per_s,
    responded,
    round_floats,
    span_s,
    status_by_endpoint_of,
)
from .run_summary import Load, achieved_load, cut_session_keys, read_run_summary, session_ids_of
from .slo import Slo, SloResult, evaluate_slos, needs_binding, slo_json
from .statuses import STATUS_LABEL, status_column, status_labels, status_values
from .verdicts import (
    KS_METRICS,
    NOISE_SESSIONS,
    ROUNDS,
    SEED,
    Goals,
    HalfNoise,
    Judgement,
    judge_metrics,
    load_goals,
    sample_noise,
    worst,
)

COMPARE_COLUMNS = [*LIGHT_COLUMNS, "error", "conn"]
"""What the measures, verdicts, SLOs and the report read of each trace (`conn`: where a
key whose requests all failed auth joins its connection's next key, as `sessionize` does
for the model; columns.py reads it only when some key did)."""
FIDELITY_GOALS: dict[str, float] = dict(load_goals().goals)
"""The default goals (default_goals.toml), by compare.json key."""
ERROR_KEYS = ("error_rate", "client_error_rate", "server_error_rate")


@dataclass(frozen=True)
class CompareResult:
    """Everything `compare` measured and judged; `to_json` is the compare.json document."""

    requests: tuple[int, int]
    sessions: tuple[int, int]
    scale: float
    scale_estimated: bool
    endpoint_mix: MixComparison
    session_length: SampleComparison
    session_duration: SampleComparison
    think_time: SampleComparison
    interarrival: SampleComparison
    arrival_rate: ArrivalComparison
    status_mix: MixComparison
    burstiness: tuple[tuple[float, float | None, float | None], ...]
    latency_ms: Json
    errors: tuple[Mapping[str, float], Mapping[str, float] | None]
    throughput_rps: tuple[float | None, float | None]
    status_by_endpoint: tuple[Json, ...] = ()
    load: Load | None = None
    cut: Json = field(default_factory=dict)
    """OTHER's sessions a replay cut: count, how they were found, left out of the shape."""
    judgements: Mapping[str, Judgement] = field(default_factory=dict)
    goals: Goals = field(default_factory=load_goals)
    slo_results: tuple[SloResult, ...] | None = None
    """OTHER's requests against the SLOs, when some were given."""
    bound_from: str | None = None
    """Where the SLO classes' endpoints were learned (the real trace, or its model)."""
    noise_sessions: int | None = None
    """Real sessions the noise floor's halves split when a bounded sample (None: all)."""

    @property
    def slo(self) -> Json | None:
        return None if self.slo_results is None else slo_json(self.slo_results)

    @property
    def slo_passed(self) -> bool | None:
        return None if self.slo is None else self.slo.get("passed")

    def metric_values(self) -> dict[str, float | None]:
        """The values verdicts are given to, by compare.json key."""
        return {
            "endpoint_mix.jsd": self.endpoint_mix.jsd,
            "status_mix.jsd": self.status_mix.jsd,
            "session_length.ks": self.session_length.ks,
            "session_duration.ks": self.session_duration.ks,
            "think_time.ks": self.think_time.ks,
            "interarrival.ks": self.interarrival.ks,
            "arrival_rate.mape": self.arrival_rate.mape,
        }

    def verdicts(self) -> dict[str, str | None]:
        """Per metric with a goal: "pass", "noise", "fail", or None (not computable)."""
        return {m: j.verdict for m, j in self.judgements.items() if j.goal is not None}

    def fidelity(self) -> dict[str, bool | None]:
        """Per goal: True on pass, False on fail, None on noise or no value."""
        return {m: {"pass": True, "fail": False}.get(v or "") for m, v in self.verdicts().items()}

    @property
    def fidelity_verdict(self) -> str | None:
        """fail if any metric fails, else noise if any is noise, else pass; None: none."""
        return worst(self.verdicts().values())

    @property
    def fidelity_passed(self) -> bool | None:
        """False when a metric fails, True when every judged one passes, else None."""
        return {"pass": True, "fail": False}.get(self.fidelity_verdict or "")

    @property
    def verdict(self) -> str | None:
        """The whole comparison: fidelity's verdict, made fail by a failed SLO."""
        slo = None if self.slo_passed is None else ("pass" if self.slo_passed else "fail")
        return worst([self.fidelity_verdict, slo])

    @property
    def failed(self) -> bool:
        """What makes `compare` exit 1: a FAIL (never a NOISE)."""
        return self.verdict == "fail"

    def to_json(self) -> Json:
        judged = {m: j.to_json() for m, j in self.judgements.items()}
        errors = {
            k: {"real": self.errors[0][k], "other": _get(self.errors[1], k)} for k in ERROR_KEYS
        }
        doc: Json = {
            "verdict": self.verdict,
            "requests": {"real": self.requests[0], "other": self.requests[1]},
            "sessions": {"real": self.sessions[0], "other": self.sessions[1]},
            "scale": self.scale,
            "scale_source": "estimated" if self.scale_estimated else "given",
            "endpoint_mix": self.endpoint_mix.to_json("worst_endpoint"),
            "session_length": self.session_length.to_json(),
            "session_duration": self.session_duration.to_json(),
            "think_time": self.think_time.to_json(),
            "interarrival": self.interarrival.to_json(),
            "arrival_rate": self.arrival_rate.to_json(self.scale),
            "status_mix": self.status_mix.to_json("worst_status"),
            "status_by_endpoint": list(self.status_by_endpoint),
            "burstiness": {
                f"{window:g}s": {
                    "real": real,
                    "other": other,
                    "other_scaled": None if other is None else other / self.scale,
                }
                for window, real, other in self.burstiness
            },
            "latency_ms": self.latency_ms,
            "errors": {
                **errors,
                "reason": None if self.errors[1] is not None else NO_STATUS,
            },
            "throughput_rps": {"real": self.throughput_rps[0], "other": self.throughput_rps[1]},
            "load": self.load.to_json() if self.load is not None else None,
            "cut_sessions": dict(self.cut),
            "fidelity": {
                "goal": dict(self.goals.goals),
                "alpha": self.goals.alpha,
                "goals_source": self.goals.source,
                "value": self.metric_values(),
                "verdict": {m: j.verdict for m, j in self.judgements.items()},
                "noise_floor": {m: j.noise_floor for m, j in self.judgements.items()},
                "pvalue": {m: j.pvalue for m, j in self.judgements.items()},
                "sessions_needed": {m: j.sessions_needed for m, j in self.judgements.items()},
                "passed": self.fidelity(),
                "all_passed": self.fidelity_passed,
                "overall": self.fidelity_verdict,
                "bootstrap": self._bootstrap(),
            },
            "slo": (
                {**self.slo, "bound_from": self.bound_from}
                if self.slo is not None
                else {"passed": None, "checked": False}
            ),
        }
        for metric, part in judged.items():
            section = doc[metric.split(".")[0]]
            section.update(part)
        rounded: Json = round_floats(doc)
        return rounded

    def _bootstrap(self) -> Json:
        doc: Json = {"rounds": ROUNDS, "seed": SEED, "split": "real sessions in halves"}
        if self.noise_sessions is not None:
            doc["split"] = (
                f"a seeded sample of {self.noise_sessions} of the {self.sessions[0]} real "
                "sessions in halves; floors at the sample's size (never below the whole's)"
            )
            doc["sample_sessions"] = self.noise_sessions
        return doc


def _get(mapping: Mapping[str, float] | None, key: str) -> float | None:
    return None if mapping is None else mapping[key]


def compare_frames(
    real: pd.DataFrame,
    other: pd.DataFrame,
    *,
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
    templater: Templater | None = None,
    **kw: Any,
) -> CompareResult:
    """Compare two request frames (from `load_requests`). Endpoints of both come from a
    templater fitted on REAL, so they line up; `scale` defaults to an estimate."""
    for name, frame in (("real", real), ("other", other)):
        if frame.empty:
            raise TraceEmptyError(f"{name}: the trace holds no requests")
    _check_scale(kw.get("scale"))
    real_s, other_s = sessionized_pair(
        real, other, templater=templater, session_timeout_s=session_timeout_s
    )
    return compare_sessionized(real_s, other_s, session_timeout_s=session_timeout_s, **kw)


def sessionized_pair(
    real: pd.DataFrame,
    other: pd.DataFrame,
    *,
    templater: Templater | None = None,
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two request frames with endpoints and sessions, endpoints from a templater fitted
    on REAL unless one is given: what `compare_sessionized` and the report take."""
    if templater is None:
        methods = real["method"].astype(str).str.upper()
        counts = real.groupby([methods, real["path"].fillna("/").astype(str)], sort=False).size()
        keys = zip(counts.index.get_level_values(0), counts.index.get_level_values(1), strict=True)
        found = zip(keys, counts.to_numpy().tolist(), strict=True)
        templater = Templater.fit_counts({(str(m), str(p)): int(n) for (m, p), n in found})
    frames = []
    for requests in (real, other):
        frame = sessionize(add_endpoints(requests, templater, params=False), session_timeout_s)
        frames.append(frame.assign(**{STATUS_LABEL: status_column(status_values(frame))}))
    return frames[0], frames[1]


def load_pair(real_path: Path, other_path: Path, **kw: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What `sessionized_pair` gives of two trace directories, reading only
    `COMPARE_COLUMNS` as codes (columns.py)."""
    return read_pair(real_path, other_path, **kw)


def _check_scale(scale: float | None) -> None:
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise UsageError(f"scale must be a positive number, not {scale}")


def compare_sessionized(
    real_s: pd.DataFrame,
    other_s: pd.DataFrame,
    *,
    scale: float | None = None,
    slos: Sequence[Slo] | None = None,
    enable_slos: Sequence[str] = (),
    goals: Goals | None = None,
    run_summary: Mapping[str, Any] | None = None,
    learned: Learned | None = None,
    rounds: int = ROUNDS,
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
    noise_sessions: int = NOISE_SESSIONS,
    real_noise: RealNoise | None = None,
    real: RealSessions | None = None,
) -> CompareResult:
    """`compare_frames` on frames `sessionized_pair` made (so a caller that also renders
    the report reads and sessionizes each trace once). `run_summary` is the replay's
    summary.json (achieved load, cut sessions); `learned` what SLO classes bind to
    (default: learned from REAL when an SLO needs it); `session_timeout_s` the one the
    frames were sessionized with (it caps the edges' censoring threshold); `noise_sessions`
    how many real sessions at most the noise floor's halves split (verdicts.py);
    `real_noise`: `noise_of_real(real_s)`, `real`: `RealSessions.of(real_s)`, when the
    caller computed them already."""
    _check_scale(scale)
    goals = goals or load_goals()
    real = real or RealSessions.of(real_s, session_timeout_s)
    tables = real.tables or RequestTables.of(real_s)
    real_t, other_t = real.table, session_table(other_s)
    real_span, other_span = span_s(real_s), span_s(other_s)
    n = scale or estimate_scale(len(real_t), real_span, len(other_t), other_span)
    starts_r = np.sort(real_t["start_s"].to_numpy(float))
    starts_o = np.sort(other_t["start_s"].to_numpy(float))
    has_status = responded(other_s)
    starts_source = SENT_STARTS if has_status else PLANNED_STARTS
    cut_keys, cut_how = cut_session_keys(other_s, run_summary) if has_status else ((), None)
    cut_ids = session_ids_of(other_s, cut_keys)
    kept = ~other_t.index.isin(sorted(cut_ids))
    kept_o = other_t[kept]
    real_cut = real.censored
    # A replay's sessions run whole or are cut (left out above); a synthesis's are whole.
    other_is_capture = has_status and run_summary is None
    other_cut = (
        censoring(other_s, session_timeout_s).any[kept]
        if other_is_capture
        else np.zeros(int(kept.sum()), bool)
    )
    throughput = (per_s(len(real_s), real_span), per_s(len(other_s), other_span))
    if slos is not None and learned is None and needs_binding(slos):
        learned = learned_from_frame(real_s)
    result = CompareResult(
        requests=(len(real_s), len(other_s)),
        sessions=(len(real_t), len(other_t)),
        scale=n,
        scale_estimated=scale is None,
        endpoint_mix=mix(real_s["endpoint"].map(str), other_s["endpoint"].map(str)),
        session_length=km_ks(real_t["length"], real_cut, kept_o["length"], other_cut),
        session_duration=km_ks(real_t["duration_s"], real_cut, kept_o["duration_s"], other_cut),
        think_time=ks(real_s["think_s"], other_s["think_s"]),
        interarrival=ks(np.diff(starts_r), np.diff(starts_o) * n),
        arrival_rate=arrival_rate(starts_r, real_span, starts_o, other_span, n, starts_source),
        status_mix=(
            mix(status_labels(real_s), status_labels(other_s))
            if has_status
            else mix(status_labels(real_s), None, NO_STATUS)
        ),
        burstiness=tuple(
            (w, dispersion(starts_r, real_span, w), dispersion(starts_o, other_span, w))
            for w in DISPERSION_WINDOWS_S
            if max(real_span, other_span) >= MIN_WINDOWS * w
        ),
        latency_ms=latency_of(tables.latency, other_s),
        errors=(tables.error_rates, error_rates(other_s) if has_status else None),
        throughput_rps=throughput,
        status_by_endpoint=tuple(
            status_by_endpoint_of(tables.statuses, other_s if has_status else None)
        ),
        load=achieved_load(run_summary, n, throughput) if has_status else None,
        cut={
            "count": len(cut_ids),
            "how": cut_how,
            "session_keys": list(cut_keys),
            "skipped": (run_summary or {}).get("sessions_skipped") if has_status else None,
            "left_out_of": ["session_length", "session_duration"] if cut_ids else [],
        },
        goals=goals,
        slo_results=(
            tuple(evaluate_slos(slos, other_s, enable=enable_slos, learned=learned))
            if slos is not None
            else None
        ),
        bound_from=learned.source if learned is not None else None,
    )
    if real_noise is None:
        real_noise = noise_of_real(
            real_s, real, rounds=rounds, noise_sessions=noise_sessions
        )  # fmt: skip
    noise, sampled = real_noise
    # The halves count statuses and arrivals whatever OTHER is: dropped when OTHER has no
    # status, or no rate curve (a trace spans no time), as if never drawn (the draws do
    # not depend on what is counted).
    if not has_status:
        noise = {m: h for m, h in noise.items() if m != "status_mix.jsd"}
    if result.arrival_rate.bucket_s is None:
        noise = {m: h for m, h in noise.items() if m != "arrival_rate.mape"}
    judgements = _judgements(result, noise, goals, len(real_t))
    return replace(result, judgements=judgements, noise_sessions=sampled)


RealNoise = tuple[dict[str, HalfNoise], int | None]
"""The noise floors of REAL's halves, and how many sessions they split when a bounded
sample of them (None: all)."""


@dataclass(frozen=True)
class RealSessions:
    """What the measures and the noise floor both read of REAL's sessions, computed once:
    the session table and which sessions the capture's edges cut (`censoring`)."""

    table: pd.DataFrame
    censored: np.ndarray
    tables: RequestTables | None = None
    """REAL's error rates, status mix per endpoint and latency quantiles, when computed
    before its `status`, `error` and `duration_ms` columns were let go (`read_compared`)."""

    @classmethod
    def of(cls, real_s: pd.DataFrame, session_timeout_s: float) -> RealSessions:
        return cls(session_table(real_s), censoring(real_s, session_timeout_s).any)


def let_go_of_tabled(real_s: pd.DataFrame) -> list[str]:
    """Delete from REAL's frame the columns only `RequestTables` reads of it (`status`,
    `error`; `duration_ms` when no request has one: the report draws no latency of a side
    without it), once the tables are computed; which were deleted."""
    names = [c for c in ("status", "error") if c in real_s.columns]
    if "duration_ms" in real_s.columns and not real_s["duration_ms"].notna().any():
        names.append("duration_ms")
    for name in names:
        del real_s[name]
    return names


def noise_of_real(
    real_s: pd.DataFrame,
    real: RealSessions | None = None,
    *,
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
    rounds: int = ROUNDS,
    noise_sessions: int = NOISE_SESSIONS,
) -> RealNoise:
    """`half_noise` of REAL alone (`real`: its sessions, when the caller has them): what
    `compare_sessionized` judges by, computable before OTHER is read. Statuses are
    counted, and arrivals on the bucket grid `arrival_rate` fits on REAL, whatever OTHER
    turns out to be (compare_sessionized drops what OTHER cannot be judged by)."""
    real = real or RealSessions.of(real_s, session_timeout_s)
    span = span_s(real_s)
    starts = np.sort(real.table["start_s"].to_numpy(float))
    bucket_s = fitted_bucket_s(starts, span) if span > 0 else None
    del starts
    # The sample is let go once sorted: it is not held through the 200 rounds, which run
    # beside OTHER's read (`read_compared`).
    return sample_noise(
        real_s, real.table, rounds=rounds, bucket_s=bucket_s, with_status=True,
        censored=real.censored, at_most=noise_sessions,
    )  # fmt: skip


def _judgements(
    result: CompareResult, noise: Mapping[str, HalfNoise], goals: Goals, real_sessions: int
) -> dict[str, Judgement]:
    """Each metric's verdict, judged at the comparison's own sample sizes."""
    mixes = {"endpoint_mix.jsd": result.endpoint_mix, "status_mix.jsd": result.status_mix}
    sizes = {m: (mix.real_n, mix.other_n) for m, mix in mixes.items()}
    pvalues = {m: mix.pvalue for m, mix in mixes.items()}
    sizes["arrival_rate.mape"] = result.sessions
    pvalues["arrival_rate.mape"] = result.arrival_rate.pvalue
    for name in KS_METRICS:
        part: SampleComparison = getattr(result, name)
        sizes[f"{name}.ks"] = (part.real_n, part.other_n)
        pvalues[f"{name}.ks"] = part.pvalue
    return judge_metrics(result.metric_values(), sizes, pvalues, noise, goals, real_sessions)


@dataclass(frozen=True)
class ReadPair:
    """Both traces sessionized, and what REAL's side of the comparison needs alone (its
    sessions, its noise floor), computed while OTHER was read: `compare_sessionized`'s
    `real` and `real_noise`."""

    real_s: pd.DataFrame
    """REAL's frame without `session_key` (let go once the SLO classes are bound); with
    `read_compared(lean=True)`, without what only `real.tables` reads (`let_go_of_tabled`)."""
    other_s: pd.DataFrame
    real: RealSessions
    real_noise: RealNoise
    learned: Learned | None = None
    """What the SLO classes bind to (`read_compared(bind=True)`)."""


def read_compared(
    real_path: Path,
    other_path: Path,
    *,
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
    rounds: int = ROUNDS,
    noise_sessions: int = NOISE_SESSIONS,
    bind: bool = False,
    lean: bool = False,
) -> ReadPair:
    """What `load_pair` gives (REAL's frame without `session_key`: `ReadPair`), with REAL's
    noise floor computed while OTHER is read on a thread (pyarrow's decoding and numpy's
    sorts run without the GIL): both at once. With `bind`, what the SLO classes bind to
    (`learned_from_trace`), from REAL's frame (its sessions, the scan positions of their
    rows: REAL is not read and sessionized again). With `lean`, REAL's error rates,
    status tables and latencies are computed first (`RealSessions.tables`) and the columns
    only they read let go (`let_go_of_tabled`): what `compare_sessionized` and the report
    are then given (`real`)."""
    real_s, templater, rows = read_sessionized_rows(real_path, None, session_timeout_s, bind)
    # Before OTHER's read, not beside nor after it: the sampled bodies' read (~0.4 GB at
    # 10 M requests) would add to what that read holds (bench/README.md, rounds 7 and 8).
    learned = (
        learned_from_trace(real_path, real_s, session_timeout_s=session_timeout_s, scan_rows=rows)
        if bind
        else None
    )
    del rows
    # Before OTHER's read: what REAL's censoring holds for a moment (copies of its times
    # and pauses) is not held beside what that read holds.
    real = RealSessions.of(real_s, session_timeout_s)
    # Nor REAL's session keys, which nothing reads after the binding (the measures, the
    # noise floor and the report read session ids; the sessions a replay cut are OTHER's):
    # at 10 M requests 1.06 M key strings and their codes, ~0.1 GB.
    del real_s["session_key"]
    if lean:
        # Nor what only REAL's error rates, status tables and latencies read (they need
        # nothing of OTHER): at 10 M requests 50 MB, 130 MB without durations.
        real = replace(real, tables=RequestTables.of(real_s))
        let_go_of_tabled(real_s)
    give_back_freed()  # what REAL's steps freed: OTHER's read would not reuse it
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="compare-other") as reader:
        reading = reader.submit(read_sessionized, other_path, templater, session_timeout_s)
        try:
            noise = noise_of_real(real_s, real, rounds=rounds, noise_sessions=noise_sessions)
        finally:
            other_s = reading.result()[0]
    return ReadPair(real_s, other_s, real, noise, learned)


def compare_traces(real_path: Path, other_path: Path, **kw: Any) -> CompareResult:
    """`compare_frames` over two trace directories, read as light columns (`read_compared`),
    with the replay's summary.json when OTHER is a replay's replayed/ trace, and the SLO
    classes bound by `learned_from_trace` when an SLO needs it."""
    _check_scale(kw.get("scale"))
    kw.setdefault("run_summary", read_run_summary(other_path))
    timeout = kw.pop("session_timeout_s", DEFAULT_SESSION_TIMEOUT_S)
    slos = kw.get("slos")
    binds = slos is not None and needs_binding(slos) and kw.get("learned") is None
    pair = read_compared(
        real_path, other_path, session_timeout_s=timeout, rounds=kw.get("rounds", ROUNDS),
        noise_sessions=kw.get("noise_sessions", NOISE_SESSIONS), bind=binds, lean=True,
    )  # fmt: skip
    if binds:
        kw["learned"] = pair.learned
    return compare_sessionized(
        pair.real_s, pair.other_s, session_timeout_s=timeout, real=pair.real,
        real_noise=pair.real_noise, **kw,
    )  # fmt: skip


def write_compare(result: CompareResult, out_dir: Path) -> Path:
    """Write out_dir/compare.json (pretty, sorted keys, 6 significant digits)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "compare.json"
    text = json.dumps(result.to_json(), indent=2, sort_keys=True, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path
