"""Fidelity verdicts that know their sample size: the goals (default_goals.toml or
`--goals FILE`), the noise floor of each metric and the PASS / NOISE / FAIL rule.

Noise floor: the real trace's sessions are split at random into two halves, `ROUNDS`
times (seeded: the same trace gives the same floors), and each metric is computed between
the halves; the floor is the 95th percentile of those values, rescaled from the halves'
sample sizes (a, b) to the comparison's (n real, m other): × √((1/n + 1/m) / (1/a + 1/b))
for KS D and MAPE (their sampling noise shrinks as 1/√size), × (1/n + 1/m) / (1/a + 1/b)
for a JSD (which shrinks as 1/size). Whole sessions go to a half, so pauses and requests
that hang together within a session (a slow reader stays slow) widen the floor as they
should; a KS p-value, which assumes independent samples, cannot see that.

Bounded: past `NOISE_SESSIONS` real sessions the halves split a seeded sample of that many
sessions (`halves.sample_sessions`), not all of them, and the floor is taken at that
sample's size — REAL cut to the sample and OTHER in proportion: × (N / sample)^power over
the floor at the comparison's sizes. Noise shrinks as samples grow, so that floor is never
smaller than the one all N sessions would give (conservative: a value between the two is
NOISE, not FAIL), and it costs 200 rounds over the sample, not over N sessions.
`sessions_needed` extrapolates from the sample's size.

Verdict of a metric with a goal: PASS when value <= goal; else NOISE when the difference
cannot be told from sampling noise (value <= floor, or the test's p-value >= alpha: KS
p-value of `ks_2samp`, chi-square test of the count tables for a JSD, the per-bucket rate
test of `measures.rates_pvalue` for the arrival MAPE); else FAIL. `sessions_needed`: how
many real sessions (with OTHER as many times larger as now) would bring the floor, and
the KS critical value, down to the goal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tracereplay.allocator import give_back_freed
from tracereplay.config import parse_toml, read_config_text
from tracereplay.errors import ConfigError

from .halves import HalfArrivals, sample_sessions
from .kaplan_meier import SortedSample, ks_between, ks_d
from .measures import endpoint_codes, jsd
from .statuses import status_codes

DEFAULT_GOALS_NAME = "default_goals.toml"
KS_METRICS = ("session_length", "session_duration", "think_time", "interarrival")
METRICS = (
    "endpoint_mix.jsd", "status_mix.jsd", *(f"{m}.ks" for m in KS_METRICS), "arrival_rate.mape",
)  # fmt: skip
ROUNDS = 200
SEED = 0
NOISE_SESSIONS = 1 << 17
"""At most this many real sessions (131,072) are split into halves (module doc)."""
FLOOR_QUANTILE = 0.95
VERDICTS = ("pass", "noise", "fail")


# --- goals ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Goals:
    """The goal of each judged metric (absent: measured, not judged) and alpha."""

    goals: Mapping[str, float]
    alpha: float = 0.05
    source: str = "default"


def load_goals(path: Path | None = None) -> Goals:
    """The defaults, with `path`'s goals over them; ConfigError on anything unusable."""
    text, _ = read_config_text(
        None, label="goals file", package=__package__ or "", default_name=DEFAULT_GOALS_NAME
    )
    defaults = parse_goals(text, source="default")
    if path is None:
        return defaults
    text, source = read_config_text(
        path, label="goals file", package=__package__ or "", default_name=DEFAULT_GOALS_NAME
    )
    return parse_goals(text, source=source, base=defaults)


