"""Session arrivals: the rate curve of session starts, its daily shape and burstiness, and
a seeded non-homogeneous Poisson sampler that replays the curve scaled by N or sped up.

Rules (all times in seconds since the trace start):

* Buckets. Bucket i covers [i*bucket_s, (i+1)*bucket_s); the last one may be cut short by
  the span and its rate is counts / the width it covers, so rate x width = sessions in every
  bucket. The default bucket is a human value (1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10, 15, 30
  min, 1 h) giving 12..120 buckets, the smallest of those expecting >= 20 sessions per
  bucket, else the largest (the shape beats the per-bucket noise). Spans under 12 s use
  1 s; spans over 5 days use 1 h (then more than 120 buckets).
* Period. When the span is >= 2 days and the hourly session counts correlate with
  themselves one day later (Pearson r >= 0.3), `period_s` is 86400 and `day_profile` holds
  24 mean rates (sessions/s) by hour since the trace start (hour 0 is the trace's first
  hour, not midnight: the model only knows relative time). Otherwise both are None.
* Dispersion. Variance / mean (ddof 1) of session counts in consecutive whole windows of
  1 s, 10 s, 1 min, 5 min, 1 h, for windows that fit >= 5 times; 1 for a Poisson process,
  above 1 when starts cluster (a rate that changes over the span raises it too, most at
  large windows).
* Bursts. A bucket is bursty when its rate is > 2x the local level (the median of the 9
  buckets centred on it, edges repeated) and it holds >= 5 sessions; adjacent bursty
  buckets make one burst.
* Gap shape. Each gap between consecutive starts times the rate of the bucket it starts in
  is a gap in units of the local mean gap (mean 1 for a Poisson process, whose gaps are
  exponential: gamma shape 1). `gap_shape` is the gamma shape fitted (maximum likelihood,
  location 0, at most 1000) to those normalized gaps when >= 20 of them are > 0, else
  None: above 1 when starts are more regular than Poisson (users start their next
  session a while after their last), below 1 when they cluster. The sampler spaces the
  starts of a bucket by gamma(gap_shape) gaps instead of uniformly (see
  `sample_arrivals`); a model without the key (older files) samples as before.
* Gap quantiles. The same normalized gaps as percentiles per class of the bucket's rate
  (arrival_gaps.py); when the model has them the sampler draws a bucket's gaps from
  them instead of gamma(gap_shape) (older files, without the key, sample as before).
* Beyond the span, the curve continues periodically: with the day profile when a period
  was found (so the phase of the day is kept), else by repeating the whole span.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from tracereplay.errors import ConfigError, UsageError

from .arrival_gaps import GapQuantiles, bucket_gap_quantiles

HUMAN_BUCKETS_S: tuple[float, ...] = (
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600,
)  # fmt: skip
MIN_BUCKETS, MAX_BUCKETS = 12, 120
MIN_SESSIONS_PER_BUCKET = 20
# A bucket list this long would make an unreadable model file (and a slow sampler).
BUCKET_LIMIT = 10_000
DISPERSION_WINDOWS_S: tuple[float, ...] = (1, 10, 60, 300, 3600)
MIN_WINDOWS = 5
DAY_S = 86_400.0
HOUR_S = 3_600.0
PERIOD_MIN_SPAN_S = 2 * DAY_S
PERIOD_MIN_CORRELATION = 0.3
BURST_FACTOR = 2.0
BURST_MIN_SESSIONS = 5
BURST_WINDOW_BUCKETS = 9
MIN_GAPS = 20
MAX_GAP_SHAPE = 1000.0  # gap CV 0.03: as regular as the model tells apart
DIGITS = 5


def _sig(x: float, digits: int = DIGITS) -> float:
    """`x` rounded to `digits` significant digits, so model JSON is stable and readable."""
    return float(f"{x:.{digits}g}") if math.isfinite(x) else x


@dataclass(frozen=True)
class ArrivalModel:
    """Session start rate per bucket over the span, plus the shape read off it."""

    bucket_s: float
    rates_per_s: tuple[float, ...]
    span_s: float
    sessions: int
    period_s: float | None
    day_profile: tuple[float, ...] | None
    dispersion: dict[str, float]
    peak_rate_per_s: float
    peak_bucket: int
    bursts: tuple[dict[str, Any], ...]
    gap_shape: float | None = None
    gap_quantiles: GapQuantiles | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "bucket_s": self.bucket_s,
            "span_s": self.span_s,
            "sessions": self.sessions,
            "rates_per_s": list(self.rates_per_s),
            "period_s": self.period_s,
            "day_profile": None if self.day_profile is None else list(self.day_profile),
            "dispersion": dict(sorted(self.dispersion.items(), key=lambda kv: _window_s(kv[0]))),
            "peak_rate_per_s": self.peak_rate_per_s,
            "peak_bucket": self.peak_bucket,
            "bursts": [dict(sorted(b.items())) for b in self.bursts],
        }
        if self.gap_shape is not None:
            out["gap_shape"] = self.gap_shape
        if self.gap_quantiles is not None:
            out["gap_quantiles"] = self.gap_quantiles.to_json()
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ArrivalModel:
        try:
            profile = d.get("day_profile")
            period = d.get("period_s")
            shape = d.get("gap_shape")
            quantiles = d.get("gap_quantiles")
            model = cls(
                bucket_s=float(d["bucket_s"]),
                rates_per_s=tuple(float(r) for r in d["rates_per_s"]),
                span_s=float(d["span_s"]),
                sessions=int(d["sessions"]),
                period_s=None if period is None else float(period),
                day_profile=None if profile is None else tuple(float(r) for r in profile),
                dispersion={str(k): float(v) for k, v in dict(d.get("dispersion", {})).items()},
                peak_rate_per_s=float(d["peak_rate_per_s"]),
                peak_bucket=int(d["peak_bucket"]),
                bursts=tuple(dict(b) for b in d.get("bursts", [])),
                gap_shape=None if shape is None else float(shape),
                gap_quantiles=None if quantiles is None else GapQuantiles.from_json(quantiles),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"arrivals: not a valid arrival model ({exc!r})") from None
        if model.bucket_s <= 0 or not model.rates_per_s or min(model.rates_per_s) < 0:
            raise ConfigError("arrivals: bucket_s must be > 0 and rates_per_s non-empty, >= 0")
        if (model.period_s is None) != (model.day_profile is None) or (
            model.period_s is not None and (model.period_s <= 0 or not model.day_profile)
        ):
            raise ConfigError("arrivals: period_s and day_profile must be given together")
        if model.gap_shape is not None and not (
            math.isfinite(model.gap_shape) and model.gap_shape > 0
        ):
            raise ConfigError("arrivals: gap_shape must be a number > 0")
        buckets = max(1, math.ceil(model.span_s / model.bucket_s - 1e-9))
        if len(model.rates_per_s) != buckets:
            raise ConfigError(
                f"arrivals: {len(model.rates_per_s)} rates for {buckets} buckets of the span"
            )
        return model

    def rate_at(self, t_s: float) -> float:
        """λ(t) in sessions/s at trace time `t_s`: piecewise constant over the buckets, 0
        before the start, continued periodically after the span (see the module rules)."""
        if t_s < 0 or not math.isfinite(t_s):
            return 0.0
        if t_s < self.span_s:
            return self.rates_per_s[min(int(t_s // self.bucket_s), len(self.rates_per_s) - 1)]
        if self.period_s is not None and self.day_profile is not None:
            slot_s = self.period_s / len(self.day_profile)
            return self.day_profile[int((t_s % self.period_s) // slot_s) % len(self.day_profile)]
        if self.span_s <= 0:
            return 0.0
        return self.rate_at(t_s % self.span_s)


def _window_s(key: str) -> float:
    try:
        return float(key.removesuffix("s"))
    except ValueError:
        return math.inf


def _starts(start_s: ArrayLike, span_s: float) -> np.ndarray:
    """Finite start times inside [0, span_s], sorted; the rest are not in the trace."""
    t = np.asarray(start_s, dtype=float).ravel()
    t = t[np.isfinite(t) & (t >= 0) & (t <= max(span_s, 0.0))]
    # A session table's starts come sorted (sessions are numbered by start): a check is
    # one pass, a sort of 1 M starts ~50 ms, and a model sorts them four times.
    return t if bool((t[1:] >= t[:-1]).all()) else np.sort(t)


def _check_span(span_s: float) -> float:
    span = float(span_s)
    if not math.isfinite(span) or span < 0:
        raise UsageError(f"arrivals: span must be a finite number of seconds >= 0, got {span_s!r}")
    return span


def _bucket_edges(span_s: float, bucket_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(starts, widths) of the buckets covering [0, span_s]; at least one bucket."""
    if not math.isfinite(bucket_s) or bucket_s <= 0:
        raise UsageError(f"arrivals: bucket must be > 0 seconds, got {bucket_s!r}")
    # The tolerance keeps a span that is a whole number of buckets from growing a sliver.
    n = max(1, math.ceil(span_s / bucket_s - 1e-9))
    if n > BUCKET_LIMIT:
        raise UsageError(
            f"arrivals: a {bucket_s:g} s bucket cuts a {span_s:g} s span into {n} buckets "
            f"(at most {BUCKET_LIMIT}); use a larger bucket"
        )
    starts = np.arange(n, dtype=float) * bucket_s
    widths = np.minimum(starts + bucket_s, span_s) - starts
    return starts, widths


