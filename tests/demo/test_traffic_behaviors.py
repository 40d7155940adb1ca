"""The staging users' mix tables: valid chains, documented shares, seeded stepping."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tracereplay.demo.traffic.actions import SessionScript
from tracereplay.demo.traffic.behaviors import (
    ACTIONS,
    BEHAVIORS,
    CLIENT_API,
    CLIENT_BROWSER,
    END,
    PREREQUISITE,
    Behavior,
    LogNormal,
    choose,
    estimate_session,
    expected_visits,
    next_action,
    problems,
    seat_shares,
)


@pytest.mark.parametrize("behavior", BEHAVIORS, ids=lambda b: b.name)
def test_every_chain_is_a_valid_distribution(behavior: Behavior) -> None:
    assert problems(behavior) == []
    assert END in {t for row in behavior.transitions.values() for t in row}
    assert 0 < behavior.logout_probability < 1


def test_problems_catches_bad_tables() -> None:
    broken = Behavior(
        name="broken", role="client", kind="api", weight=1,
        entry={"overview": 0.5},
        transitions={"overview": {"cache_clear": 0.5, "nowhere": 0.5, END: 0.0}},
        think=CLIENT_API.think, gap=CLIENT_API.gap, logout_probability=0.5,
    )  # fmt: skip
    found = "\n".join(problems(broken))
    assert "entry sums to 0.5" in found
    assert "admin-only" in found
    assert "leads nowhere" in found
    assert "p=0.0" in found


def test_every_action_is_played_somewhere_and_implemented() -> None:
    used = {a for b in BEHAVIORS for a in b.transitions}
    assert used == set(ACTIONS)
    assert all(callable(getattr(SessionScript, name)) for name in ACTIONS)


def test_prerequisites_lead_to_actions_without_cycles() -> None:
    for start in PREREQUISITE:
        step, seen = start, {start}
        while step in PREREQUISITE:
            step = PREREQUISITE[step]
            assert step not in seen
            seen.add(step)


def test_mix_shares_are_as_documented() -> None:
    shares = seat_shares()
    admins = shares["admin_browser"] + shares["admin_api"]
    api = shares["admin_api"] + shares["client_api"]
    assert admins == pytest.approx(0.20)
    assert api == pytest.approx(0.40)
    assert sum(shares.values()) == pytest.approx(1.0)


def test_choose_follows_the_probabilities() -> None:
    rng = random.Random(1)
    table = {"a": 0.5, "b": 0.3, "c": 0.2}
    counts = Counter(choose(rng, table) for _ in range(20_000))
    for name, probability in table.items():
        assert counts[name] / 20_000 == pytest.approx(probability, abs=0.015)


def test_next_action_is_seeded() -> None:
    def walk(seed: int) -> list[str]:
        rng, action, seen = random.Random(seed), None, []
        for _ in range(40):
            action = next_action(rng, CLIENT_BROWSER, action)
            seen.append(action)
            if action == END:
                action = None
        return seen

    assert walk(7) == walk(7)
    assert walk(7) != walk(8)


@pytest.mark.parametrize("behavior", BEHAVIORS, ids=lambda b: b.name)
def test_expected_visits_match_simulated_sessions(behavior: Behavior) -> None:
    rng = random.Random(3)
    lengths = []
    for _ in range(4000):
        action, steps = next_action(rng, behavior, None), 0
        while action != END:
            steps += 1
            action = next_action(rng, behavior, action)
        lengths.append(steps)
    simulated = sum(lengths) / len(lengths)
    assert sum(expected_visits(behavior).values()) == pytest.approx(simulated, rel=0.06)


def test_browser_sessions_are_longer_and_slower_than_api_sessions() -> None:
    browser = estimate_session(CLIENT_BROWSER)
    api = estimate_session(CLIENT_API)
    assert browser.duration_s > 4 * api.duration_s
    assert api.seat_rps > browser.seat_rps
    assert CLIENT_BROWSER.think.median_s > CLIENT_API.think.median_s


def test_lognormal_has_its_median_and_cap() -> None:
    dist = LogNormal(median_s=2.0, sigma=0.7, max_s=5.0)
    rng = random.Random(5)
    draws = sorted(dist.sample(rng) for _ in range(10_001))
    assert draws[5000] == pytest.approx(2.0, rel=0.05)
    assert max(draws) == 5.0
    assert dist.mean_s == pytest.approx(2.0 * 1.2776, rel=1e-3)