def parse_goals(text: str, *, source: str = "<string>", base: Goals | None = None) -> Goals:
    """Goals from TOML text over `base` (a metric set to false loses its goal)."""
    where = f"goals file {source}"
    raw = parse_toml(text, where)
    extra = sorted(set(raw) - {"version", "alpha", "goals"})
    if extra:
        raise ConfigError(f"{where}: unknown key {extra[0]!r} (want version, alpha and [goals])")
    if raw.get("version", 1) != 1:
        raise ConfigError(f"{where}: version {raw['version']!r} not supported (want 1)")
    alpha = raw.get("alpha", base.alpha if base else 0.05)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ConfigError(f"{where}: alpha must be a number between 0 and 1 (e.g. 0.05)")
    table = raw.get("goals", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: goals must be a table ([goals])")
    goals = dict(base.goals) if base else {}
    for metric, value in _flatten(table).items():
        if metric not in METRICS:
            raise ConfigError(f"{where}: unknown metric {metric!r} (known: {', '.join(METRICS)})")
        if value is False:
            goals.pop(metric, None)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: goals.{metric} must be a number or false")
        elif not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"{where}: goals.{metric} must be a finite number >= 0")
        else:
            goals[metric] = float(value)
    return Goals({m: goals[m] for m in METRICS if m in goals}, float(alpha), source)


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} → {"a.b": 1}: TOML reads a bare `a.b = 1` as a nested table."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        out.update(_flatten(value, f"{name}.") if isinstance(value, dict) else {name: value})
    return out


# --- one metric's verdict ---------------------------------------------------------------


@dataclass(frozen=True)
class Judgement:
    """A metric's value, what it was judged by, and the verdict (None: not judged)."""

    value: float | None
    goal: float | None
    noise_floor: float | None
    pvalue: float | None
    alpha: float
    verdict: str | None
    sessions_needed: int | None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "judged_by": {
                "goal": self.goal,
                "noise_floor": self.noise_floor,
                "pvalue": self.pvalue,
                "alpha": self.alpha,
                "sessions_needed": self.sessions_needed,
                "reason": self.reason,
            },
        }


def judge(
    value: float | None,
    goal: float | None,
    *,
    floor: float | None,
    pvalue: float | None,
    alpha: float,
    needed: int | None,
) -> Judgement:
    """The rule in the module docstring."""
    if value is None or goal is None:
        reason = "no value" if value is None else "no goal: measured, not judged"
        return Judgement(value, goal, floor, pvalue, alpha, None, needed, reason)
    if value <= goal:
        return Judgement(value, goal, floor, pvalue, alpha, "pass", needed)
    noise = []
    if floor is not None and value <= floor:
        noise.append(f"value <= noise floor {floor:.3g}")
    if pvalue is not None and pvalue >= alpha:
        noise.append(f"p = {pvalue:.3g} >= {alpha:g}")
    if noise:
        return Judgement(value, goal, floor, pvalue, alpha, "noise", needed, "; ".join(noise))
    return Judgement(value, goal, floor, pvalue, alpha, "fail", needed)


def judge_metrics(
    values: Mapping[str, float | None],
    sizes: Mapping[str, tuple[int, int]],
    pvalues: Mapping[str, float | None],
    noise: Mapping[str, HalfNoise],
    goals: Goals,
    real_sessions: int,
) -> dict[str, Judgement]:
    """Every metric judged, its floor taken at its own sample sizes (real, other)."""
    out = {}
    for metric in METRICS:
        half = noise.get(metric)
        floor = half.floor(*sizes[metric]) if half is not None else None
        goal = goals.goals.get(metric)
        power = 1.0 if metric.endswith(".jsd") else 0.5
        critical = ks_critical(*sizes[metric], goals.alpha) if metric.endswith(".ks") else None
        at = real_sessions * half.share if half is not None and half.share < 1.0 else None
        needed = sessions_needed(real_sessions, goal, floor, power, critical, floor_sessions=at)
        out[metric] = judge(
            values[metric], goal, floor=floor, pvalue=pvalues[metric], alpha=goals.alpha,
            needed=needed,
        )  # fmt: skip
    return out


def worst(verdicts: Any) -> str | None:
    """fail over noise over pass; None when nothing was judged."""
    judged = [v for v in verdicts if v in VERDICTS]
    return max(judged, key=VERDICTS.index) if judged else None


