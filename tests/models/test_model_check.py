"""A model file is checked when loaded (schema and ranges, then a few sessions drawn), and
the sessions a draw would plan are estimated before anything is allocated."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.factories import make_record, write_trace
from tracereplay.errors import ConfigError, TraceReplayError, UsageError
from tracereplay.models.arrivals import ArrivalModel, fit_arrivals, sample_arrivals
from tracereplay.models.model import build_model, load_model, write_model
from tracereplay.models.model_check import (
    MAX_PLANNED_SESSIONS,
    check_draw,
    check_model,
    expected_sessions,
)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from datetime import timedelta

    from tests.factories import T0

    rows = []
    for i in range(40):
        t = T0 + timedelta(seconds=3 * i)
        for j, path in enumerate(["/api/items", f"/api/items/{i % 7}", "/api/other"]):
            rows.append(make_record(ts=t + timedelta(seconds=j), session=f"s{i}", path=path,
                                    query=f"page={i % 3}" if j == 0 else None))  # fmt: skip
    trace = write_trace(tmp_path_factory.mktemp("check") / "t", rows)
    return build_model(trace)


def test_a_built_model_passes_and_round_trips(model: dict[str, Any], tmp_path: Path) -> None:
    check_model(model, "m")
    assert load_model(write_model(model, tmp_path / "m.json")) == json.loads(
        (tmp_path / "m.json").read_text()
    )


def _first_think(model: dict[str, Any]) -> dict[str, Any]:
    return next(iter(next(iter(model["behaviors"][0]["think_s"].values())).values()))  # type: ignore[no-any-return]


CASES: dict[str, tuple[Any, str]] = {
    "no endpoints": (lambda m: m.pop("endpoints"), "endpoints: missing"),
    "endpoints a list": (lambda m: m.update(endpoints=[]), "endpoints: must be an object"),
    "method with a space": (
        lambda m: next(iter(m["endpoints"].values())).update(method="GE T"),
        "is not an HTTP method",
    ),
    "param kind unknown": (
        lambda m: next(e for e in m["endpoints"].values() if e["params"])["params"].update(
            x={"kind": "mystery"}
        ),
        "'mystery' is not one of",
    ),
    "int digits 10**6": (
        lambda m: next(e for e in m["endpoints"].values() if e["params"])["params"].update(
            x={"kind": "int", "digits": [1, 10**6]}
        ),
        "out of range [1, 30]",
    ),
    "share 2": (lambda m: m["behaviors"][0].update(share=2.0), "share: 2.0 is out of range"),
    "share a string": (lambda m: m["behaviors"][0].update(share="1"), "'1' is not a number"),
    "shares sum to 0": (lambda m: m["behaviors"][0].update(share=0.0), "shares sum to 0"),
    "transition to nowhere": (
        lambda m: next(iter(m["behaviors"][0]["transitions"].values())).update(nowhere=0.0),
        "unknown endpoint 'nowhere'",
    ),
    "20 quantiles": (lambda m: _first_think(m)["q"].pop(), "want 21 quantiles, not 20"),
    "negative think": (
        lambda m: _first_think(m)["q"].__setitem__(0, -1.0),
        "-1.0 is out of range [0, 2.592e+06]",
    ),
    "session shape lengths 0": (
        lambda m: m["behaviors"][0]["session_shape"]["length"].__setitem__(0, 0),
        "session_shape.length[0]: 0 is out of range [1, 1e+06]",
    ),
    "session shape ragged": (
        lambda m: m["behaviors"][0]["session_shape"]["weight"].pop(),
        "want length, tempo and weight lists of one size",
    ),
    "first_ts year 9999": (
        lambda m: m["provenance"].update(first_ts="9999-12-31T23:59:59+00:00"),
        "is not an ISO date (1970..2200)",
    ),
    "negative span": (lambda m: m["arrivals"].update(span_s=-1), "span_s: -1 is out of range"),
    "bucket 0": (lambda m: m["arrivals"].update(bucket_s=0), "bucket_s: 0 is out of range"),
    "correlations not a list": (lambda m: m.update(correlations={}), "must be a list"),
    "payload tree unknown": (
        lambda m: next(iter(m["endpoints"].values())).update(
            body={"media": "application/json", "root": {"k": "nope"}}
        ),
        "unknown payload kind 'nope'",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_bad_field_is_named(case: str, model: dict[str, Any]) -> None:
    mutate, says = CASES[case]
    bad = copy.deepcopy(model)
    mutate(bad)
    with pytest.raises(ConfigError) as raised:
        check_model(bad, "M")
    assert str(raised.value).startswith("M: ") and says in str(raised.value), str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("text", "says"),
    [("{", "not a model file (JSONDecodeError)"),
     ("[" * 5000 + "]" * 5000, "not a model file (RecursionError)"),
     ('{"format": "tracereplay.model/1", "x": ' + "9" * 5000 + "}", "not a model file"),
     ('{"format": "other"}', "not a tracereplay.model/1 file")],
)  # fmt: skip
def test_unreadable_files_are_one_line(text: str, says: str, tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(TraceReplayError) as raised:
        load_model(path)
    assert says in str(raised.value)


@pytest.mark.parametrize(
    ("scale", "speed", "duration_s"),
    [(1.0, 1.0, None), (3.0, 1.0, None), (1.0, 4.0, None), (2.0, 1.0, 50.0),
     (1.0, 1.0, 500.0), (0.5, 2.0, 300.0)],
)  # fmt: skip
def test_expected_sessions_matches_what_is_drawn(
    scale: float, speed: float, duration_s: float | None
) -> None:
    rng = np.random.default_rng(5)
    starts = np.sort(rng.uniform(0, 120, 300) ** 1.1)
    arrivals = fit_arrivals(starts, float(starts.max()))
    drawn = len(sample_arrivals(arrivals, np.random.default_rng(1), scale=scale, speed=speed,
                                duration_s=duration_s))  # fmt: skip
    expected = expected_sessions(arrivals, scale=scale, speed=speed, duration_s=duration_s)
    assert abs(drawn - expected) <= max(2.0, 0.02 * expected), (drawn, expected)


def test_check_draw_refuses_what_would_not_fit(model: dict[str, Any]) -> None:
    arrivals = ArrivalModel.from_json(model["arrivals"])
    check_draw(arrivals, scale=1.0)
    for options, says in [
        ({"scale": 1e9}, f"at most {MAX_PLANNED_SESSIONS:,}"),
        ({"scale": 1.0, "duration_s": 1e12}, "lower --scale or --duration"),
        ({"scale": float("nan")}, "--scale must be a finite number > 0"),
        ({"scale": 1.0, "speed": float("inf")}, "--speed must be a finite number > 0"),
        ({"scale": 1.0, "seed": -1}, "--seed must be in [0, 2^63)"),
        ({"scale": 1.0, "duration_s": 0.0}, "--duration must be a finite time > 0"),
    ]:
        with pytest.raises(UsageError, match=None) as raised:
            check_draw(arrivals, **options)  # type: ignore[arg-type]
        assert says in str(raised.value), (options, str(raised.value))
