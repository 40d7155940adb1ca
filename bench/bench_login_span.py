"""What a captured duration covers, against what the replay measures (issue 10, login latency).

    .venv/bin/python bench/bench_login_span.py [--n 40] [--out DIR]

A fresh sandbox target (seed 7, service times on, no login limit) and the capture proxy in
front of it; one client sends N logins through the proxy and N straight to the target,
alternating, one at a time (no load of its own), each timed on the client from the send to
the last byte, as the replay times its requests. The trace's `duration_ms` of the proxied
logins (capture/exchange.py: mitmproxy's request.timestamp_start, the proxy's first byte of
the request, to response.timestamp_end, its last byte of the answer) is then set beside
both. Prints medians and p90s: direct (the replay's span), through the proxy on the client,
captured; and the captured minus direct difference. Loopback only; stops what it starts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sandbox_run import CaptureSpec, capture_proxy, sandbox

from tracereplay.demo.accounts import sandbox_accounts
from tracereplay.models.frame import load_requests

LOGIN = "/api/v1/auth/login"


def stats(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 2),
        "p90": round(float(np.percentile(values, 90)), 2),
    }


def timed(client: httpx.Client, body: dict[str, str]) -> float:
    started = time.perf_counter()
    answer = client.post(LOGIN, json=body)
    answer.read()
    elapsed = (time.perf_counter() - started) * 1000.0
    answer.raise_for_status()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="login-span-"))
    out.mkdir(parents=True, exist_ok=True)
    spec = CaptureSpec(target_options=("--login-rate-limit", "0"))
    account = next(a for a in sandbox_accounts(spec.seed) if a.role == "admin")
    body = {"email": account.email, "password": account.password}
    direct_ms, proxied_ms = [], []
    with sandbox(spec, out / "target.log") as url, capture_proxy(url, out) as proxy:
        with httpx.Client(base_url=url) as direct, httpx.Client(base_url=proxy) as via:
            timed(direct, body), timed(via, body)  # warm: connections, first hashes
            for _ in range(args.n):
                proxied_ms.append(timed(via, body))
                direct_ms.append(timed(direct, body))
        time.sleep(2.0)  # the proxy writes its last rows
    rows = load_requests(out / "trace")
    captured = rows[rows["path"] == LOGIN]["duration_ms"].astype(float).tolist()[1:]
    gap = [c - d for c, d in zip(captured, direct_ms, strict=False)]
    doc = {
        "n": args.n,
        "direct_client_ms": stats(direct_ms),
        "proxied_client_ms": stats(proxied_ms),
        "captured_duration_ms": stats(captured),
        "captured_minus_direct_ms": stats(gap),
        "captured_over_direct_p50": round(
            statistics.median(captured) / statistics.median(direct_ms), 3
        ),
        "out": str(out),
    }
    print(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