# --- noise floors -----------------------------------------------------------------------


@dataclass(frozen=True)
class HalfNoise:
    """A metric between two random halves of the real trace: the 95th percentile over the
    rounds, and the halves' mean sample sizes."""

    q95: float
    sizes: tuple[float, float]
    power: float
    """1/2 for KS and MAPE, 1 for JSD: how the noise scales with 1/size."""
    share: float = 1.0
    """The share of the real sessions the halves split (< 1: a bounded sample of them)."""

    def floor(self, n: int, m: int) -> float | None:
        """The floor at sample sizes n (real) and m (other); from a sample of the real
        sessions, at sizes cut to that sample's share (module doc: never smaller)."""
        a, b = self.sizes
        if min(n, m, a, b) <= 0:
            return None
        real, other = (n * self.share, m * self.share) if self.share < 1.0 else (n, m)
        return float(self.q95 * ((1 / real + 1 / other) / (1 / a + 1 / b)) ** self.power)


@dataclass(frozen=True)
class RealSample:
    """What the bootstrap needs of the real trace, one entry per session (sessions in
    `session_id` order) or per request."""

    session_of_request: np.ndarray
    """Index of each request's session (0..sessions-1)."""
    endpoint_codes: np.ndarray
    status_codes: np.ndarray | None
    think_s: np.ndarray
    length: np.ndarray
    duration_s: np.ndarray
    start_s: np.ndarray
    span_s: float
    bucket_s: float | None
    censored: np.ndarray | None = None
    """Per session, whether the capture's edges cut it (its length and duration are lower
    bounds: the halves compare their Kaplan-Meier estimates, as compare does)."""
    share: float = 1.0
    """These sessions' share of the trace's (< 1: a seeded sample of them, module doc)."""

    @classmethod
    def of(
        cls, real_s: pd.DataFrame, table: pd.DataFrame, *, bucket_s: float | None,
        with_status: bool, censored: np.ndarray | None = None,
        at_most: int = NOISE_SESSIONS, seed: int = SEED,
    ) -> RealSample:  # fmt: skip
        """The sample of `real_s` (sessions `table`): every session, or a seeded sample of
        `at_most` of them (`sample_sessions`) when there are more."""
        # session_table is indexed by session_id, 0.. in order: a request's id is its row.
        kept, share = sample_sessions(len(table), at_most, seed)
        pick = slice(None) if kept is None else kept
        owner = real_s["session_id"].to_numpy()
        if kept is not None:  # the sampled sessions' requests only, renumbered 0.. in order
            rows = kept[owner]
            real_s, owner = real_s[rows], (np.cumsum(kept) - 1)[owner[rows]]
        return cls(
            session_of_request=np.asarray(owner, np.int64),
            # Numbered in order of first use, as a factorize of the names would number them
            # (a part's status codes drop the labels it lacks: the same order of first use).
            endpoint_codes=pd.factorize(endpoint_codes(real_s)[0])[0],
            status_codes=pd.factorize(status_codes(real_s)[0])[0] if with_status else None,
            think_s=real_s["think_s"].to_numpy(float),
            length=table["length"].to_numpy(float)[pick],
            duration_s=table["duration_s"].to_numpy(float)[pick],
            start_s=table["start_s"].to_numpy(float)[pick],
            span_s=float(real_s["t_s"].max()),
            bucket_s=bucket_s,
            censored=None if censored is None else np.asarray(censored, bool)[pick],
            share=share,
        )


CHUNK = 10
"""Rounds whose halves are counted together (a CHUNK × sessions mask: bounded memory)."""


