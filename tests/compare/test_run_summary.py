"""What compare reads of a replay's summary.json: the load and the skipped counts."""

from __future__ import annotations

from tracereplay.compare.run_summary import FROM_SUMMARY, FROM_THROUGHPUT, achieved_load


def test_sessions_never_started_and_requests_skipped_are_told_apart() -> None:
    summary = {
        "achieved_scale": 4.6,
        "sessions_planned": 50,
        "sessions_started": 48,
        "sessions_cut": 3,
        "sessions_skipped": 2,
        "skipped": {"total": 7, "by_endpoint": {"DELETE /clients/{id}": {"not_owned": 7}}},
    }
    load = achieved_load(summary, 5.0, (10.0, 46.0))
    assert (load.achieved_scale, load.source) == (4.6, FROM_SUMMARY)
    assert (load.sessions_cut, load.sessions_skipped, load.requests_skipped) == (3, 2, 7)


def test_an_older_summary_without_the_counts_is_measured_from_throughput() -> None:
    load = achieved_load({"skipped": 4}, 5.0, (10.0, 40.0))
    assert (load.achieved_scale, load.source) == (4.0, FROM_THROUGHPUT)
    assert (load.sessions_skipped, load.requests_skipped) == (None, 4)
