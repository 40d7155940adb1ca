"""The compressed day: shape of `day_curve` and the seat counts derived from it."""

from __future__ import annotations

import pytest

from tracereplay.demo.traffic.daycurve import (
    BURST_CENTER_H,
    HOURLY_LEVEL,
    clock_label,
    day_curve,
    users_at,
)


def at(hour: float) -> float:
    return day_curve(hour / 24)


def test_night_is_quieter_than_morning_which_is_quieter_than_lunch() -> None:
    night = max(at(h / 4) for h in range(0, 5 * 4))  # 00:00-05:00
    morning = at(9)
    lunch = at(12)
    assert night < 0.1 < morning < lunch


def test_lunch_is_the_peak_of_the_smooth_part_of_the_day() -> None:
    outside_burst = [h / 10 for h in range(240) if abs(h / 10 - BURST_CENTER_H) >= 0.5]
    assert max(outside_burst, key=at) == 12.0


def test_afternoon_plateau_then_evening_decline() -> None:
    plateau = [at(h) for h in (14, 14.5, 15, 15.5)]
    assert max(plateau) - min(plateau) < 0.05
    assert at(17) > at(19) > at(21) > at(23)


def test_a_short_burst_tops_the_day_in_the_afternoon() -> None:
    assert at(BURST_CENTER_H) == pytest.approx(1.0)
    assert at(BURST_CENTER_H) > at(12) + 0.1
    assert at(BURST_CENTER_H) > at(15.5) + 0.3
    # short: nothing of it 25 minutes either side, only the plateau
    assert at(15.8) == pytest.approx(0.2 * HOURLY_LEVEL[15] + 0.8 * HOURLY_LEVEL[16])
    assert at(16.7) == pytest.approx(0.3 * HOURLY_LEVEL[16] + 0.7 * HOURLY_LEVEL[17])


def test_curve_is_deterministic_bounded_and_wraps_around() -> None:
    samples = [i / 1000 for i in range(1000)]
    assert [day_curve(f) for f in samples] == [day_curve(f) for f in samples]
    assert all(0 < day_curve(f) <= 1.0 for f in samples)
    assert day_curve(0.3) == pytest.approx(day_curve(1.3))
    assert day_curve(0.0) == pytest.approx(day_curve(1.0))
    assert len(HOURLY_LEVEL) == 25 and HOURLY_LEVEL[0] == HOURLY_LEVEL[24]


def test_curve_refuses_nan() -> None:
    with pytest.raises(ValueError, match="finite"):
        day_curve(float("nan"))


def test_users_at_scales_the_curve_and_keeps_one_seat_at_night() -> None:
    duration_s = 120.0
    assert users_at(0.0, duration_s, 30) == 2  # 0.06 × 30
    assert users_at(duration_s * 3 / 24, duration_s, 10) == 1  # never zero
    assert users_at(duration_s * BURST_CENTER_H / 24, duration_s, 30) == 30
    assert all(1 <= users_at(t, duration_s, 30) <= 30 for t in range(120))
    with pytest.raises(ValueError, match="duration_s"):
        users_at(1.0, 0.0, 30)


def test_clock_label() -> None:
    assert clock_label(0.0) == "00:00"
    assert clock_label(0.5) == "12:00"
    assert clock_label(BURST_CENTER_H / 24) == "16:15"