@dataclass(frozen=True)
class _Halves:
    """What the rounds of `half_noise` read of a `RealSample`, each sample sorted once: the
    per-request arrays the sample held (the request's session, endpoint and status codes,
    pause: ~40 MB at the 131,072-session bound) are not held through the rounds."""

    sessions: int
    shapes: dict[str, SortedSample]
    owned: dict[str, SortedSample | None]
    by_start: np.ndarray
    starts_sorted: np.ndarray
    arrivals: HalfArrivals | None
    share: float

    @classmethod
    def of(cls, sample: RealSample) -> _Halves:
        sessions = sample.length.size
        # Each sample is sorted once; a half is then a mask (kaplan_meier.py), no sort.
        shapes = {
            "session_length.ks": SortedSample.of(sample.length, sample.censored),
            "session_duration.ks": SortedSample.of(sample.duration_s, sample.censored),
        }
        # Per-request samples count by session: a half's counts are one sparse product.
        owner = sample.session_of_request
        think = SortedSample.of(sample.think_s, owner=owner, owners=sessions)
        endpoints = SortedSample.of(sample.endpoint_codes, owner=owner, owners=sessions)
        statuses = (
            SortedSample.of(sample.status_codes, owner=owner, owners=sessions)
            if sample.status_codes is not None
            else None
        )
        by_start = np.argsort(sample.start_s, kind="stable")
        arrivals = (
            HalfArrivals.of(sample.start_s, sample.span_s, sample.bucket_s)
            if sample.bucket_s
            else None
        )
        return cls(
            sessions, shapes, {"think": think, "endpoints": endpoints, "statuses": statuses},
            by_start, sample.start_s[by_start], arrivals, sample.share,
        )  # fmt: skip


def half_noise(sample: RealSample, rounds: int = ROUNDS, seed: int = SEED) -> dict[str, HalfNoise]:
    """Each metric between two random halves of the real sessions, `rounds` times."""
    if sample.length.size < 4:
        return {}
    return halves_noise(_Halves.of(sample), rounds, seed)


def sample_noise(
    real_s: pd.DataFrame, table: pd.DataFrame, *, rounds: int = ROUNDS, seed: int = SEED,
    **of: Any,
) -> tuple[dict[str, HalfNoise], int | None]:  # fmt: skip
    """`half_noise` of `RealSample.of(real_s, table, **of)`, with how many sessions the
    halves split when a bounded sample of them (None: all), the sample let go once its
    samples are sorted (what the rounds read: `_Halves`)."""
    sample = RealSample.of(real_s, table, **of)
    sampled = sample.length.size if sample.share < 1.0 else None
    if sample.length.size < 4:
        return {}, sampled
    halves = _Halves.of(sample)
    del sample
    # The sample and its sorts' temporaries, freed beside OTHER's read (`read_compared`),
    # which would not reuse them.
    give_back_freed()
    return halves_noise(halves, rounds, seed), sampled


