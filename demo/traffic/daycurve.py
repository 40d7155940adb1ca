"""The compressed day: how busy the staging users are at each moment of a 24 h day.

`day_curve` maps a fraction of the day to a relative level in (0, 1]; the run's
`--duration` is mapped onto one whole day and the shape scales the level by `--users`.
"""

from __future__ import annotations

import math

# Relative level at each full hour (index = hour, 24 = midnight again). Between hours the
# curve is linear. Quiet night, a morning ramp, a lunch peak around 12:00, an afternoon
# plateau and an evening decline back to night.
HOURLY_LEVEL: tuple[float, ...] = (
    0.06, 0.05, 0.04, 0.04, 0.04, 0.05,  # 00-05 night
    0.10, 0.22, 0.42, 0.58, 0.66, 0.72,  # 06-11 morning ramp
    0.84, 0.78, 0.68, 0.66, 0.66, 0.62,  # 12-17 lunch peak, afternoon plateau
    0.44, 0.30, 0.20, 0.14, 0.10, 0.07,  # 18-23 evening decline
    0.06,                                # 24 = 00
)  # fmt: skip

# A short burst on top of the plateau (a scheduled sync, a newsletter going out): a
# raised-cosine bump centred at 16:15, 48 minutes wide at its base, that tops at 1.0.
BURST_CENTER_H = 16.25
BURST_HALF_WIDTH_H = 0.4
BURST_HEIGHT = 0.35


def _base_level(hour: float) -> float:
    index = min(int(hour), 23)
    weight = hour - index
    return HOURLY_LEVEL[index] * (1.0 - weight) + HOURLY_LEVEL[index + 1] * weight


def _burst_level(hour: float) -> float:
    offset = abs(hour - BURST_CENTER_H)
    if offset >= BURST_HALF_WIDTH_H:
        return 0.0
    return BURST_HEIGHT * 0.5 * (1.0 + math.cos(math.pi * offset / BURST_HALF_WIDTH_H))


def day_curve(fraction_of_day: float) -> float:
    """Relative activity level in (0, 1] at `fraction_of_day` (0 = 00:00, 0.5 = 12:00).

    Values outside [0, 1) wrap around, so a run longer than one day repeats the day.
    The maximum, 1.0, is the top of the 16:15 burst; the smooth part peaks at lunch.
    """
    if not math.isfinite(fraction_of_day):
        raise ValueError(f"fraction_of_day must be finite, got {fraction_of_day!r}")
    hour = (fraction_of_day % 1.0) * 24.0
    return min(1.0, _base_level(hour) + _burst_level(hour))


def users_at(elapsed_s: float, duration_s: float, peak_users: int) -> int:
    """Target number of user seats `elapsed_s` into a run whose whole day is `duration_s`.

    Never below one seat, so even the night leaves a trickle of traffic.
    """
    if duration_s <= 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s!r}")
    level = day_curve(elapsed_s / duration_s)
    return max(1, min(peak_users, round(peak_users * level)))


def clock_label(fraction_of_day: float) -> str:
    """The compressed day's clock (HH:MM) at `fraction_of_day`."""
    minutes = int((fraction_of_day % 1.0) * 24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
