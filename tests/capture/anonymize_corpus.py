"""A fixed corpus of exchanges holding every value shape the anonymizer treats, and the
digest of the rows it makes of them: pseudonyms are part of the trace contract.

Drawn from `random.Random` and fixed word lists only (no faker: its draws could change
between versions), so the same seed always gives the same exchanges. Used by
test_anonymize_stability.py; bench/bench_anonymize.py --check compares two anonymizers
row by row on its own workloads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from tracereplay.capture.exchange import Exchange

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FIRST = ("jessica", "michael", "ana", "li", "oliver", "amélie", "sven", "priya", "tom", "zoë")
LAST = ("miller", "nguyen", "garcía", "smith", "o'brien", "kowalski", "tanaka", "berg", "ng")
WORDS = (
    "quarterly",
    "report",
    "sync",
    "failed",
    "retry",
    "customer",
    "invoice",
    "draft",
    "approved",
    "pending",
    "the",
    "of",
    "and",
    "for",
    "weekly",
    "n8n",
    "workflow",
)
DOMAINS = ("example.com", "mail.example.org", "acme.example", "gmail.com", "corp.example.net")
STATUS = ("active", "inactive", "pending", "in_progress", "CLIENT_CREATED", "ok", "v2")


def _uuid(rng: random.Random) -> str:
    made = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    spelling = rng.randrange(5)
    if spelling == 1:
        return made.upper()
    if spelling == 2:
        return made.replace("-", "")
    if spelling == 3:
        return "{" + made + "}"
    return made


def _phone(rng: random.Random) -> str:
    area, line = rng.randrange(201, 989), rng.randrange(10**4)
    return rng.choice(
        (
            f"+1-{area}-555-{line:04d}",
            f"({area}) {rng.randrange(200, 999)}-{line:04d}",
            f"{area}.{rng.randrange(200, 999)}.{line:04d}",
            f"030 {rng.randrange(10**7, 10**8)}",
            f"+44 20 7946 {line:04d}",
            f"{area}{rng.randrange(200, 999)}{line:04d} x{line % 99}",
        )
    )


def _card(rng: random.Random) -> str:
    digits = [4] + [rng.randrange(10) for _ in range(14)]
    total = sum(d if i % 2 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(digits))
    return "".join(map(str, digits)) + str(-total % 10)


def _jwt(rng: random.Random) -> str:
    def part(doc: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    body = {"sub": _uuid(rng), "email": _email(rng), "iat": rng.randrange(10**9, 2 * 10**9)}
    signature = base64.urlsafe_b64encode(rng.randbytes(32)).rstrip(b"=").decode()
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(body)}.{signature}"


def _email(rng: random.Random) -> str:
    local = f"{rng.choice(FIRST)}.{rng.choice(LAST)}{rng.randrange(10**4)}"
    return f"{local}@{rng.choice(DOMAINS)}".replace("'", "")


def _timestamp(rng: random.Random) -> str:
    at = T0 + timedelta(seconds=rng.randrange(10**7), microseconds=rng.randrange(10**6))
    return rng.choice(
        (
            at.isoformat(),
            at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            at.strftime("%Y-%m-%d"),
            at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
            str(int(at.timestamp())),
        )
    )


def _text(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randrange(2, 12))]
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words)), _email(rng))
    if rng.random() < 0.2:
        words.append(f"https://{rng.choice(DOMAINS)}/a/{rng.randrange(10**6)}?x={_uuid(rng)}")
    if rng.random() < 0.2:
        words.append(f"call {_phone(rng)}")
    return " ".join(words).capitalize() + rng.choice((".", "!", ""))


SHAPES: dict[str, Callable[[random.Random], Any]] = {
    "id": _uuid,
    "name": lambda r: f"{r.choice(FIRST).title()} {r.choice(LAST).title()}",
    "email": _email,
    "phone": _phone,
    "company": lambda r: f"{r.choice(LAST).title()} & {r.choice(LAST).title()} Ltd.",
    "status": lambda r: r.choice(STATUS),
    "created_at": _timestamp,
    "owner_id": lambda r: r.randrange(10 ** r.randrange(1, 12)),
    "notes": _text,
    "website": lambda r: (
        f"https://www.{r.choice(LAST).replace(chr(39), '')}.example/{r.choice(WORDS)}"
    ),
    "ip": lambda r: r.choice(
        (
            f"203.0.113.{r.randrange(256)}",
            f"2001:db8:{r.randrange(99)}::{r.randrange(99)}",
            f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(256)}",
        )
    ),
    "card": _card,
    "api_token": lambda r: r.randbytes(20).hex(),
    "handle": lambda r: f"{r.choice(FIRST)}{r.randrange(100)}",
    "ref": lambda r: r.choice(
        (
            f"user{r.randrange(999)}",
            r.randbytes(12).hex()[: r.randrange(6, 20)],
            f"account:{r.choice(FIRST)}.{r.choice(LAST)}",
            f"ord-{r.randrange(10**6)}",
            base64.b64encode(r.randbytes(18)).decode(),
            f"{r.randrange(10**3)}.5%",
        )
    ),
    "ssn": lambda r: f"{r.randrange(100, 665)}-{r.randrange(10, 99)}-{r.randrange(1000, 9999)}",
    "dob": lambda r: f"19{r.randrange(40, 99)}-0{r.randrange(1, 9)}-1{r.randrange(9)}",
    "amount": lambda r: round(r.random() * 1000, 2),
    "flag": lambda r: r.random() < 0.5,
}


def exchanges(count: int, seed: int = 1) -> list[Exchange]:
    """`count` exchanges: a JSON page of records, a query and a path with ids and emails,
    bearer, cookie and other headers; every value drawn from `seed`."""
    rng = random.Random(seed)
    out: list[Exchange] = []
    for i in range(count):
        items = [
            {name: make(rng) for name, make in SHAPES.items() if rng.random() < 0.8}
            for _ in range(rng.randrange(1, 8))
        ]
        token = _jwt(rng)
        headers = [
            ("Host", "api.example.com"),
            ("Authorization", f"Bearer {token}"),
            ("Cookie", f"session={rng.randbytes(16).hex()}; theme=dark"),
            ("X-Request-Id", _uuid(rng)),
            ("X-Forwarded-For", f"198.51.100.{rng.randrange(256)}"),
            ("User-Agent", f"Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.{rng.randrange(9999)}.0"),
        ]
        body = {"status": "success", "data": {"items": items, "page": i, "next": _uuid(rng)}}
        request = {"email": _email(rng), "password": "x" * 9, "note": _text(rng)}
        out.append(
            Exchange(
                ts=T0 + timedelta(milliseconds=37 * i),
                method=rng.choice(("GET", "POST")),
                path=f"/api/v1/clients/{_uuid(rng)}/orders/{rng.randrange(10**7)}/{rng.choice(FIRST)}",
                query=f"email={_email(rng).replace('@', '%40')}&limit=20&since={_timestamp(rng)}",
                scheme="https",
                host="api.example.com",
                port=443,
                client_addr=f"10.0.{rng.randrange(4)}.{rng.randrange(256)}",
                req_headers=[*headers, ("Content-Type", "application/json")],
                req_body=json.dumps(request).encode(),
                status=rng.choice((200, 200, 201, 404)),
                resp_headers=[
                    ("Content-Type", "application/json; charset=utf-8"),
                    ("Set-Cookie", f"session={rng.randbytes(16).hex()}; Path=/; HttpOnly"),
                    ("Date", "Mon, 02 Mar 2026 09:00:00 GMT"),
                ],
                resp_body=json.dumps(body, ensure_ascii=rng.random() < 0.5).encode(),
                duration_ms=round(rng.random() * 50, 3),
            )
        )
    return out


def rows_digest(records: Iterable[object]) -> str:
    """SHA-256 over the repr of every row, in order: any changed pseudonym changes it."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(repr(record).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
