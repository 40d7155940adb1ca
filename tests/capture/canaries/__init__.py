"""Seeded fake secrets and personal data ("canaries") that must never reach a trace raw.

`make_canaries` gives eight kinds for the end-to-end tests; `corpus.build_corpus` gives the
≥150 cases in the places real APIs put them, driven through live capture, HAR and mitmdump
import by `drive.py` (test_corpus.py).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta

import jwt
from faker import Faker


@dataclass(frozen=True)
class Canaries:
    password: str
    jwt: str
    cookie: str
    api_key: str
    email: str
    phone: str
    card: str
    ip: str

    def values(self) -> tuple[str, ...]:
        return astuple(self)


def make_canaries(seed: int) -> Canaries:
    """Eight kinds of seeded fake secrets; different seeds give different values."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    token = jwt.encode(
        {
            "sub": fake.uuid4(),
            "email": fake.email(),
            "exp": datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=seed),
        },
        fake.sha256(),
        algorithm="HS256",
    )
    return Canaries(
        password=fake.password(length=18, special_chars=True),
        jwt=token,
        cookie=fake.pystr(min_chars=40, max_chars=40),
        api_key=f"n8n_api_{fake.sha256()[:40]}",
        email=fake.email(),
        phone=fake.phone_number(),
        card=fake.credit_card_number(card_type="visa16"),
        ip=fake.ipv4_public(),
    )
