"""Anonymization cost per exchange: the deny-list anonymizer (before default deny) against
the current one, on the same exchanges, in the same run.

The exchanges look like the staging users' traffic (logins handing out JWTs, client lists
of faker records, creates, metric queries with headers and cookies) and every value in
them is drawn fresh, so no pseudonym memo hides the work. Faker is not timed. The old
anonymizer is read from git (`--old-rev`, default: the last commit before default deny)
into a temporary package, so both run in one process on one machine state.

    .venv/bin/python bench/bench_anonymize.py [--exchanges 3000] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from faker import Faker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracereplay.capture.anonymize.policy import load_policy
from tracereplay.capture.anonymize.record import Anonymizer
from tracereplay.capture.exchange import Exchange

OLD_REV = "97bac05"  # main before default deny (deny-list: field words + seven detectors)
REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
JSON = ("Content-Type", "application/json")


def load_old_anonymizer(rev: str, into: Path) -> Callable[[], Any]:
    """The anonymize package as it was at `rev`, importable as `old_anonymize`."""
    package = into / "old_anonymize"
    package.mkdir()
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", f"{rev}:capture/anonymize"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for name in names:
        text = subprocess.run(
            ["git", "show", f"{rev}:capture/anonymize/{name}"],
            cwd=REPO, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        text = text.replace("tracereplay.capture.anonymize.", "old_anonymize.")
        text = text.replace("from ..exchange import", "from tracereplay.capture.exchange import")
        (package / name).write_text(text, encoding="utf-8")
    sys.path.insert(0, str(into))
    old_policy = importlib.import_module("old_anonymize.policy")
    old_record = importlib.import_module("old_anonymize.record")
    return lambda: old_record.Anonymizer(old_policy.load_policy(), b"bench-key")


def make_exchanges(count: int, seed: int) -> list[Exchange]:
    """Staging-like exchanges with every value drawn fresh."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    out: list[Exchange] = []
    for i in range(count):
        ts = T0 + timedelta(milliseconds=50 * i)
        token = jwt.encode(
            {"sub": fake.uuid4(), "email": fake.email()}, fake.sha256(), algorithm="HS256"
        )
        headers = [
            ("Host", "127.0.0.1:8000"), ("User-Agent", fake.user_agent()), ("Accept", "*/*"),
            ("Authorization", f"Bearer {token}"), ("Cookie", f"access_token={token}"),
            ("X-Request-Id", fake.uuid4()),
        ]  # fmt: skip
        kind = i % 10
        if kind == 0:  # login
            body = {"email": fake.email(), "password": fake.password()}
            answer = {"status": "success", "data": {
                "access_token": token, "refresh_token": fake.sha256(), "token_type": "bearer",
                "expires_in": 900, "user": {"id": fake.uuid4(), "email": fake.email(),
                                            "name": fake.name(), "role": "admin"}}}  # fmt: skip
            ex = _exchange(ts, "POST", "/api/v1/auth/login", "", headers, body, answer)
        elif kind in (1, 2, 3):  # a page of clients
            items = [_client(fake) for _ in range(8)]
            answer = {"status": "success", "data": {"items": items, "total": 40, "limit": 8}}
            ex = _exchange(ts, "GET", "/api/v1/clients/", "limit=8&offset=0", headers, None, answer)
        elif kind == 4:  # create
            body = {k: v for k, v in _client(fake).items() if k in ("name", "email", "phone")}
            body["notes"] = fake.sentence()
            ex = _exchange(ts, "POST", "/api/v1/clients/", "", headers, body, _client(fake))
        else:  # metrics and single reads
            cid = fake.uuid4()
            query = f"client_id={cid}&period=day&start_date=2026-02-01&end_date=2026-03-01"
            answer = {"status": "success", "data": {
                "client_id": cid, "series": [{"ts": fake.iso8601(), "executions": i,
                                              "status": "success"} for i in range(6)]}}  # fmt: skip
            ex = _exchange(ts, "GET", "/api/v1/metrics/historical", query, headers, None, answer)
        out.append(ex)
    return out


def _client(fake: Faker) -> dict[str, Any]:
    return {
        "id": str(uuid.UUID(int=fake.random.getrandbits(128), version=4)),
        "name": fake.name(), "email": fake.email(), "phone": fake.phone_number(),
        "company": fake.company(), "notes": fake.sentence(nb_words=8),
        "n8n_url": f"https://n8n.{fake.domain_name()}", "n8n_configured": True,
        "created_at": fake.iso8601(), "tags": ["sales", "ops"], "status": "active",
    }  # fmt: skip


def _exchange(
    ts: datetime, method: str, path: str, query: str, headers: list[tuple[str, str]],
    body: object, answer: object,
) -> Exchange:  # fmt: skip
    req = json.dumps(body).encode() if body is not None else None
    return Exchange(
        ts=ts, method=method, path=path, query=query, scheme="http", host="127.0.0.1",
        port=8000, client_addr="127.0.0.1",
        req_headers=[*headers, JSON] if req else headers, req_body=req, status=200,
        resp_headers=[JSON, ("Date", "Mon, 02 Mar 2026 09:00:00 GMT"), ("Server", "uvicorn")],
        resp_body=json.dumps(answer).encode(), duration_ms=4.0,
    )  # fmt: skip


def time_per_exchange_us(make: Callable[[], Any], exchanges: list[Exchange]) -> float:
    anonymizer = make()  # a fresh one: cold memo, as a new capture has
    start = time.perf_counter()
    for exchange in exchanges:
        anonymizer.record(exchange)
    return (time.perf_counter() - start) / len(exchanges) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--old-rev", default=OLD_REV)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        make_old = load_old_anonymizer(args.old_rev, Path(tmp))
        policy = load_policy()

        def make_new() -> Anonymizer:
            return Anonymizer(policy, b"bench-key")

        warm = make_exchanges(200, seed=999)  # imports, regex compiles, word lists
        time_per_exchange_us(make_old, warm)
        time_per_exchange_us(make_new, warm)
        runs: dict[str, list[float]] = {"old": [], "new": []}
        for repeat in range(args.repeat):
            exchanges = make_exchanges(args.exchanges, seed=repeat)  # fresh values each time
            runs["old"].append(time_per_exchange_us(make_old, exchanges))
            runs["new"].append(time_per_exchange_us(make_new, exchanges))
    best = {name: min(values) for name, values in runs.items()}
    result = {
        "exchanges": args.exchanges,
        "old_rev": args.old_rev,
        "us_per_exchange": runs,
        "best_us": best,
        "ratio_new_over_old": best["new"] / best["old"],
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(
        f"anonymize, µs per exchange (best of {args.repeat}, {args.exchanges} fresh exchanges "
        f"each): old {best['old']:.0f}, new {best['new']:.0f}, "
        f"new/old {result['ratio_new_over_old']:.2f}x"
    )
    print(
        "  runs: "
        + "; ".join(f"{k} " + ", ".join(f"{v:.0f}" for v in vs) for k, vs in runs.items())
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