def _bucket_counts(t: np.ndarray, n: int, bucket_s: float) -> np.ndarray:
    index = np.minimum((t // bucket_s).astype(np.int64), n - 1)
    return np.bincount(index, minlength=n).astype(float)


def _per_second(counts: np.ndarray, widths: np.ndarray) -> np.ndarray:
    rates: np.ndarray = np.divide(counts, widths, out=np.zeros_like(counts), where=widths > 0)
    return rates


def default_bucket_s(span_s: float, sessions: int) -> float:
    """The default bucket for `sessions` starts over `span_s` (see the module rules)."""
    if span_s < MIN_BUCKETS * HUMAN_BUCKETS_S[0]:
        return HUMAN_BUCKETS_S[0]
    fitting = [b for b in HUMAN_BUCKETS_S if span_s / MAX_BUCKETS <= b <= span_s / MIN_BUCKETS]
    if not fitting:
        return HUMAN_BUCKETS_S[-1]
    for b in fitting:
        if sessions * b / span_s >= MIN_SESSIONS_PER_BUCKET:
            return b
    return fitting[-1]


def rate_curve(start_s: ArrayLike, span_s: float, bucket_s: float) -> np.ndarray:
    """Session starts per second in each bucket of [0, span_s] (counts / covered width;
    starts outside the span are ignored). A zero span gives one bucket of rate 0."""
    span = _check_span(span_s)
    starts, widths = _bucket_edges(span, float(bucket_s))
    if span == 0:
        return np.zeros(1)
    counts = _bucket_counts(_starts(start_s, span), len(starts), float(bucket_s))
    return _per_second(counts, widths)


def arrival_rate_mape(real_rates: ArrayLike, other_rates: ArrayLike, scale: float) -> float:
    """Mean of |other/scale − real| / real over the buckets where real > 0, as a fraction
    (0.1 = 10 %). Only the buckets both curves have count; NaN when real is never > 0."""
    if not math.isfinite(scale) or scale <= 0:
        raise UsageError(f"arrivals: scale must be > 0, got {scale!r}")
    real = np.asarray(real_rates, dtype=float).ravel()
    other = np.asarray(other_rates, dtype=float).ravel()
    n = min(len(real), len(other))
    real, other = real[:n], other[:n] / scale
    mask = real > 0
    if not mask.any():
        return math.nan
    return float(np.mean(np.abs(other[mask] - real[mask]) / real[mask]))


def dispersion_index(start_s: ArrayLike, span_s: float, window_s: float) -> float:
    """Variance / mean (ddof 1) of start counts in the whole `window_s` windows of the span;
    NaN when fewer than 2 windows fit or no start falls in them."""
    span = _check_span(span_s)
    if not math.isfinite(window_s) or window_s <= 0:
        raise UsageError(f"arrivals: window must be > 0 seconds, got {window_s!r}")
    n = math.floor(span / window_s + 1e-9)
    if n < 2:
        return math.nan
    counts, _ = np.histogram(_starts(start_s, span), bins=n, range=(0.0, n * window_s))
    mean = float(counts.mean())
    return float(counts.var(ddof=1)) / mean if mean > 0 else math.nan


def _day_profile(t: np.ndarray, span_s: float) -> tuple[float, tuple[float, ...]] | None:
    """(period, 24 hourly rates) when the span is long enough and days look alike."""
    if span_s < PERIOD_MIN_SPAN_S:
        return None
    starts, widths = _bucket_edges(span_s, HOUR_S)
    counts = _bucket_counts(t, len(starts), HOUR_S)
    full = counts[widths >= HOUR_S]
    today, tomorrow = full[:-24], full[24:]
    if today.std() == 0 or tomorrow.std() == 0:
        return None
    if float(np.corrcoef(today, tomorrow)[0, 1]) < PERIOD_MIN_CORRELATION:
        return None
    slot = np.arange(len(starts)) % 24
    exposure = np.bincount(slot, weights=widths, minlength=24)
    per_slot = np.bincount(slot, weights=counts, minlength=24)
    rates = np.divide(per_slot, exposure, out=np.zeros(24), where=exposure > 0)
    return DAY_S, tuple(_sig(float(r)) for r in rates)


def _bursts(
    rates: np.ndarray, counts: np.ndarray, starts: np.ndarray, widths: np.ndarray
) -> tuple[dict[str, Any], ...]:
    from scipy import ndimage  # scipy only where a model is built (synthesize never)

    level = ndimage.median_filter(rates, size=BURST_WINDOW_BUCKETS, mode="nearest")
    flagged = (rates > BURST_FACTOR * level) & (counts >= BURST_MIN_SESSIONS)
    labels, _ = ndimage.label(flagged)
    out: list[dict[str, Any]] = []
    for piece in ndimage.find_objects(labels):
        run = piece[0]
        top = run.start + int(np.argmax(rates[run]))
        out.append(
            {
                "bucket": int(run.start),
                "buckets": int(run.stop - run.start),
                "start_s": _sig(float(starts[run.start])),
                "end_s": _sig(float(starts[run.stop - 1] + widths[run.stop - 1])),
                "sessions": int(counts[run].sum()),
                "peak_rate_per_s": _sig(float(rates[top])),
                "base_rate_per_s": _sig(float(level[top])),
            }
        )
    return tuple(out)


def normalized_gaps(
    start_s: np.ndarray, rates: np.ndarray, bucket_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """(gap × its bucket's rate, that rate) of each gap between sorted starts `start_s`,
    the bucket being the one the gap starts in (see the module rules)."""
    gaps, bucket = _gaps_by_bucket(start_s, rates, bucket_s)
    return gaps, rates[bucket]


def _gaps_by_bucket(
    start_s: np.ndarray, rates: np.ndarray, bucket_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """`normalized_gaps` with each gap's bucket in place of its rate (`rates[bucket]`)."""
    if len(start_s) < 2:
        return np.zeros(0), np.zeros(0, np.int64)
    bucket = np.minimum((start_s[:-1] // bucket_s).astype(np.int64), len(rates) - 1)
    return np.diff(start_s) * rates[bucket], bucket


def gap_shape(start_s: np.ndarray, rates: np.ndarray, bucket_s: float) -> float | None:
    """The gamma shape of the gaps between sorted starts `start_s`, each gap times the
    rate of the bucket it starts in (see the module rules); None under MIN_GAPS gaps."""
    return _gap_shape(normalized_gaps(start_s, rates, bucket_s)[0])


def _gap_shape(normalized: np.ndarray) -> float | None:
    """`gap_shape` of the gaps `normalized_gaps` gives."""
    z = normalized[normalized > 0]
    if len(z) < MIN_GAPS:
        return None
    z = z / z.mean()
    # Near-constant gaps (a clock, not people): the fit's root search fails; call it regular.
    if float(z.std()) < 1 / math.sqrt(MAX_GAP_SHAPE):
        return MAX_GAP_SHAPE
    from scipy import stats

    try:
        shape, _, _ = stats.gamma.fit(z, floc=0)
    except (RuntimeError, ValueError):
        return None
    return _sig(min(float(shape), MAX_GAP_SHAPE), 4) if math.isfinite(shape) and shape > 0 else None


def fitted_bucket_s(start_s: ArrayLike, span_s: float) -> float:
    """The bucket width `fit_arrivals(start_s, span_s).bucket_s` gives, without fitting the
    rest of the model (its gap shape and percentiles cost a pass over every gap)."""
    span = _check_span(span_s)
    return _sig(default_bucket_s(span, len(_starts(start_s, span))))


def fit_arrivals(
    start_s: ArrayLike, span_s: float, *, bucket_s: float | None = None
) -> ArrivalModel:
    """The arrival model of session starts `start_s` (seconds since the trace start) over a
    trace of `span_s` seconds. Floats are rounded as in the JSON, so a model equals its own
    JSON round trip."""
    span = _check_span(span_s)
    t = _starts(start_s, span)
    bucket = float(bucket_s) if bucket_s is not None else default_bucket_s(span, len(t))
    starts, widths = _bucket_edges(span, bucket)
    counts = _bucket_counts(t, len(starts), bucket)
    # A zero span has one bucket of zero width: no rate can be read, whatever the count.
    rates = _per_second(counts, widths)
    dispersion: dict[str, float] = {}
    for window in DISPERSION_WINDOWS_S:
        if span / window >= MIN_WINDOWS:
            value = dispersion_index(t, span, window)
            if math.isfinite(value):
                dispersion[f"{window:g}s"] = _sig(value, 4)
    period = _day_profile(t, span)
    peak = int(np.argmax(rates))
    gaps, bucket_of = _gaps_by_bucket(t, rates, bucket)
    return ArrivalModel(
        bucket_s=_sig(bucket),
        rates_per_s=tuple(_sig(float(r)) for r in rates),
        span_s=_sig(span, 9),
        sessions=len(t),
        period_s=None if period is None else period[0],
        day_profile=None if period is None else period[1],
        dispersion=dispersion,
        peak_rate_per_s=_sig(float(rates[peak])),
        peak_bucket=peak,
        bursts=_bursts(rates, counts, starts, widths) if span > 0 else (),
        # The gaps made once for both (1 M starts at real10M: 15 ms each time).
        gap_shape=_gap_shape(gaps) if span > 0 else None,
        gap_quantiles=bucket_gap_quantiles(gaps, bucket_of, rates) if span > 0 else None,
    )


def _segments(model: ArrivalModel, end_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, widths, rates) of constant-rate pieces covering trace time [0, end_s)."""
    starts, widths = _bucket_edges(model.span_s, model.bucket_s)
    rates = np.asarray(model.rates_per_s, dtype=float)[: len(starts)]
    starts, widths = starts[: len(rates)], widths[: len(rates)]
    if end_s > model.span_s and model.span_s > 0:
        if model.period_s is not None and model.day_profile is not None:
            slot_s = model.period_s / len(model.day_profile)
            first = math.floor(model.span_s / slot_s)
            tail = np.arange(first, math.ceil(end_s / slot_s), dtype=float) * slot_s
            tail_starts = np.maximum(tail, model.span_s)
            tail_widths = tail + slot_s - tail_starts
            tail_rates = np.array([model.rate_at(s) for s in tail_starts])
            starts = np.concatenate([starts, tail_starts])
            widths = np.concatenate([widths, tail_widths])
            rates = np.concatenate([rates, tail_rates])
        else:
            copies = math.ceil(end_s / model.span_s)
            offsets = np.repeat(np.arange(copies, dtype=float) * model.span_s, len(starts))
            starts = np.tile(starts, copies) + offsets
            widths, rates = np.tile(widths, copies), np.tile(rates, copies)
    keep = starts < end_s
    starts, rates = starts[keep], rates[keep]
    widths = np.minimum(starts + widths[keep], end_s) - starts
    return starts, widths, rates


ARRIVAL_PROCESSES = ("stratified", "poisson")


def sample_arrivals(
    model: ArrivalModel,
    rng: np.random.Generator,
    *,
    scale: float = 1.0,
    speed: float = 1.0,
    duration_s: float | None = None,
    process: str = "stratified",
) -> np.ndarray:
    """Sorted session start times (seconds) at rate scale × λ(t × speed) over
    [0, duration_s) (default span / speed).

    `scale` multiplies sessions at every moment; `speed` replays the curve that many
    times faster at the same level, so a 24 h curve at speed 60 takes 24 min and brings
    1/60 of the sessions (times `scale`). Within a piece of the piecewise-constant λ,
    starts are uniform. How many per piece:
    * "stratified" (default): the expected count, fractions carried over from piece to
      piece (systematic sampling, one random phase), so every piece gets its expected
      count ± 1 and the curve is reproduced at the model's resolution run after run —
      what a load test wants from "the real curve at N×";
    * "poisson": a Poisson count per piece, the textbook non-homogeneous Poisson process
      (adds count noise of √count per piece on top of the curve).
    Where the starts go within a piece: uniform when the model has no `gap_shape`; else
    at the cumulative sums of count + 1 gamma(gap_shape) gaps scaled to the piece's width
    (shape 1 is the uniform case in law), so the gaps at scale × rate keep the real gaps'
    shape in units of the mean gap — what a judge of inter-arrival at N× that multiplies
    synthetic gaps by N compares with the real gaps. With `gap_quantiles` (it comes first)
    the count + 1 gaps are drawn from the percentiles of the piece's rate class instead.
    """
    if process not in ARRIVAL_PROCESSES:
        raise UsageError(f"arrivals: process must be one of {', '.join(ARRIVAL_PROCESSES)}")
    if not math.isfinite(scale) or scale < 0:
        raise UsageError(f"arrivals: scale must be >= 0, got {scale!r}")
    if not math.isfinite(speed) or speed <= 0:
        raise UsageError(f"arrivals: speed must be > 0, got {speed!r}")
    duration = model.span_s / speed if duration_s is None else float(duration_s)
    if not math.isfinite(duration) or duration < 0:
        raise UsageError(f"arrivals: duration must be >= 0 seconds, got {duration_s!r}")
    if duration == 0 or model.span_s <= 0:
        return np.zeros(0)
    starts, widths, rates = _segments(model, duration * speed)
    # Output time is trace time / speed, so a piece lasts widths / speed seconds.
    expected = scale * rates * widths / speed
    if process == "poisson":
        counts = rng.poisson(expected)
    else:
        cumulative = np.floor(np.cumsum(expected) + rng.random())
        counts = np.diff(np.concatenate([[0.0], cumulative])).astype(np.int64)
    if model.gap_quantiles is not None:
        quantiles = model.gap_quantiles
        offsets = _renewal_offsets(
            counts, lambda used, piece: quantiles.draw(rates[used], piece, rng.random(len(piece)))
        )
    elif model.gap_shape is not None:
        shape = model.gap_shape
        offsets = _renewal_offsets(counts, lambda _, piece: rng.gamma(shape, size=len(piece)))
    else:
        offsets = rng.random(int(counts.sum()))
    t = np.repeat(starts, counts) + offsets * np.repeat(widths, counts)
    return np.sort(t / speed)


def _renewal_offsets(
    counts: np.ndarray, draw: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Per piece of `counts[i]` starts, their places in [0, 1): the first counts[i] cumulative
    sums of counts[i] + 1 gaps over the sum of all of them, piece by piece. `draw(used,
    piece)` gives the gaps: `used` the indices of the pieces with starts, `piece[j]` the
    (0-based, among those) piece gap j belongs to."""
    nonempty = np.flatnonzero(counts > 0)
    used = counts[nonempty]
    if len(used) == 0:
        return np.zeros(0)
    piece = np.repeat(np.arange(len(used)), used + 1)
    gaps = draw(nonempty, piece)
    cumulative = np.cumsum(gaps)
    totals = np.bincount(piece, weights=gaps)
    before = np.concatenate([[0.0], np.cumsum(totals)[:-1]])
    places = (cumulative - before[piece]) / totals[piece]
    last = np.cumsum(used + 1) - 1
    offsets: np.ndarray = np.delete(places, last)
    return offsets
