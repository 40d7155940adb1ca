"""Who a seat is: its account, client address and headers.

A seat keeps them for its whole life, as a person at a browser or an integration would;
the address goes out as X-Forwarded-For (the target rate-limits logins per address).
Address and headers are drawn from the seat's seed; the account is shared with other
live seats of its role (`pick_account`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from faker import Faker

from tracereplay.demo.traffic.behaviors import Behavior
from tracereplay.demo.traffic.settings import StagingAccount

API_USER_AGENTS = (
    "python-requests/2.32.3",
    "FlowMastery-SDK/1.4.2 (python 3.11)",
    "n8n-sync-bot/0.9.3",
    "curl/8.5.0",
    "Go-http-client/1.1",
    "axios/1.7.2",
    "PostmanRuntime/7.39.0",
)
BROWSER_LANGUAGES = (
    "en-US,en;q=0.9",
    "en-GB,en;q=0.8",
    "de-DE,de;q=0.9,en;q=0.6",
    "fr-FR,fr;q=0.9,en;q=0.5",
    "es-ES,es;q=0.9,en;q=0.4",
)
_DESKTOPS = (
    "Windows NT 10.0; Win64; x64",
    "Macintosh; Intel Mac OS X 10_15_7",
    "X11; Linux x86_64",
)


def browser_user_agent(rng: random.Random) -> str:
    """A current desktop Chrome, Edge, Firefox or Safari User-Agent."""
    desktop = rng.choice(_DESKTOPS)
    engine = rng.choice(("chrome", "chrome", "chrome", "edge", "firefox", "safari"))
    major, build, patch = rng.randint(118, 127), rng.randint(5000, 6500), rng.randint(10, 200)
    chrome = (
        f"Mozilla/5.0 ({desktop}) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{major}.0.{build}.{patch} Safari/537.36"
    )
    if engine == "edge":
        return f"{chrome} Edg/{major}.0.{build - 200}.{patch // 2}"
    if engine == "firefox":
        version = rng.randint(115, 128)
        return f"Mozilla/5.0 ({desktop}; rv:{version}.0) Gecko/20100101 Firefox/{version}.0"
    if engine == "safari":
        return (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            f"(KHTML, like Gecko) Version/17.{rng.randint(0, 5)} Safari/605.1.15"
        )
    return chrome


def account_order(accounts: Sequence[StagingAccount], role: str, seed: int) -> list[StagingAccount]:
    """The accounts of `role` in the order seats fill them (rotated by the seed)."""
    mine = [a for a in accounts if a.role == role]
    start = seed % len(mine)
    return mine[start:] + mine[:start]


def pick_account(
    ordered: Sequence[StagingAccount], live: Mapping[str, int], per_account: int
) -> StagingAccount:
    """The account a new seat signs in with: the first in `ordered` that fewer than
    `per_account` live seats use; when every one is full, the least used (first of those).

    So n live seats of a role share ceil(n / per_account) accounts, per_account at a time,
    as colleagues share a login; a seat keeps its account for its whole life.
    """
    for account in ordered:
        if live.get(account.email, 0) < per_account:
            return account
    return min(ordered, key=lambda account: live.get(account.email, 0))


def identity_headers(behavior: Behavior, rng: random.Random, fake: Faker) -> dict[str, str]:
    """The headers a seat sends with every request (its address included)."""
    headers = {"X-Forwarded-For": fake.ipv4_public()}
    if behavior.kind == "browser":
        headers["User-Agent"] = browser_user_agent(rng)
        headers["Accept"] = "application/json, text/plain, */*"
        headers["Accept-Language"] = rng.choice(BROWSER_LANGUAGES)
    else:
        headers["User-Agent"] = rng.choice(API_USER_AGENTS)
        headers["Accept"] = "application/json"
    return headers
