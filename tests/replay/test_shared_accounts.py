"""Users who share an account are one session each, through capture and replay: K
concurrent users → K sessions, none with overlapping requests, and one user's logout
never breaks another's session when the trace is replayed (sandbox: whole-second JWTs,
so users of one account who sign in within one second hold the same token)."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from tests.capture.proxies import PROBE_PATH, capture_proxy, captured, stop
from tests.servers import SandboxTarget
from tracereplay.cli import main
from tracereplay.demo.accounts import accounts_csv
from tracereplay.models.frame import requests_frame
from tracereplay.models.sessions import sessionize
from tracereplay.trace.info import describe_trace, overlapping_sessions

pytestmark = pytest.mark.slow

ACCOUNTS = 4
USERS_PER_ACCOUNT = 3
USERS = ACCOUNTS * USERS_PER_ACCOUNT
LOGIN = "/api/v1/auth/login"


def play_user(proxy_url: str, index: int, account: object, gate: threading.Barrier,
              logged_out: threading.Barrier) -> None:  # fmt: skip
    """One user on its own connection and address: sign in at the same moment as the other
    users of its account, browse, and (every third user) sign out while the others go on."""
    rng = random.Random(index)
    browser = index % 2 == 0  # cookies; the others send the bearer header
    headers = {"X-Forwarded-For": f"203.0.113.{10 + index}"}
    with httpx.Client(base_url=proxy_url, headers=headers, timeout=20) as http:
        gate.wait(timeout=30)
        body = {"email": account.email, "password": account.password}  # type: ignore[attr-defined]
        answer = http.post(LOGIN, json=body)
        answer.raise_for_status()
        tokens = answer.json()["data"]
        auth = {} if browser else {"Authorization": f"Bearer {tokens['access_token']}"}
        if not browser:
            http.cookies.clear()

        def call(method: str, path: str, **kw: object) -> None:
            response = http.request(method, path, headers=auth, **kw)  # type: ignore[arg-type]
            assert response.status_code < 400, (index, path, response.status_code)
            if not browser:
                http.cookies.clear()

        for _ in range(2):
            call("GET", "/api/v1/auth/me")
            call("GET", "/api/v1/clients/", params={"limit": 5})
        if index % USERS_PER_ACCOUNT == 0:
            logout = {} if browser else {"json": {"refresh_token": tokens["refresh_token"]}}
            call("POST", "/api/v1/auth/logout", **logout)
            logged_out.wait(timeout=30)
            return
        logged_out.wait(timeout=30)  # the others of the account go on after its logout
        for _ in range(3):
            call("GET", "/api/v1/clients/", params={"limit": rng.choice((5, 10))})
            call("GET", "/api/v1/auth/me")


@pytest.fixture(scope="module")
def shared_trace(sandbox_target: SandboxTarget, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shared") / "trace"
    admins = [a for a in sandbox_target.accounts if a.role == "admin"][:ACCOUNTS]
    gates = [threading.Barrier(USERS_PER_ACCOUNT) for _ in admins]
    done = [threading.Barrier(USERS_PER_ACCOUNT) for _ in admins]
    errors: list[BaseException] = []
    with capture_proxy(sandbox_target.url, out) as proxy:

        def run(i: int) -> None:
            k = i // USERS_PER_ACCOUNT
            try:
                play_user(proxy.url, i, admins[k], gates[k], done[k])
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)
                gates[k].abort()
                done[k].abort()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(USERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert stop(proxy) == 0
    assert not errors, errors
    return out


def test_each_user_of_a_shared_account_is_one_session(shared_trace: Path) -> None:
    rows = captured(shared_trace)
    logins = [r for r in rows.to_pylist() if r["path"] == LOGIN]
    tokens = Counter(json.loads(r["resp_body"])["data"]["access_token"] for r in logins)
    assert len(logins) == USERS
    assert max(tokens.values()) >= 2  # users of one account did get the same token
    sessions = sessionize(requests_frame(rows))
    assert sessions["session_id"].nunique() == USERS
    assert overlapping_sessions(rows) == 0
    # Every session is one user: one connection, one forwarded address.
    per_session = sessions.groupby("session_id").agg(
        conns=("conn", "nunique"), addrs=("addr", "nunique")
    )
    assert (per_session["conns"] == 1).all() and (per_session["addrs"] == 1).all()
    # The health probes of the test harness are sessions of their own connections.
    info = describe_trace(shared_trace)
    assert info.overlapping_sessions == 0
    probes = sum(
        1 for p in captured(shared_trace, with_probes=True)["path"].to_pylist() if p == PROBE_PATH
    )
    assert USERS <= info.sessions <= USERS + probes


def test_a_logout_in_one_session_never_breaks_another_in_replay(
    shared_trace: Path, sandbox_target: SandboxTarget, tmp_path: Path
) -> None:
    accounts = tmp_path / "accounts.csv"
    admins = [a for a in sandbox_target.accounts if a.role == "admin"][:ACCOUNTS]
    accounts.write_text(accounts_csv(admins))
    out = tmp_path / "run"
    code = main(["replay", str(shared_trace), "--host", sandbox_target.url, "--out", str(out),
                 "--credentials", str(accounts), "--grace", "30s"])  # fmt: skip
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    timing = pq.read_table(out / "timing.parquet").to_pandas()
    statuses = timing["status"].value_counts().to_dict()
    assert 401 not in statuses, statuses
    assert (timing["status"] < 400).all(), statuses
    planned = summary["sessions_planned"]
    assert planned >= USERS and summary["sessions_completed"] == planned
    assert summary["sessions_cut"] == 0
