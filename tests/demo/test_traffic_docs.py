"""STAGING_USERS.md documents the mix the code plays: its tables must match the code."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from tracereplay.demo.traffic.behaviors import BEHAVIORS, END, Behavior, seat_shares
from tracereplay.demo.traffic.daycurve import day_curve, users_at

DOC = (Path(__file__).parents[2] / "demo" / "STAGING_USERS.md").read_text(encoding="utf-8")


def chain_row(source: str, distribution: Mapping[str, float]) -> str:
    steps = " · ".join(
        f"{'**end**' if target == END else target} {p:.2f}" for target, p in distribution.items()
    )
    return f"| {source} | {steps} |"


@pytest.mark.parametrize("behavior", BEHAVIORS, ids=lambda b: b.name)
def test_chain_tables_match_the_code(behavior: Behavior) -> None:
    table = DOC.split(f"#### {behavior.name}\n", 1)[1].strip().split("\n\n", 1)[0]
    rows = [chain_row("*login*", behavior.entry)]
    rows += [chain_row(source, dist) for source, dist in behavior.transitions.items()]
    assert table.splitlines()[2:] == rows


def test_user_class_table_matches_the_weights() -> None:
    shares = seat_shares()
    for behavior in BEHAVIORS:
        share = f"{shares[behavior.name] * 100:.0f} %"
        row = (
            f"| {behavior.name} | {behavior.role} | {behavior.kind} | {behavior.weight} | {share} |"
        )
        assert row in DOC


def test_day_curve_table_matches_the_code() -> None:
    for hour in range(24):
        level, seats = day_curve(hour / 24), users_at(hour * 5.0, 120.0, 30)
        assert f"| {hour:02d}:00 | {level:.2f} | {seats} | {hour * 5} s |" in DOC
