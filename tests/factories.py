"""Test factories shared by every test package: trace records, tables and directories."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from faker import Faker

from tracereplay.trace import (
    TraceMetadata,
    TraceRecord,
    open_writer,
    records_to_batch,
    trace_schema,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TEST_META = TraceMetadata(source="test", capture_start=T0, policy_hash="test-policy")


def make_record(**overrides: object) -> TraceRecord:
    """A small valid record; any field can be overridden."""
    values: dict[str, object] = {
        "ts": T0,
        "method": "GET",
        "path": "/api/v1/clients/",
        "duration_ms": 12.5,
        "session": "s-1",
        "client": "c-1",
        "scheme": "http",
        "host": "127.0.0.1:8000",
        "status": 200,
        "req_headers": (("accept", "application/json"),),
        "resp_headers": (("content-type", "application/json"),),
        "resp_body": b'{"status":"success","data":[]}',
        "resp_body_size": 30,
    }
    values.update(overrides)
    return TraceRecord(**values)  # type: ignore[arg-type]


def realistic_records(n: int, seed: int = 1) -> Iterator[TraceRecord]:
    """`n` records shaped like captured API traffic: headers, JSON bodies, faker data.

    Faker values come from pools drawn once, so a million rows build in seconds.
    """
    fake = Faker()
    fake.seed_instance(seed)
    rng = random.Random(seed)
    pool = 512
    companies = [fake.company() for _ in range(pool)]
    emails = [fake.email() for _ in range(pool)]
    phones = [fake.phone_number() for _ in range(pool)]
    sentences = [fake.sentence() for _ in range(pool)]
    agents = [fake.user_agent() for _ in range(64)]
    addresses = [fake.ipv4() for _ in range(pool)]
    tokens = ["Bearer tok-" + fake.sha1()[:24] for _ in range(pool)]
    client_ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(50)]
    sessions = [f"sess-{rng.getrandbits(64):016x}" for _ in range(200)]
    routes = [
        ("GET", "/api/v1/clients/{}"),
        ("GET", "/api/v1/metrics/overview"),
        ("POST", "/api/v1/clients/"),
        ("PUT", "/api/v1/clients/{}"),
        ("GET", "/api/v1/workflows/"),
        ("POST", "/api/v1/auth/login"),
    ]
    ts = T0
    for _ in range(n):
        ts += timedelta(microseconds=rng.randint(100, 50_000))
        method, route = rng.choice(routes)
        client_id = rng.choice(client_ids)
        body = None
        if method in ("POST", "PUT"):
            body = json.dumps(
                {
                    "name": rng.choice(companies),
                    "email": rng.choice(emails),
                    "phone": rng.choice(phones),
                    "notes": rng.choice(sentences),
                }
            ).encode()
        response = json.dumps(
            {
                "status": "success",
                "data": {
                    "id": client_id,
                    "name": rng.choice(companies),
                    "email": rng.choice(emails),
                },
            }
        ).encode()
        yield TraceRecord(
            ts=ts,
            method=method,
            path=route.format(client_id),
            duration_ms=rng.lognormvariate(2.5, 0.6),
            session=rng.choice(sessions),
            client=f"client-{rng.randint(1, 40)}",
            scheme="http",
            host="127.0.0.1:8000",
            query="client_id=" + client_id if "metrics" in route else None,
            req_headers=(
                ("host", "127.0.0.1:8000"),
                ("user-agent", rng.choice(agents)),
                ("accept", "application/json"),
                ("authorization", rng.choice(tokens)),
                ("x-forwarded-for", rng.choice(addresses)),
            ),
            req_body=body,
            req_body_size=len(body or b""),
            status=rng.choice((200, 200, 200, 201, 401, 404)),
            resp_headers=(
                ("content-type", "application/json"),
                ("content-length", str(len(response))),
                ("date", "Mon, 05 Jan 2026 09:00:00 GMT"),
            ),
            resp_body=response,
            resp_body_size=len(response),
        )


def make_table(records: list[TraceRecord], meta: TraceMetadata = TEST_META) -> pa.Table:
    schema = trace_schema(meta)
    return pa.Table.from_batches([records_to_batch(records, schema)], schema=schema)


def write_trace(directory: Path, records: list[TraceRecord]) -> Path:
    """A trace directory holding `records`, written through the real writer."""
    with open_writer(directory, TEST_META) as writer:
        for record in records:
            writer.write(record)
    return directory
