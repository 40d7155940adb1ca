"""Anonymization cost per exchange: an older anonymizer (read from git) against the current
one, on the same exchanges, in the same run, interleaved.

Two workloads, every value in them drawn fresh so no pseudonym memo hides the work:
`staging` looks like the staging users' traffic (logins handing out JWTs, client lists of
faker records, creates, metric queries with headers and cookies); `pages` is what
bench_capture.py's target serves (a distinct 4-5 KB JSON page of 20 clients per
exchange, behind a bearer token and a cookie). Faker is not timed. The old anonymizer
(`--old-rev`, default: the last commit before default deny) is loaded from git into a
temporary package, so both run in one process on one machine state; each repeat times
both, in alternating order, in process CPU time (what a worker spends per row) and wall
time. `--check` also compares every row the two produce, field by field (the
pseudonyms are part of the trace contract: same input and key, same row).

    .venv/bin/python bench/bench_anonymize.py [--workload staging|pages] [--exchanges 3000] \
        [--repeat 3] [--old-rev REV] [--check] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tracereplay and bench.*

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


def make_pages(count: int, seed: int) -> list[Exchange]:
    """bench_capture.py's exchanges: a GET answered by a distinct 4-5 KB page of clients."""
    from bench.bench_capture import Pages, bench_exchange

    pages = Pages(seed=seed)
    return [bench_exchange(pages.next()) for _ in range(count)]


WORKLOADS: dict[str, Callable[[int, int], list[Exchange]]] = {
    "staging": make_exchanges,
    "pages": make_pages,
}


def time_per_exchange_us(make: Callable[[], Any], exchanges: list[Exchange]) -> tuple[float, float]:
    """(CPU µs, wall µs) per exchange through a fresh anonymizer (cold memo, as a new
    capture has)."""
    anonymizer = make()
    cpu, wall = time.process_time(), time.perf_counter()
    for exchange in exchanges:
        anonymizer.record(exchange)
    per = 1e6 / len(exchanges)
    return (time.process_time() - cpu) * per, (time.perf_counter() - wall) * per


def differences(old: Any, new: Any, exchanges: list[Exchange]) -> list[str]:
    """Rows the two anonymizers make differently, as `exchange i: field` lines."""
    diffs: list[str] = []
    for i, exchange in enumerate(exchanges):
        a, b = old.record(exchange), new.record(exchange)
        for name in a.__dataclass_fields__:
            if getattr(a, name) != getattr(b, name):
                diffs.append(f"exchange {i}: {name}")
    return diffs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="staging")
    parser.add_argument("--exchanges", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--old-rev", default=OLD_REV)
    parser.add_argument("--check", action="store_true", help="compare every row, old vs new")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    make_workload = WORKLOADS[args.workload]
    with tempfile.TemporaryDirectory() as tmp:
        make_old = load_old_anonymizer(args.old_rev, Path(tmp))
        policy = load_policy()

        def make_new() -> Anonymizer:
            return Anonymizer(policy, b"bench-key")

        makers = {"old": make_old, "new": make_new}
        warm = make_workload(200, 999)  # imports, regex compiles, word lists
        for make in makers.values():
            time_per_exchange_us(make, warm)
        cpu: dict[str, list[float]] = {"old": [], "new": []}
        wall: dict[str, list[float]] = {"old": [], "new": []}
        diffs: list[str] = []
        for repeat in range(args.repeat):
            exchanges = make_workload(args.exchanges, repeat)  # fresh values each time
            order = ("old", "new") if repeat % 2 == 0 else ("new", "old")
            for name in order:
                spent_cpu, spent_wall = time_per_exchange_us(makers[name], exchanges)
                cpu[name].append(spent_cpu)
                wall[name].append(spent_wall)
            if args.check:
                diffs += [
                    f"repeat {repeat}, {d}" for d in differences(make_old(), make_new(), exchanges)
                ]
    ratios = [n / o for n, o in zip(cpu["new"], cpu["old"], strict=True)]
    result = {
        "workload": args.workload,
        "exchanges": args.exchanges,
        "old_rev": args.old_rev,
        "cpu_us_per_exchange": cpu,
        "wall_us_per_exchange": wall,
        "median_cpu_us": {k: statistics.median(v) for k, v in cpu.items()},
        "cpu_ratio_new_over_old": ratios,
        "median_ratio": statistics.median(ratios),
        "rows_compared": args.exchanges * args.repeat if args.check else 0,
        "rows_differing_fields": len(diffs),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "load_average": os.getloadavg(),
    }
    med = result["median_cpu_us"]
    print(
        f"anonymize {args.workload}, CPU µs per exchange (median of {args.repeat} interleaved "
        f"repeats, {args.exchanges} fresh exchanges each): old {med['old']:.0f}, "
        f"new {med['new']:.0f}; new/old per repeat "
        + ", ".join(f"{r:.3f}" for r in ratios)
        + f" (median {result['median_ratio']:.3f}); load {os.getloadavg()[0]:.1f}"
    )
    for label, runs in (("CPU", cpu), ("wall", wall)):
        print(f"  {label} runs: " + "; ".join(
            f"{k} " + ", ".join(f"{v:.0f}" for v in vs) for k, vs in runs.items()))  # fmt: skip
    if args.check:
        print(f"  rows compared: {result['rows_compared']}, differing fields: {len(diffs)}")
        for line in diffs[:20]:
            print("   ", line)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 1 if diffs else 0


if __name__ == "__main__":
    raise SystemExit(main())
