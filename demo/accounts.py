"""The sandbox's test accounts and client ids, derived from one seed.

Both the target (who may sign in, which client a user sees) and the staging users (who
signs in) use these, so they agree without sharing state. All data is faker-made.
"""

from __future__ import annotations

import csv
import io
import random
import uuid
from dataclasses import dataclass
from typing import Literal

from faker import Faker

Role = Literal["admin", "client"]

ADMIN_COUNT = 4
CLIENT_USER_COUNT = 16
CLIENT_COUNT = 12
# Separate streams so that adding an account never shifts the client ids, and vice versa.
_CLIENT_ID_STREAM = 0x636C69656E74
_ACCOUNT_STREAM = 0x61636374


@dataclass(frozen=True)
class Account:
    """Someone who can sign in to the sandbox target."""

    email: str
    password: str
    role: Role
    name: str
    client_id: str | None  # the one client a `client` user sees; None for admins


def seeded_uuid(rng: random.Random) -> str:
    """A version-4 UUID string drawn from `rng` (so it repeats with the seed)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def sandbox_client_ids(seed: int = 7, count: int = CLIENT_COUNT) -> list[str]:
    """The ids of the clients the target seeds, in seeding order."""
    rng = random.Random(seed * 1_000_003 + _CLIENT_ID_STREAM)
    return [seeded_uuid(rng) for _ in range(count)]


def sandbox_accounts(seed: int = 7) -> list[Account]:
    """The admins first, then the client users, each bound to a seeded client in turn."""
    fake = Faker("en_US")
    fake.seed_instance(seed * 1_000_003 + _ACCOUNT_STREAM)
    client_ids = sandbox_client_ids(seed)
    accounts: list[Account] = []
    for index in range(ADMIN_COUNT + CLIENT_USER_COUNT):
        is_admin = index < ADMIN_COUNT
        accounts.append(
            Account(
                email=fake.unique.safe_email(),
                password=fake.password(length=14),
                role="admin" if is_admin else "client",
                name=fake.name(),
                client_id=None if is_admin else client_ids[(index - ADMIN_COUNT) % CLIENT_COUNT],
            )
        )
    return accounts


def accounts_csv(accounts: list[Account]) -> str:
    """`email,password,role` CSV with a header line, one account a row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", "password", "role"])
    writer.writerows([a.email, a.password, a.role] for a in accounts)
    return out.getvalue()
