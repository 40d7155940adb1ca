"""Checking a model file before anything draws from it: its schema and the ranges of its
numbers (`check_model`), and how many sessions a draw with given options would plan
(`expected_sessions`, `check_draw`), so a bad file or a typo is one line, not a crash.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np

from tracereplay.errors import ConfigError, UsageError

from .arrivals import ArrivalModel
from .behaviors import END, QUANTILE_POINTS
from .correlations import auth_from_json, correlations_from_json
from .ids import check_ids, ids_from_json
from .outcomes import outcomes_from_json

MAX_RATE_PER_S = 1e6
"""Sessions per second in one bucket of the arrival curve: more is not a measured rate."""
MAX_THINK_S = 30 * 86_400.0
MAX_PLANNED_SESSIONS = 10_000_000
"""Sessions one synthesis or replay may plan: beyond this it is a typo, not a load test."""
_PROBABILITY_TOLERANCE = 0.01  # stored probabilities are rounded to 4-5 digits
_PARAM_KINDS = ("uuid", "int", "hex", "other")
_DRAW_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError,
                ZeroDivisionError, RecursionError)  # fmt: skip
_DRY_RUN_SESSIONS = 8


def check_model(data: dict[str, Any], where: str) -> None:
    """Raise a ConfigError "<where>: <field>: <what>" unless `data` is a model a synthesis
    can draw from: every section present and typed, probabilities in [0, 1] summing to 1,
    rates and times finite and in range, endpoints that exist; then a few sessions drawn."""

    def fail(field: str, what: str) -> ConfigError:
        return ConfigError(f"{where}: {field}: {what}")

    for section in ("provenance", "endpoints", "behaviors", "arrivals"):
        if section not in data:
            raise fail(section, "missing")
    prov = _mapping(data["provenance"], "provenance", fail)
    first = prov.get("first_ts")
    try:
        first_ts = datetime.fromisoformat(first) if isinstance(first, str) else None
    except ValueError:
        first_ts = None
    if first_ts is None or not 1970 <= first_ts.year <= 2200:
        raise fail("provenance.first_ts", f"{_short(first)} is not an ISO date (1970..2200)")
    endpoints = _mapping(data["endpoints"], "endpoints", fail)
    if not endpoints:
        raise fail("endpoints", "empty")
    for name, spec in endpoints.items():
        _check_endpoint(str(name), spec, fail)
    behaviors = data["behaviors"]
    if not isinstance(behaviors, list):
        raise fail("behaviors", "must be a list")
    shares = [_check_behavior(i, b, set(endpoints), fail) for i, b in enumerate(behaviors)]
    if abs(sum(shares) - 1.0) > _PROBABILITY_TOLERANCE:
        raise fail("behaviors[*].share", f"shares sum to {sum(shares):.4g}, not 1")
    arrivals = _mapping(data["arrivals"], "arrivals", fail)
    for key in ("rates_per_s", "day_profile"):
        for i, rate in enumerate(arrivals.get(key) or ()):
            _number(rate, f"arrivals.{key}[{i}]", fail, 0.0, MAX_RATE_PER_S)
    _number(arrivals.get("span_s"), "arrivals.span_s", fail, 0.0, 100 * 365 * 86_400.0)
    _number(arrivals.get("bucket_s"), "arrivals.bucket_s", fail, 1e-3, 100 * 365 * 86_400.0)
    try:
        ArrivalModel.from_json(arrivals)
        correlations_from_json(data.get("correlations", []))
        auth_from_json(data.get("auth", {}))
        check_ids(ids_from_json(data.get("ids")), list(endpoints))
        outcomes_from_json(data.get("outcomes"))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    _dry_run(data, fail)


def _check_endpoint(name: str, spec: Any, fail: Callable[[str, str], ConfigError]) -> None:
    from .payloads import BodyModel, QueryModel

    field = f"endpoints[{name!r}]"
    spec = _mapping(spec, field, fail)
    method, template = spec.get("method"), spec.get("template")
    if not isinstance(method, str) or not method.isalpha() or len(method) > 32:
        raise fail(f"{field}.method", f"{_short(method)} is not an HTTP method")
    if not isinstance(template, str) or not template:
        raise fail(f"{field}.template", f"{_short(template)} is not a path template")
    for param, kind in _mapping(spec.get("params", {}), f"{field}.params", fail).items():
        _check_param(kind, f"{field}.params[{param!r}]", fail)
    body, query = spec.get("body"), spec.get("query")
    body = None if body is None else _mapping(body, f"{field}.body", fail)
    query = None if query is None else _mapping(query, f"{field}.query", fail)
    try:
        if body is not None:
            BodyModel.from_json(body)
        if query is not None:
            QueryModel.from_json(query)
    except ConfigError as exc:
        raise fail(field, str(exc)) from None
    except _DRAW_ERRORS as exc:  # a payload tree of the wrong shape (e.g. a list as a kind)
        raise fail(field, f"not a payload model ({type(exc).__name__})") from None


def _check_param(spec: Any, field: str, fail: Callable[[str, str], ConfigError]) -> None:
    spec = _mapping(spec, field, fail)
    kind = spec.get("kind")
    if kind not in _PARAM_KINDS:
        raise fail(f"{field}.kind", f"{_short(kind)} is not one of {', '.join(_PARAM_KINDS)}")
    if kind == "int" and "digits" in spec:
        digits = spec["digits"]
        if not isinstance(digits, list) or len(digits) != 2:
            raise fail(f"{field}.digits", "want [fewest, most]")
        low = _number(digits[0], f"{field}.digits[0]", fail, 1, 30, whole=True)
        _number(digits[1], f"{field}.digits[1]", fail, low, 30, whole=True)
    if kind == "hex" and "length" in spec:
        _number(spec["length"], f"{field}.length", fail, 1, 512, whole=True)
    examples = spec.get("examples", [])
    if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
        raise fail(f"{field}.examples", "want a list of strings")


def _check_behavior(
    index: int, behavior: Any, endpoints: set[str], fail: Callable[[str, str], ConfigError]
) -> float:
    field = f"behaviors[{index}]"
    behavior = _mapping(behavior, field, fail)
    share = _number(behavior.get("share"), f"{field}.share", fail, 0.0, 1.0)
    _distribution(behavior.get("entry"), f"{field}.entry", endpoints, fail)
    transitions = _mapping(behavior.get("transitions"), f"{field}.transitions", fail)
    for source, targets in transitions.items():
        if source not in endpoints:
            raise fail(f"{field}.transitions", f"unknown endpoint {_short(source)}")
        _distribution(targets, f"{field}.transitions[{source!r}]", endpoints | {END}, fail)
    think = _mapping(behavior.get("think_s"), f"{field}.think_s", fail)
    for source, targets in think.items():
        for target, quantiles in _mapping(targets, f"{field}.think_s", fail).items():
            _check_quantiles(quantiles, f"{field}.think_s[{source!r}][{target!r}]", fail)
    _check_quantiles(behavior.get("tempo"), f"{field}.tempo", fail)
    _number(behavior.get("mean_length", 0), f"{field}.mean_length", fail, 0.0, 1e6)
    if "session_shape" in behavior:  # additive (issue 11)
        _check_session_shape(behavior["session_shape"], f"{field}.session_shape", fail)
    return share


def _check_session_shape(value: Any, field: str, fail: Callable[[str, str], ConfigError]) -> None:
    shape = _mapping(value, field, fail)
    columns: list[list[Any]] = [
        c if isinstance(c := shape.get(k), list) else [] for k in ("length", "tempo", "weight")
    ]
    if (
        not all(isinstance(shape.get(k), list) for k in ("length", "tempo", "weight"))
        or len({len(c) for c in columns}) != 1
    ):
        raise fail(field, "want length, tempo and weight lists of one size")
    if not columns[0]:
        raise fail(field, "empty")
    for name, column, high in zip(
        ("length", "tempo", "weight"), columns, (1e6, 1e6, 1.0), strict=True
    ):
        for i, v in enumerate(column):
            _number(v, f"{field}.{name}[{i}]", fail, 1.0 if name == "length" else 0.0, high,
                    whole=name == "length")  # fmt: skip
    if sum(columns[2]) <= 0:
        raise fail(f"{field}.weight", "weights sum to 0")


def _distribution(
    value: Any, field: str, names: set[str], fail: Callable[[str, str], ConfigError]
) -> None:
    dist = _mapping(value, field, fail)
    if not dist:
        raise fail(field, "empty")
    for name, p in dist.items():
        if name not in names:
            raise fail(field, f"unknown endpoint {_short(name)}")
        _number(p, f"{field}[{name!r}]", fail, 0.0, 1.0)
    total = sum(float(p) for p in dist.values())
    if abs(total - 1.0) > _PROBABILITY_TOLERANCE:
        raise fail(field, f"probabilities sum to {total:.4g}, not 1")


def _check_quantiles(value: Any, field: str, fail: Callable[[str, str], ConfigError]) -> None:
    spec = _mapping(value, field, fail)
    q = spec.get("q")
    if not isinstance(q, list) or not q:
        raise fail(f"{field}.q", "want a list of quantiles")
    if len(q) != len(QUANTILE_POINTS):
        raise fail(f"{field}.q", f"want {len(QUANTILE_POINTS)} quantiles, not {len(q)}")
    for i, v in enumerate(q):
        _number(v, f"{field}.q[{i}]", fail, 0.0, MAX_THINK_S)


def _dry_run(data: dict[str, Any], fail: Callable[[str, str], ConfigError]) -> None:
    """Draw a few sessions: what the schema checks cannot see (a payload tree `render`
    cannot walk) is found here, in the parent, not in a worker mid-run."""
    from .synthesize import Synthesizer

    try:
        synth = Synthesizer(data, 0)
        for index in range(_DRY_RUN_SESSIONS):
            synth.session_requests(index, 0.0)
    except ConfigError as exc:
        raise fail("model", str(exc)) from None
    except _DRAW_ERRORS as exc:
        raise fail("model", f"cannot draw a session from it ({type(exc).__name__}: "
                            f"{_short(str(exc), 120)})") from None  # fmt: skip


def _mapping(value: Any, field: str, fail: Callable[[str, str], ConfigError]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(field, f"must be an object, not {type(value).__name__}")
    return value


def _number(
    value: Any,
    field: str,
    fail: Callable[[str, str], ConfigError],
    low: float,
    high: float,
    *,
    whole: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(field, f"{_short(value)} is not a number")
    if whole and not isinstance(value, int):
        raise fail(field, f"{_short(value)} is not a whole number")
    if not math.isfinite(value) or not low <= value <= high:
        raise fail(field, f"{value!r} is out of range [{low:g}, {high:g}]")
    return float(value)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---- how many sessions a draw plans ----------------------------------------------------------


def expected_sessions(
    arrivals: ArrivalModel, *, scale: float, speed: float, duration_s: float | None
) -> float:
    """About how many sessions `sample_arrivals` plans for these options (exact within
    the span, the span's or day profile's mean rate beyond it); to refuse a typo such as
    --scale 1e9 before anything is allocated."""
    end_s = arrivals.span_s if duration_s is None else duration_s * speed
    rates = np.asarray(arrivals.rates_per_s, dtype=float)
    starts = np.arange(len(rates)) * arrivals.bucket_s
    widths = np.minimum(starts + arrivals.bucket_s, arrivals.span_s) - starts

    def within(t_s: float) -> float:  # ∫ λ over [0, t_s], t_s inside the span
        return float(np.sum(rates * np.clip(t_s - starts, 0.0, widths)))

    total = within(min(end_s, arrivals.span_s))
    if end_s > arrivals.span_s > 0:
        if arrivals.day_profile:  # continued by hour of day: its mean rate
            total += float(np.mean(arrivals.day_profile)) * (end_s - arrivals.span_s)
        else:  # the whole span repeated
            repeats, rest = divmod(end_s, arrivals.span_s)
            total = repeats * within(arrivals.span_s) + within(rest)
    return scale * total / speed


def check_draw(
    arrivals: ArrivalModel,
    *,
    scale: float,
    speed: float = 1.0,
    duration_s: float | None = None,
    seed: int = 0,
) -> float:
    """The options of a synthesis or replay of a model, checked (finite, in range, and not
    more than MAX_PLANNED_SESSIONS sessions); UsageError otherwise. Returns the expected
    number of sessions."""
    for name, value in (("--scale", scale), ("--speed", speed)):
        if isinstance(value, bool) or not math.isfinite(value) or value <= 0:
            raise UsageError(f"{name} must be a finite number > 0, not {value!r}")
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise UsageError(f"--duration must be a finite time > 0, not {duration_s!r}")
    if not 0 <= seed < 2**63:
        raise UsageError(f"--seed must be in [0, 2^63), not {seed}")
    expected = expected_sessions(arrivals, scale=scale, speed=speed, duration_s=duration_s)
    if not math.isfinite(expected) or expected > MAX_PLANNED_SESSIONS:
        raise UsageError(
            f"these options plan about {expected:.3g} sessions (at most "
            f"{MAX_PLANNED_SESSIONS:,}): lower --scale or --duration"
        )
    return expected
