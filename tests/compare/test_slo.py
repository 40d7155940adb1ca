"""SLOs: each metric on small hand-made frames, endpoint globs, not-checkable cases, the
default file (the FlowMastery plan) and pinned messages for bad files."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from tracereplay.compare.bindings import Learned
from tracereplay.compare.slo import (
    DISABLED,
    NO_RESPONSES,
    Slo,
    evaluate_slos,
    load_slos,
    needs_binding,
    parse_slos,
    render_slos,
    slo_json,
    slo_warnings,
)
from tracereplay.errors import ConfigError, UsageError

DEFAULT_TEXT = (resources.files("tracereplay.compare") / "default_slo.toml").read_text("utf-8")

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


def test_error_rate_counts_4xx_5xx_transport_errors_and_missing_responses() -> None:
    """As users and Locust count failures: 4xx too (a replay with 21 % 401s once showed
    "error rate 0 %"); the two parts are their own metrics."""
    frame = requests(
        ["GET /a"] * 10,
        statuses=[200, 200, 201, 404, 401, 500, 503, None, 200, 200],
        errors=[None] * 8 + ["connection reset", ""],
    )
    # 404, 401, 500, 503, no response, connection reset; "" is no error.
    assert judge(Slo("e", "error_rate", "<", 0.7), frame) == (0.6, True)
    assert judge(Slo("e", "error_rate", "<", 0.01), frame) == (0.6, False)
    assert judge(Slo("c", "client_error_rate", "<=", 0.2), frame) == (0.2, True)
    assert judge(Slo("s", "server_error_rate", "<", 0.4), frame) == (0.4, False)
    assert judge(Slo("ok", "success_rate", ">=", 0.4), frame) == (0.4, True)


def test_only_4xx_is_still_an_error_rate() -> None:
    frame = requests(["POST /login"] * 4, statuses=[200, 401, 401, 429])
    assert judge(Slo("e", "error_rate", "<", 0.01), frame) == (0.75, False)
    assert judge(Slo("s", "server_error_rate", "<", 0.01), frame) == (0.0, True)


def test_success_rate_wants_a_response_below_400_and_no_error() -> None:
    frame = requests(
        [LOGIN] * 4, statuses=[200, 401, None, 200], errors=[None, None, "refused", "reset"]
    )
    assert judge(Slo("s", "success_rate", ">", 0.2), frame) == (0.25, True)
    assert judge(Slo("s", "success_rate", ">", 0.99), frame) == (0.25, False)


@pytest.mark.parametrize(("op", "passed"), [("<", False), ("<=", True), (">", False), (">=", True)])
def test_ops_at_the_threshold(op: str, passed: bool) -> None:
    frame = requests(["GET /a"] * 4, statuses=[200, 200, 200, 404])
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


def test_unmatched_selector_is_a_warning_not_a_silent_na() -> None:
    slo = Slo("login", "success_rate", ">", 0.99, ("POST */auth/login", "POST */signin"))
    (result,) = evaluate_slos([slo], requests(["GET /a"]))
    assert (result.value, result.passed, result.requests) == (None, None, 0)
    assert result.reason == "no request matches POST */auth/login, POST */signin"
    assert result.warning == result.reason and result.verdict == "warn"
    doc = slo_json([result])
    assert (doc["passed"], doc["checked"], doc["warnings"]) == (None, False, ["login"])
    assert doc["results"][0]["verdict"] == "warn"
    assert slo_warnings([result]) == [
        "warning: SLO 'login' no request matches POST */auth/login, POST */signin"
    ]
    console = Console(width=200, record=True)
    render_slos([result], console)
    assert "WARN" in console.export_text()


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
        "binds": None,
        "matched": ["GET /api/v1/clients/{client_id}"],
        "value": 0.333333,
        "passed": False,
        "verdict": "fail",
        "requests": 1,
        "reason": None,
        "warning": None,
    }
    assert doc["warnings"] == ["nothing"]
    json.dumps(doc, allow_nan=False)
    assert slo_json(evaluate_slos(slos[:1], frame))["passed"] is True


def test_render_shows_verdicts_thresholds_and_reasons() -> None:
    slos = load_slos()
    frame = requests([LOGIN, CLIENT, "GET /api/v1/metrics/historical"])
    learned = Learned(LOGIN, (CLIENT,), ("GET /api/v1/metrics/historical",), "real trace")
    console = Console(width=200, record=True)
    render_slos(evaluate_slos(slos, frame, learned=learned), console)
    text = console.export_text()
    assert "< 500 ms" in text and "> 99 %" in text and ">= 1000 req/s" in text
    assert "100 %" in text and "pass" in text and "off" in text
    assert "login (1)" in text and f"login_success: login = {LOGIN}" in text
    assert f"crud_latency: crud = {CLIENT}" in text


# --- the default file -------------------------------------------------------------------


def test_default_file_is_the_flowmastery_plan_bound_to_classes() -> None:
    slos = {s.name: s for s in load_slos()}
    assert slos == {
        "latency": Slo("latency", "latency_p95_ms", "<", 500.0),
        "throughput": Slo("throughput", "throughput_rps", ">=", 1000.0, enabled=False),
        "error_rate": Slo("error_rate", "error_rate", "<", 0.01),
        "login_success": Slo("login_success", "success_rate", ">", 0.99, (), "login"),
        "crud_latency": Slo("crud_latency", "latency_p95_ms", "<", 200.0, (), "crud"),
        "complex_query_latency": Slo(
            "complex_query_latency", "latency_p95_ms", "<", 1000.0, (), "complex"
        ),
    }
    assert needs_binding(list(slos.values()))
    # No path of any one API in it: the classes bind to what the real trace taught.
    body = DEFAULT_TEXT.split("version = 1")[1]
    assert "endpoints =" not in body and "/api" not in body


def test_class_slos_bind_to_what_was_learned_on_another_api() -> None:
    """The same default file on an API with other paths: each class binds to its
    endpoints, and the table shows which."""
    learned = Learned(
        "POST /v2/session", ("DELETE /v2/orders/{order_id}", "POST /v2/orders"),
        ("GET /v2/reports/yearly",), "real trace",
    )  # fmt: skip
    frame = requests(
        ["POST /v2/session", "POST /v2/orders", "DELETE /v2/orders/{order_id}",
         "GET /v2/reports/yearly", "GET /v2/orders/{order_id}/items"],
        durations=[50.0, 120.0, 140.0, 900.0, 10.0],
        statuses=[200, 201, 204, 200, 200],
    )  # fmt: skip
    results = {r.slo.name: r for r in evaluate_slos(load_slos(), frame, learned=learned)}
    names = ("login_success", "crud_latency", "complex_query_latency")
    login, crud, complex_ = (results[n] for n in names)
    assert (login.matched, login.value, login.passed) == (("POST /v2/session",), 1.0, True)
    assert crud.matched == ("DELETE /v2/orders/{order_id}", "POST /v2/orders")
    assert crud.value == pytest.approx(139.0) and crud.passed is True
    assert (complex_.matched, complex_.value) == (("GET /v2/reports/yearly",), 900.0)
    assert not any(r.warning for r in results.values())


def test_a_class_with_nothing_learned_is_a_warning() -> None:
    slos = [s for s in load_slos() if s.binds]
    frame = requests(["GET /a"])
    unbound = evaluate_slos(slos, frame)  # nothing learned at all
    assert [r.verdict for r in unbound] == ["warn"] * 3
    assert "nothing was learned" in str(unbound[0].warning)
    empty = Learned(None, (), (), "real trace")
    results = evaluate_slos(slos, frame, learned=empty)
    assert [r.warning for r in results] == [
        "binds to login: the real trace has no login endpoint",
        "binds to crud: the real trace has no crud endpoint",
        "binds to complex: the real trace has no complex endpoint",
    ]
    # Endpoints named in the file win over the class.
    named = parse_slos(
        '[slo.c]\nmetric = "latency_p95_ms"\nop = "<"\nthreshold = 1\nbinds = "complex"\n'
        'endpoints = ["GET /a"]\n'
    )
    (result,) = evaluate_slos(named, frame, learned=empty)
    assert (result.matched, result.passed) == (("GET /a",), False)


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
            "latency_p99_ms, error_rate, client_error_rate, server_error_rate, success_rate, "
            "throughput_rps)",
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
        (
            GOOD + 'binds = "reports"\n',
            "slo.fast.binds 'reports' unknown (known: login, crud, complex)",
        ),
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
