"""A session whose real login failed fails its first login again, and only that one: a
real user who mistyped the password and then signed in right (one session: the failed
key joins its connection's next one, models/sessions.join_failed_credentials) is replayed
as a failed login followed by a successful one, and the rest of the session goes on
signed in. The old replay sent the wrong password to every login of such a session."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.factories import T0, write_trace
from tests.replay.trace_steps import Step, answer, session_rows
from tests.servers import SandboxTarget, sandbox_target
from tracereplay.cli import main
from tracereplay.demo.accounts import accounts_csv
from tracereplay.models.correlations import AuthInfo
from tracereplay.replay.correlate import SessionCorrelator
from tracereplay.replay.credentials import WRONG_PASSWORD, Credential, assign_account
from tracereplay.replay.plan import PlannedRequest

LOGIN = "POST /auth/login"
AUTH = AuthInfo(LOGIN, None, (), None, None)
ACCOUNT = Credential("c0@example.test", "right-pw", "client")


def login_body(sent: object) -> dict[str, str]:
    body = getattr(sent, "body", None)
    assert isinstance(body, bytes)
    return dict(json.loads(body))


def test_only_the_first_login_of_a_failing_session_sends_the_wrong_password() -> None:
    failing = assign_account([ACCOUNT], 0, "client", login_fails=True).credential
    assert failing is not None and failing.password == WRONG_PASSWORD
    assert failing.then == ACCOUNT and repr(ACCOUNT) not in repr(failing)
    session = SessionCorrelator([], AUTH, failing)
    login = PlannedRequest(LOGIN, "POST", "/auth/login", body=b'{"email":"x","password":"y"}',
                           headers=(("content-type", "application/json"),))  # fmt: skip
    first, second, third = (login_body(session.prepare(login)) for _ in range(3))
    assert first == {"email": ACCOUNT.email, "password": WRONG_PASSWORD}
    assert second == third == {"email": ACCOUNT.email, "password": ACCOUNT.password}
    # A session whose login did not fail: the right password every time...
    plain = SessionCorrelator([], AUTH, assign_account([ACCOUNT], 0, "client").credential)
    assert login_body(plain.prepare(login))["password"] == ACCOUNT.password
    # ... but for a login the trace shows refused (a seat's next, mistyped attempt that the
    # capture keyed to this session, on the same connection).
    refused = replace(login, login_refused=True)
    assert login_body(plain.prepare(refused))["password"] == WRONG_PASSWORD
    assert login_body(plain.prepare(login))["password"] == ACCOUNT.password


# ---- against the sandbox ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def target() -> Iterator[SandboxTarget]:
    with sandbox_target("--service-time-scale", "0", "--login-rate-limit", "0") as started:
        yield started


def retry_trace(directory: Path) -> Path:
    """Three client sessions: the first mistypes (401), signs in right and lists its
    clients; the second signs in right at once; the third signs in, lists, and ends with a
    refused login (the seat's next, mistyped attempt, keyed to it by its connection)."""
    rows = []
    for i, mistyped in enumerate((True, False, False)):
        token = f"tok-{i}-" + "b" * 24
        body = json.dumps({"email": f"user{i}@anon.invalid", "password": "[removed]"}).encode()
        denied = b'{"status":"error","message":"invalid credentials"}'
        steps: list[Step] = [("POST", "/api/v1/auth/login", 401, denied, body)] if mistyped else []
        steps += [
            ("POST", "/api/v1/auth/login", 200, answer({"access_token": token}), body),
            ("GET", "/api/v1/clients/", 200, answer({"items": [], "total": 0}), None),
        ]
        if i == 2:
            steps.append(("POST", "/api/v1/auth/login", 401, denied, body))
        rows += session_rows(f"s{i}", T0 + timedelta(seconds=5 * i), token, steps, gap_s=0.5)
    return write_trace(directory, rows)


@pytest.mark.slow
def test_a_mistyped_then_corrected_login_replays_as_it_happened(
    target: SandboxTarget, tmp_path: Path
) -> None:
    client = next(a for a in target.accounts if a.role == "client")
    credentials = tmp_path / "accounts.csv"
    credentials.write_text(accounts_csv([client]))
    out = tmp_path / "run"
    trace = retry_trace(tmp_path / "trace")
    code = main(["replay", str(trace), "--host", target.url, "--out", str(out),
                 "--credentials", str(credentials), "--grace", "5s"])  # fmt: skip
    assert code == 0
    timing = pq.read_table(out / "timing.parquet").to_pandas().sort_values(["session", "seq"])
    statuses = [list(group["status"]) for _, group in timing.groupby("session", sort=True)]
    # Old code: [401, 401, 401] — the corrected login failed too, and the list with it;
    # and the third session's refused login was sent right: [200, 200, 200].
    assert statuses == [[401, 200, 200], [200, 200], [200, 200, 401]], statuses