def halves_noise(halves: _Halves, rounds: int = ROUNDS, seed: int = SEED) -> dict[str, HalfNoise]:
    """`half_noise`'s rounds over a sample's sorted samples."""
    sessions = halves.sessions
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {}
    sizes: dict[str, list[tuple[int, int]]] = {}

    def add(name: str, value: float | None, a: int, b: int) -> None:
        if value is not None and math.isfinite(value):
            values.setdefault(name, []).append(value)
            sizes.setdefault(name, []).append((a, b))

    shapes, owned = halves.shapes, halves.owned
    think, endpoints, statuses = owned["think"], owned["endpoints"], owned["statuses"]
    assert think is not None and endpoints is not None
    by_start, starts_sorted, arrivals = halves.by_start, halves.starts_sorted, halves.arrivals
    half = sessions // 2

    # The same draws in the same order as one round at a time, CHUNK rounds drawn at once:
    # a thread draws the next CHUNK's permutations (numpy shuffles without the GIL) while
    # this one counts the last's.
    def draw(count: int) -> list[np.ndarray]:
        return [rng.permutation(sessions)[:half] for _ in range(count)]

    with ThreadPoolExecutor(max_workers=1) as drawer:
        drawn = drawer.submit(draw, min(CHUNK, rounds))
        for first in range(0, rounds, CHUNK):
            parts = drawn.result()  # one draw at a time, on one thread: in order
            if first + CHUNK < rounds:
                drawn = drawer.submit(draw, min(CHUNK, rounds - first - CHUNK))
            in_chunk = np.zeros((len(parts), sessions), bool)
            for mask, part in zip(in_chunk, parts, strict=True):
                mask[part] = True
            for in_a, part in zip(in_chunk, parts, strict=True):
                # A round's counts per owned sample, one sparse product each: a product
                # of the chunk's rounds at once was a fresh (distinct values × CHUNK)
                # array (~0.1 GB for 1.2 M distinct pauses); a round's ~10 MB is reused.
                counted = {
                    k: s.owned_counts(in_a[None, :])[:, 0]
                    for k, s in owned.items()
                    if s is not None
                }
                # A session-level sample's half: one bincount over the half's sessions.
                for metric, shape in shapes.items():
                    add(metric, *ks_between(shape, None, counted=shape.counts_at(part)))
                add("think_time.ks", *ks_between(think, in_a, counted["think"]))
                in_a_by_start = in_a[by_start]
                starts = [starts_sorted[in_a_by_start], starts_sorted[~in_a_by_start]]
                add("interarrival.ks", *_ks(np.diff(starts[0]), np.diff(starts[1])))
                add("endpoint_mix.jsd", *_jsd(endpoints, counted["endpoints"]))
                if statuses is not None:
                    add("status_mix.jsd", *_jsd(statuses, counted["statuses"]))
                if arrivals is not None:
                    add("arrival_rate.mape", arrivals.mape(part), half, sessions - half)
    return {
        name: HalfNoise(
            float(np.quantile(v, FLOOR_QUANTILE)),
            (
                float(np.mean([s[0] for s in sizes[name]])),
                float(np.mean([s[1] for s in sizes[name]])),
            ),
            1.0 if name.endswith(".jsd") else 0.5,
            halves.share,
        )
        for name, v in values.items()
    }


def _ks(a: np.ndarray, b: np.ndarray) -> tuple[float | None, int, int]:
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2:  # a D of one value against one says nothing
        return None, a.size, b.size
    return ks_d(a, b), a.size, b.size


def _jsd(codes: SortedSample, part: np.ndarray) -> tuple[float | None, int, int]:
    """JSD between the code counts of a half of the sessions (`part`) and of the rest."""
    counts = [part, codes.whole[0] - part]
    if not all(c.sum() for c in counts):
        return None, 0, 0
    return jsd(counts[0], counts[1]), int(counts[0].sum()), int(counts[1].sum())


# --- sample size ------------------------------------------------------------------------


def sessions_needed(
    real_sessions: int, goal: float | None, floor: float | None, power: float,
    critical: float | None = None, floor_sessions: float | None = None,
) -> int | None:  # fmt: skip
    """Real sessions at which the floor (and the test's critical value, when given) fall to
    the goal, with OTHER growing in proportion: both shrink as (1/k)^power for k times the
    sessions. `floor_sessions`: the real sessions the floor is taken at, when not all of
    them (a bounded sample: the floor extrapolates from there)."""
    if goal is None or goal <= 0 or floor is None or real_sessions <= 0:
        return None
    if floor_sessions is not None:
        at_floor = math.ceil(floor_sessions * float((floor / goal) ** (1 / power)))
        at_critical = sessions_needed(real_sessions, goal, 0.0, power, critical)
        return max(at_floor, at_critical or 0)
    limit = max(floor, critical or 0.0)
    factor = float((limit / goal) ** (1 / power))
    return math.ceil(real_sessions * factor)


def ks_critical(n: int, m: int, alpha: float) -> float | None:
    """Two-sample KS D that samples of sizes n, m of one distribution exceed with
    probability alpha (asymptotic: c(alpha) √((n + m) / (n m)))."""
    if n <= 0 or m <= 0:
        return None
    return math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))
