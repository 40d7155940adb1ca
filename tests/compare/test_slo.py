"""SLOs: each metric on small hand-made frames, endpoint globs, not-checkable cases, the
default file (the FlowMastery plan) and pinned messages for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from tracereplay.compare.slo import (
    DISABLED,
    NO_RESPONSES,
    Slo,
    evaluate_slos,
    load_slos,
    parse_slos,
    render_slos,
    slo_json,
)
from tracereplay.errors import ConfigError, UsageError

LOGIN = "POST /api/v1/auth/login"
CLIENT = "GET /api/v1/clients/{client_id}"


def requests(
    endpoints: list[str],
    durations: list[float] | None = None,
    statuses: list[int | None] | None = None,
    errors: list[str | None] | None = None,
) -> pd.DataFrame:
    """One request a second, 100 ms and 200 OK unless told otherwise."""
    n = len(endpoints)
    return pd.DataFrame(
        {
            "endpoint": endpoints,
            "t_s": np.arange(n, dtype=float),
            "duration_ms": durations if durations is not None else [100.0] * n,
            "status": pd.array(statuses if statuses is not None else [200] * n, dtype="Int64"),
            "error": pd.Series(errors if errors is not None else [None] * n, dtype=object),
        }
    )


def judge(
    slo: Slo, frame: pd.DataFrame, latency_column: str = "duration_ms", span_s: float | None = None
) -> tuple[float | None, bool | None]:
    (result,) = evaluate_slos([slo], frame, latency_column=latency_column, span_s=span_s)
    return result.value, result.passed


# --- each metric ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "expected"),
    [("latency_p50_ms", 50.5), ("latency_p95_ms", 95.05), ("latency_p99_ms", 99.01)],
)
def test_latency_percentiles_are_linear_quantiles(metric: str, expected: float) -> None:
    frame = requests(["GET /a"] * 100, durations=[float(v) for v in range(1, 101)])
    value, passed = judge(Slo("p", metric, "<", 200), frame)
    assert value == pytest.approx(expected)
    assert passed is True
    assert judge(Slo("p", metric, "<", 10), frame)[1] is False


def test_latency_leaves_out_requests_without_a_response() -> None:
    # The transport error took 10 s to fail: not a latency of the server's, an error.
    frame = requests(
        ["GET /a"] * 3,
        durations=[100.0, 100.0, 10_000.0],
        statuses=[200, 200, None],
        errors=[None, None, "timeout"],
    )
    assert judge(Slo("p", "latency_p99_ms", "<", 500), frame) == (100.0, True)


def test_error_rate_counts_transport_errors_missing_responses_and_5xx_not_4xx() -> None:
    frame = requests(
        ["GET /a"] * 10,
        statuses=[200, 200, 201, 404, 401, 500, 503, None, 200, 200],
        errors=[None] * 8 + ["connection reset", ""],
    )
    # 500, 503, no response, connection reset; "" is no error; 401 and 404 are not counted.
    assert judge(Slo("e", "error_rate", "<", 0.5), frame) == (0.4, True)
    assert judge(Slo("e", "error_rate", "<", 0.01), frame) == (0.4, False)


def test_success_rate_wants_a_response_below_400_and_no_error() -> None:
    frame = requests(
        [LOGIN] * 4, statuses=[200, 401, None, 200], errors=[None, None, "refused", "reset"]
    )
    assert judge(Slo("s", "success_rate", ">", 0.2), frame) == (0.25, True)
    assert judge(Slo("s", "success_rate", ">", 0.99), frame) == (0.25, False)


@pytest.mark.parametrize(("op", "passed"), [("<", False), ("<=", True), (">", False), (">=", True)])
def test_ops_at_the_threshold(op: str, passed: bool) -> None:
    frame = requests(["GET /a"] * 4, statuses=[200, 200, 200, 500])
    assert judge(Slo("e", "error_rate", op, 0.25), frame) == (0.25, passed)


def test_throughput_is_selected_requests_over_the_whole_span() -> None:
    frame = requests(["GET /a"] * 6 + ["GET /b"] * 5)  # t_s 0..10: a 10 s span
    assert judge(Slo("t", "throughput_rps", ">=", 1), frame) == (1.1, True)
    assert judge(Slo("t", "throughput_rps", ">=", 1, ("GET /b",)), frame) == (0.5, False)
    assert judge(Slo("t", "throughput_rps", ">=", 1, ("GET /b",)), frame, span_s=4.0)[0] == 1.25


@pytest.mark.parametrize("column", ["sent_s", "ts"])
def test_throughput_span_from_sent_s_or_ts(column: str) -> None:
    frame = requests(["GET /a"] * 5).drop(columns="t_s")
    start = pd.Timestamp("2025-01-01", tz="UTC")
    frame[column] = (
        [100.0, 101.0, 102.0, 103.0, 104.0]
        if column == "sent_s"
        else [start + pd.Timedelta(seconds=s) for s in range(5)]
    )
    assert judge(Slo("t", "throughput_rps", ">", 1), frame) == (1.25, True)


def test_throughput_of_a_single_instant_is_not_checkable() -> None:
    (result,) = evaluate_slos([Slo("t", "throughput_rps", ">", 1)], requests(["GET /a"]))
    assert (result.passed, result.reason) == (None, "the trace spans no time: no throughput")


def test_latency_column_can_be_chosen() -> None:
    frame = requests(["GET /a"] * 2).assign(latency_intended_ms=[900.0, 900.0])
    slo = Slo("p", "latency_p50_ms", "<", 500)
    assert judge(slo, frame) == (100.0, True)
    assert judge(slo, frame, latency_column="latency_intended_ms") == (900.0, False)


# --- selection and not checkable --------------------------------------------------------


def test_globs_select_endpoints_and_any_pattern_is_enough() -> None:
    frame = requests(
        [LOGIN, CLIENT, "GET /api/v1/clients/", "POST /api/v1/clients/{client_id}/sync"],
        durations=[50.0, 100.0, 100.0, 5000.0],
    )
    crud = Slo("crud", "latency_p99_ms", "<", 200, ("* */clients/", "* */clients/{*}"))
    (result,) = evaluate_slos([crud], frame)
    assert (result.requests, result.value, result.passed) == (2, 100.0, True)
    everything = Slo("all", "latency_p99_ms", "<", 200, ("* /api/v1/clients/*",))
    assert evaluate_slos([everything], frame)[0].requests == 3
    assert evaluate_slos([Slo("l", "success_rate", ">", 0.9, ("POST */login",))], frame)[0].passed


def test_unmatched_selector_is_not_checkable_with_a_reason() -> None:
    slo = Slo("login", "success_rate", ">", 0.99, ("POST */auth/login", "POST */signin"))
    (result,) = evaluate_slos([slo], requests(["GET /a"]))
    assert (result.value, result.passed, result.requests) == (None, None, 0)
    assert result.reason == "no request matches POST */auth/login, POST */signin"
    doc = slo_json([result])
    assert (doc["passed"], doc["checked"]) == (None, False)


def test_synthetic_frame_without_status_is_not_checkable() -> None:
    frame = pd.DataFrame({"endpoint": [LOGIN, CLIENT], "t_s": [0.0, 2.0]})
    frame["duration_ms"] = np.nan
    slos = [
        Slo("p", "latency_p95_ms", "<", 500),
        Slo("e", "error_rate", "<", 0.01),
        Slo("s", "success_rate", ">", 0.99),
    ]
    results = evaluate_slos(slos, frame)
    assert [(r.passed, r.reason) for r in results] == [(None, NO_RESPONSES)] * 3
    # Throughput needs no response: a synthesized trace has a rate.
    assert judge(Slo("t", "throughput_rps", ">=", 1), frame) == (1.0, True)


def test_a_replay_where_everything_failed_is_judged() -> None:
    frame = requests(
        ["GET /a"] * 2, durations=[np.nan] * 2, statuses=[None] * 2, errors=["refused"] * 2
    )
    results = evaluate_slos(
        [Slo("e", "error_rate", "<", 0.01), Slo("p", "latency_p95_ms", "<", 500)], frame
    )
    assert [(r.value, r.passed) for r in results] == [(1.0, False), (None, None)]
    assert results[1].reason == "no duration_ms among the selected responses"


def test_empty_frame_is_not_checkable() -> None:
    (result,) = evaluate_slos([Slo("e", "error_rate", "<", 0.01)], requests([]))
    assert (result.passed, result.reason) == (None, "the trace holds no requests")


def test_disabled_slo_is_measured_not_judged_unless_enabled() -> None:
    slos = [Slo("throughput", "throughput_rps", ">=", 1000, enabled=False)]
    frame = requests(["GET /a"] * 3)
    (off,) = evaluate_slos(slos, frame)
    assert (off.value, off.passed, off.reason) == (1.5, None, DISABLED)
    (on,) = evaluate_slos(slos, frame, enable=["throughput"])
    assert (on.value, on.passed, on.reason) == (1.5, False, None)
    with pytest.raises(UsageError, match=r"^unknown SLO 'thruput' \(known: throughput\)$"):
        evaluate_slos(slos, frame, enable=["thruput"])


# --- JSON and table ---------------------------------------------------------------------


def test_slo_json_passes_only_when_every_checked_slo_holds() -> None:
    frame = requests([LOGIN, CLIENT], durations=[100.0, 1 / 3])
    slos = [
        Slo("fast", "latency_p50_ms", "<", 500),
        Slo("crud", "latency_p50_ms", "<", 0.1, ("GET */clients/{*}",)),
        Slo("nothing", "error_rate", "<", 0.01, ("DELETE *",)),
    ]
    doc = slo_json(evaluate_slos(slos, frame))
    assert (doc["passed"], doc["checked"], doc["failed"]) == (False, True, ["crud"])
    assert doc["results"][1] == {
        "name": "crud",
        "metric": "latency_p50_ms",
        "op": "<",
        "threshold": 0.1,
        "endpoints": ["GET */clients/{*}"],
        "enabled": True,
        "value": 0.333333,
        "passed": False,
        "requests": 1,
        "reason": None,
    }
    json.dumps(doc, allow_nan=False)
    assert slo_json(evaluate_slos(slos[:1], frame))["passed"] is True


def test_render_shows_verdicts_thresholds_and_reasons() -> None:
    slos = load_slos()
    frame = requests([LOGIN, CLIENT, "GET /api/v1/metrics/historical"])
    console = Console(width=200, record=True)
    render_slos(evaluate_slos(slos, frame), console)
    text = console.export_text()
    assert "< 500 ms" in text and "> 99 %" in text and ">= 1000 req/s" in text
    assert "100 %" in text and "pass" in text and "off" in text


# --- the default file -------------------------------------------------------------------


def test_default_file_is_the_flowmastery_plan() -> None:
    slos = {s.name: s for s in load_slos()}
    assert slos == {
        "latency": Slo("latency", "latency_p95_ms", "<", 500.0),
        "throughput": Slo("throughput", "throughput_rps", ">=", 1000.0, enabled=False),
        "error_rate": Slo("error_rate", "error_rate", "<", 0.01),
        "login_success": Slo("login_success", "success_rate", ">", 0.99, ("POST */auth/login",)),
        "client_crud_latency": Slo(
            "client_crud_latency",
            "latency_p95_ms",
            "<",
            200.0,
            ("* */clients", "* */clients/", "* */clients/{*}"),
        ),
        "metrics_aggregation_latency": Slo(
            "metrics_aggregation_latency",
            "latency_p95_ms",
            "<",
            1000.0,
            ("GET */metrics/historical",),
        ),
    }


def test_default_client_crud_leaves_out_the_actions_under_a_client() -> None:
    crud = next(s for s in load_slos() if s.name == "client_crud_latency")
    endpoints = [
        "GET /api/v1/clients/",
        "POST /api/v1/clients/",
        CLIENT,
        "PUT /api/v1/clients/{client_id}",
        "DELETE /api/v1/clients/{client_id}",
        "POST /api/v1/clients/{client_id}/sync",
        "POST /api/v1/clients/{client_id}/test-connection",
        "GET /api/v1/workflows/{workflow_id}",
    ]
    assert evaluate_slos([crud], requests(endpoints))[0].requests == 5


# --- bad files --------------------------------------------------------------------------

GOOD = '[slo.fast]\nmetric = "latency_p95_ms"\nop = "<"\nthreshold = 500\n'


def test_a_file_is_read_and_methods_are_upper_cased(tmp_path: Path) -> None:
    path = tmp_path / "slo.toml"
    path.write_text(GOOD + 'endpoints = ["get */x", "*"]\n', encoding="utf-8")
    assert load_slos(path) == [Slo("fast", "latency_p95_ms", "<", 500.0, ("GET */x", "*"))]


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_slos(path)
    assert str(info.value) == f"SLO file {path}: cannot read it (No such file or directory)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[slo.x\n", None),
        ("", "no [slo.NAME] tables"),
        ("version = 2\n" + GOOD, "version 2 not supported (want 1)"),
        ("[slos.x]\n", "unknown key 'slos' (want version and [slo.NAME])"),
        ("slo = 3\n", "no [slo.NAME] tables"),
        ('[slo."my slo"]\n', "SLO name 'my slo' must be letters, digits, _ or -"),
        ("[slo]\nx = 3\n", "slo.x must be a table"),
        (GOOD + "color = 1\n", "unknown key slo.fast.color"),
        ('[slo.x]\nop = "<"\nthreshold = 1\n', "missing slo.x.metric"),
        ('[slo.x]\nmetric = "error_rate"\nop = "<"\n', "missing slo.x.threshold"),
        (
            GOOD.replace("latency_p95_ms", "p95"),
            "slo.fast.metric 'p95' unknown (known: latency_p50_ms, latency_p95_ms, "
            "latency_p99_ms, error_rate, success_rate, throughput_rps)",
        ),
        (GOOD.replace('"<"', '"=="'), "slo.fast.op '==' unknown (known: <, <=, >, >=)"),
        (GOOD.replace("500", '"500ms"'), "slo.fast.threshold must be a number"),
        (GOOD.replace("500", "true"), "slo.fast.threshold must be a number"),
        (GOOD.replace("500", "-1"), "slo.fast.threshold must be a finite number >= 0"),
        (GOOD.replace("500", "inf"), "slo.fast.threshold must be a finite number >= 0"),
        (
            '[slo.e]\nmetric = "error_rate"\nop = "<"\nthreshold = 1.5\n',
            "slo.e.threshold must be a fraction in [0, 1] (0.01 = 1 %)",
        ),
        (GOOD + 'enabled = "no"\n', "slo.fast.enabled must be true or false"),
        (GOOD + "endpoints = []\n", "slo.fast.endpoints must be a non-empty list of patterns"),
        (GOOD + 'endpoints = "*"\n', "slo.fast.endpoints must be a non-empty list of patterns"),
        (
            GOOD + 'endpoints = ["/api/login"]\n',
            'slo.fast.endpoints: \'/api/login\' must be "*" or look like "METHOD /path" '
            '(e.g. "POST */login")',
        ),
        (
            GOOD + "endpoints = [3]\n",
            'slo.fast.endpoints: 3 must be "*" or look like "METHOD /path" (e.g. "POST */login")',
        ),
    ],
)
def test_bad_files_are_one_line_config_errors(text: str, message: str | None) -> None:
    with pytest.raises(ConfigError) as info:
        parse_slos(text, source="s.toml")
    got = str(info.value)
    assert "\n" not in got
    if message is None:
        assert got.startswith("SLO file s.toml: not valid TOML (")
    else:
        assert got == f"SLO file s.toml: {message}"
