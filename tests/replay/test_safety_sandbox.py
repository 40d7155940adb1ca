"""Issue 10 against the sandbox, by its own audit: a replay of the staging capture (trace and
model, 1x and 5x) writes to no object it did not create; `tracereplay cleanup` returns the
object counts to where they were, is idempotent and exits 1 while anything is left; the
discovery phase is bounded and reported; a login that failed in the capture fails again;
bad input is refused within a second. A target of
its own (module scope, started as the capture's was), so every audit count is this
module's doing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.bad_input import assert_exit_2
from tests.factories import T0, make_record, write_trace
from tests.servers import SandboxTarget, sandbox_target
from tracereplay.cli import main
from tracereplay.demo.accounts import accounts_csv
from tracereplay.replay.discovery import MAX_DISCOVERY_S

pytestmark = pytest.mark.slow
AUDIT = "/api/v1/system/audit"


@pytest.fixture(scope="module")
def target() -> Iterator[SandboxTarget]:
    with sandbox_target("--service-time-scale", "0", "--login-rate-limit", "0") as started:
        yield started


@pytest.fixture(scope="module")
def credentials(target: SandboxTarget, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("accounts") / "accounts.csv"
    path.write_text(accounts_csv(target.accounts))
    return path


def audit(target: SandboxTarget) -> dict[str, Any]:
    return dict(target.admin_get(AUDIT))


def protected_foreign(report: dict[str, Any]) -> dict[str, int]:
    """The audit's writes to objects another account (or the seed) created, by protected
    endpoint (DELETE, PUT, PATCH)."""
    by_endpoint = report["foreign_writes"]["by_endpoint"]
    return {e: n for e, n in by_endpoint.items() if e.split(" ")[0] in ("DELETE", "PUT", "PATCH")}


@pytest.mark.parametrize(("source", "scale"), [("trace", 1), ("trace", 5), ("model", 1),
                                               ("model", 5)])  # fmt: skip
def test_no_foreign_write_and_cleanup_leaves_the_target_as_found(
    source: str,
    scale: int,
    staging_trace: Path,
    staging_model: Path,
    target: SandboxTarget,
    credentials: Path,
    tmp_path: Path,
) -> None:
    replayed = staging_trace if source == "trace" else staging_model
    before = audit(target)
    out = tmp_path / "run"
    code = main(["replay", str(replayed), "--host", target.url, "--out", str(out),
                 "--speed", "4", "--scale", str(scale), "--credentials", str(credentials),
                 "--grace", "15s"])  # fmt: skip
    assert code == 0
    during = audit(target)
    summary = json.loads((out / "summary.json").read_text())
    # 0 protected writes to objects the run did not create, by the target's own count
    # (POST actions on an existing object, a sync, are not protected by default).
    assert protected_foreign(during) == protected_foreign(before), (
        during["foreign_writes"],
        summary["skipped"],
    )
    assert summary["foreign_writes_sent"]["total"] == 0
    assert summary["requests"] > 0 and summary["skipped"]["total"] < summary["requests"]
    discovery = summary["discovery"]  # bounded and reported
    assert discovery is not None and 0 < discovery["accounts"] <= len(target.accounts)
    assert discovery["seconds"] <= MAX_DISCOVERY_S
    endpoints = len(discovery["endpoints"])
    assert discovery["requests"] <= discovery["accounts"] * (endpoints + 2)  # login, logout
    created = summary["created_objects"]
    assert created["created"] == created["deleted_by_sessions"] + created["left"]
    if created["left"]:
        assert (out / "created.json").exists()
        # Without the accounts cleanup cannot sign in: what is left stays, and it says so.
        assert main(["cleanup", str(out), "--host", target.url]) == 1
        assert audit(target)["objects"] == during["objects"]
    cleanup = ["cleanup", str(out), "--host", target.url, "--credentials", str(credentials)]
    assert main(cleanup) == 0
    after = audit(target)
    assert after["objects"] == before["objects"]
    assert protected_foreign(after) == protected_foreign(before)
    assert main(cleanup) == 0  # idempotent: nothing is sent twice, nothing left
    assert audit(target)["objects"] == before["objects"]


@pytest.mark.parametrize("bad", ["credentials", "model", "trace", "slo"])
def test_bad_input_is_refused_within_a_second(
    bad: str,
    staging_model: Path,
    target: SandboxTarget,
    credentials: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, extra = str(staging_model), ["--credentials", str(credentials)]
    broken = tmp_path / "broken"
    if bad == "credentials":
        broken.write_text("someone@example.test,Pw-0000\n")  # no header line
        extra = ["--credentials", str(broken)]
    elif bad == "model":
        broken.write_text('{"format": "tracereplay.model/1", "behaviors": [')
        source = str(broken)
    elif bad == "trace":
        broken.mkdir()
        (broken / "part-000001.parquet").write_bytes(b"not parquet")
        source = str(broken)
    else:
        broken.write_text("p95_ms: [fast\n")
        extra += ["--profile", "stress", "--slo", str(broken)]
    before = audit(target)
    started = time.monotonic()
    out = tmp_path / "run"
    assert_exit_2(["replay", source, "--host", target.url, "--out", str(out), *extra],
                  capsys, out=out)  # fmt: skip
    assert time.monotonic() - started < 1.0
    assert audit(target)["objects"] == before["objects"]


def login_trace(directory: Path, failed: set[int], sessions: int = 6) -> Path:
    """Sessions that sign in (a captured 401 for those in `failed`) and read /auth/me with
    the token the login handed out."""
    rows = []
    for i in range(sessions):
        t = T0 + timedelta(seconds=i)
        token = f"tok-{i}-" + "a" * 24
        body = json.dumps({"email": f"user{i}@anon.invalid", "password": "[removed]"}).encode()
        ok = {"status": "success", "data": {"access_token": token, "user": {"role": "admin"}}}
        answer = {"status": "error"} if i in failed else ok
        rows.append(make_record(ts=t, session=f"s{i}", method="POST", path="/api/v1/auth/login",
                                req_body=body, status=401 if i in failed else 200,
                                req_headers=(("content-type", "application/json"),),
                                resp_body=json.dumps(answer).encode()))  # fmt: skip
        if i not in failed:
            bearer = (("authorization", f"Bearer {token}"),)
            rows.append(make_record(ts=t + timedelta(seconds=0.3), session=f"s{i}",
                                    path="/api/v1/auth/me", req_headers=bearer))  # fmt: skip
    return write_trace(directory, rows)


def test_a_login_that_failed_in_the_capture_fails_again_with_a_wrong_password(
    target: SandboxTarget, credentials: Path, tmp_path: Path
) -> None:
    failed = {1, 4}
    trace = login_trace(tmp_path / "trace", failed)
    out = tmp_path / "run"
    code = main(["replay", str(trace), "--host", target.url, "--out", str(out),
                 "--credentials", str(credentials), "--grace", "5s"])  # fmt: skip
    assert code == 0
    timing = pq.read_table(out / "timing.parquet").to_pandas()
    logins = timing[timing["endpoint"] == "POST /api/v1/auth/login"]
    replayed = dict(zip(logins["session"].astype(int), logins["status"].astype(int), strict=True))
    assert replayed == {i: 401 if i in failed else 200 for i in range(6)}
    assert json.loads((out / "summary.json").read_text())["logins_failed_as_planned"] == 2
    me = timing[timing["endpoint"] == "GET /api/v1/auth/me"]
    assert len(me) == 4 and (me["status"] == 200).all()
