"""The replay-fidelity bench's per-endpoint error-share check judges every endpoint: a small
one is "off" when its difference is significant, else "too few to tell", never a silent pass."""

from __future__ import annotations

import pandas as pd

from bench.bench_replay_fidelity import endpoint_verdict, error_share


def frame(rows: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """endpoint -> (requests, errors): that many 200s and 400s."""
    endpoints, statuses = [], []
    for endpoint, (n, errors) in rows.items():
        endpoints += [endpoint] * n
        statuses += [400] * errors + [200] * (n - errors)
    return pd.DataFrame({"endpoint": endpoints, "status": statuses})


def test_large_endpoint_off_by_more_than_the_goal_fails() -> None:
    out = error_share(
        frame({"GET /a": (200, 0), "POST /sync": (100, 0)}),
        frame({"GET /a": (200, 0), "POST /sync": (100, 5)}),
    )
    assert out["by_endpoint"]["POST /sync"]["verdict"] == "off"
    assert out["by_endpoint"]["POST /sync"]["delta_pp"] == 5.0
    assert out["off"] == ["POST /sync"]
    assert out["goal"].startswith("not met")
    assert out["worst_tested"]["endpoint"] == "POST /sync"


def test_small_endpoint_with_a_significant_difference_fails() -> None:
    # capB's trace replay: sync 0 of 29 real, 7 of 17 replayed (17 < 20 requests)
    verdict = endpoint_verdict(29, 0, 17, 7)
    assert verdict["verdict"] == "off"
    assert verdict["significant"]
    assert verdict["delta_pp"] == 41.18


def test_small_endpoint_without_a_significant_difference_is_too_few_to_tell() -> None:
    out = error_share(
        frame({"GET /a": (200, 0), "POST /test": (3, 0)}),
        frame({"GET /a": (200, 0), "POST /test": (2, 2)}),
    )
    small = out["by_endpoint"]["POST /test"]
    assert small["verdict"] == "too few to tell"
    assert small["delta_pp"] == 100.0
    assert (small["n_real"], small["n_replayed"]) == (3, 2)
    assert out["too_few_to_tell"] == ["POST /test"]
    assert out["goal"].startswith("untested")
    assert out["worst_tested"]["endpoint"] == "GET /a"


def test_every_endpoint_within_is_met_and_one_side_missing_is_reported() -> None:
    out = error_share(
        frame({"GET /a": (100, 1), "GET /b": (50, 0)}),
        frame({"GET /a": (100, 2)}),
    )
    assert out["by_endpoint"]["GET /a"]["verdict"] == "within"
    assert out["by_endpoint"]["GET /b"]["n_replayed"] == 0
    assert out["by_endpoint"]["GET /b"]["verdict"] == "too few to tell"
    only_a = error_share(frame({"GET /a": (100, 1)}), frame({"GET /a": (100, 2)}))
    assert only_a["goal"] == "met"


def test_an_endpoint_the_safety_rules_held_back_is_named_so_and_never_met() -> None:
    # cap20: PATCH workflows 118 real, 0 replayed (not_owned); configure 36 / 0.
    real = frame({"GET /a": (200, 0), "PATCH /w": (118, 0), "POST /configure": (36, 0)})
    replayed = frame({"GET /a": (200, 0)})
    skipped = {"PATCH /w": {"not_owned": 118}, "POST /configure": {"placeholder_credential": 36}}
    out = error_share(real, replayed, skipped)
    assert out["by_endpoint"]["PATCH /w"]["verdict"] == "held back by safety"
    assert out["by_endpoint"]["PATCH /w"]["skipped"] == {"not_owned": 118}
    assert out["held_back"] == ["PATCH /w", "POST /configure"]
    assert out["too_few_to_tell"] == []
    assert out["goal"] == (
        "untested: 2 endpoint(s) held back by safety (154 requests skipped), 0 too few to "
        "tell, the others within"
    )
    # Without the skipped counts the same endpoints read "too few to tell".
    assert error_share(real, replayed)["too_few_to_tell"] == ["PATCH /w", "POST /configure"]
    # An endpoint the replay still sent enough of is judged as any other, skips or not.
    judged = error_share(
        frame({"POST /sync": (100, 0)}), frame({"POST /sync": (60, 6)}), {"POST /sync": {"x": 40}}
    )
    assert judged["by_endpoint"]["POST /sync"]["verdict"] == "off"
    assert judged["goal"].startswith("not met")
