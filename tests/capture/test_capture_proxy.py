"""`tracereplay capture` end to end: sandbox target ← capture proxy ← httpx, on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.capture.canaries import make_canaries
from tests.capture.proxies import capture_proxy, captured, stop
from tests.servers import SandboxTarget
from tracereplay.capture.anonymize.detectors import find_all
from tracereplay.errors import TraceError
from tracereplay.processes import free_port
from tracereplay.trace import open_trace

pytestmark = pytest.mark.slow
API = "/api/v1"


def login(http: httpx.Client, email: str, password: str) -> httpx.Response:
    return http.post(f"{API}/auth/login", json={"email": email, "password": password})


def all_stored_strings(out: Path) -> str:
    """Every value of every row, decoded, joined: what a leak check must look through."""
    table = captured(out, with_probes=True)
    parts: list[str] = []
    for row in table.to_pylist():
        for value in row.values():
            if isinstance(value, bytes):
                parts.append(value.decode("utf-8", "replace"))
            elif isinstance(value, list):  # header maps
                parts.extend(f"{k}: {v}" for k, v in value)
            elif value is not None:
                parts.append(str(value))
    return "\n".join(parts)


def test_canaries_never_reach_the_trace(sandbox_target: SandboxTarget, tmp_path: Path) -> None:
    out = tmp_path / "trace"
    c = make_canaries(seed=101)
    admin = sandbox_target.account("admin")
    seen_tokens: list[str] = []
    with capture_proxy(sandbox_target.url, out) as proxy:
        headers = {"X-Forwarded-For": c.ip}
        with httpx.Client(base_url=proxy.url, headers=headers, timeout=10) as browser:
            assert login(browser, admin.email, c.password).status_code == 401
            answer = login(browser, admin.email, admin.password)
            assert answer.status_code == 200
            seen_tokens += [answer.json()["data"]["access_token"], *browser.cookies.values()]
            created = browser.post(
                f"{API}/clients/",
                json={"name": "Canary Client", "email": c.email, "phone": c.phone,
                      "company": "Canary Inc", "notes": f"card {c.card}, call {c.phone}"},
            )  # fmt: skip
            assert created.status_code == 201
            client_id = created.json()["data"]["id"]
            configured = browser.post(
                f"{API}/clients/{client_id}/configure",
                json={"n8n_url": "https://n8n.example.test", "n8n_api_key": c.api_key},
                headers={"X-N8N-API-KEY": c.api_key},
            )
            assert configured.status_code == 200
            browser.cookies.set("session", c.cookie)
            assert browser.get(f"{API}/clients/").status_code == 200
            assert browser.get(f"{API}/clients/{client_id}").status_code == 200
        with httpx.Client(base_url=proxy.url, timeout=10) as api:
            token = login(api, admin.email, admin.password).json()["data"]["access_token"]
            seen_tokens.append(token)
            bearer = {"Authorization": f"Bearer {token}", "X-Forwarded-For": c.ip}
            assert api.get(f"{API}/auth/me", headers=bearer).status_code == 200
            stale = {"Authorization": f"Bearer {c.jwt}"}
            assert api.get(f"{API}/auth/me", headers=stale).status_code == 401
            assert api.post(f"{API}/auth/logout", headers=bearer).status_code == 200
        assert stop(proxy) == 0

    canaries = [*c.values(), admin.password, admin.email, *seen_tokens]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files, "the capture wrote no file"
    for path in files:  # the files as bytes (journals are uncompressed Arrow)
        data = path.read_bytes()
        for canary in canaries:
            assert canary.encode() not in data, f"{path.name} holds a raw canary"
    stored = all_stored_strings(out)  # and every value, decompressed
    for canary in canaries:
        assert canary not in stored
    assert find_all(stored) == []
    scan = subprocess.run(
        [sys.executable, "-m", "tracereplay.cli", "scan", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert scan.returncode == 0, scan.stdout + scan.stderr


def test_count_status_timing_sizes_and_consistency(
    sandbox_target: SandboxTarget, tmp_path: Path
) -> None:
    out = tmp_path / "trace"
    admin = sandbox_target.account("admin")
    sent: list[tuple[str, int, int, int, float]] = []  # path, status, req size, resp size, s
    with (
        capture_proxy(sandbox_target.url, out) as proxy,
        httpx.Client(base_url=proxy.url, timeout=10) as http,
    ):

        def send(method: str, path: str, **kw: object) -> httpx.Response:
            t0 = time.perf_counter()
            answer = http.request(method, path, **kw)  # type: ignore[arg-type]
            wall_s = time.perf_counter() - t0
            req_size = len(answer.request.content)
            sent.append((path, answer.status_code, req_size, len(answer.content), wall_s))
            return answer

        token = send("POST", f"{API}/auth/login", json={"email": admin.email,
                     "password": admin.password}).json()["data"]["access_token"]  # fmt: skip
        http.headers["Authorization"] = f"Bearer {token}"
        email = make_canaries(seed=5).email
        ids = []
        for i in range(2):
            body = {"name": f"Client {i}", "email": email, "company": "Acme"}
            ids.append(send("POST", f"{API}/clients/", json=body).json()["data"]["id"])
        for client_id in ids:
            send("GET", f"{API}/clients/{client_id}")
            send("GET", f"{API}/metrics/overview", params={"client_id": client_id})
        for _ in range(20):
            send("GET", f"{API}/clients/")
        send("GET", f"{API}/clients/00000000-0000-4000-8000-000000000000")  # 404
        send("GET", f"{API}/nope")  # 404 from the router
        assert stop(proxy) == 0

    table = captured(out)
    assert table.num_rows == len(sent)
    rows = table.to_pylist()
    for row, (_, status, req_size, resp_size, wall_s) in zip(rows, sent, strict=True):
        assert row["status"] == status
        assert row["req_body_size"] == req_size
        assert row["resp_body_size"] == resp_size
        assert 0 < row["duration_ms"] <= wall_s * 1000 + 5
        assert row["error"] is None
    # correlation survives: the created id (pseudonymized) is the id in later paths
    creates = [r for r in rows if r["method"] == "POST" and r["path"] == f"{API}/clients/"]
    new_ids = [json.loads(r["resp_body"])["data"]["id"] for r in creates]
    assert len(set(new_ids)) == 2 and not set(new_ids) & set(ids)
    gets = [r["path"].rsplit("/", 1)[1] for r in rows if r["path"].startswith(f"{API}/clients/")
            and r["method"] == "GET" and r["path"] != f"{API}/clients/"]  # fmt: skip
    assert gets[:2] == new_ids
    # the same email in two requests gets the same pseudonym
    emails = {json.loads(r["req_body"])["email"] for r in creates}
    assert len(emails) == 1 and email not in emails
    # one bearer session from the login on (the login hands out the token)
    assert len({r["session"] for r in rows}) == 1


def children(pid: int) -> set[int]:
    """Direct child processes of `pid` (the capture's anonymizer workers)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return found


def wait_for_rows(out: Path, timeout_s: float = 30.0) -> None:
    """Until the capture has written its first row (its anonymizer process is up)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if open_trace(out).num_rows:
                return
        except TraceError:
            pass
        time.sleep(0.1)
    raise AssertionError("the capture wrote no row")


def test_sigkill_loses_at_most_the_last_flush(
    sandbox_target: SandboxTarget, tmp_path: Path
) -> None:
    # Paced below what the anonymizer sustains on a busy 2-core machine, so its backlog
    # stays near empty: the promise is "the last flush interval, plus the backlog".
    out = tmp_path / "trace"
    done_at: dict[int, float] = {}
    with capture_proxy(sandbox_target.url, out, "--flush-interval", "0.5s") as proxy:
        with httpx.Client(base_url=proxy.url, timeout=5) as http:
            wait_for_rows(out)
            workers = children(proxy.process.pid)
            assert workers, "the anonymizer runs in worker processes"
            end = time.monotonic() + 3.0
            n = 0
            while time.monotonic() < end:
                http.get(f"{API}/system/health", params={"seq": n})
                done_at[n] = time.monotonic()
                n += 1
                time.sleep(max(0.0, 0.01 - (time.monotonic() - done_at[n - 1])))
        killed_at = time.monotonic()
        proxy.process.send_signal(signal.SIGKILL)
        proxy.process.wait(timeout=10)
    trace = open_trace(out)  # every file readable, journals included
    table = trace.to_table()
    got = {int(q.split("=")[1]) for q in table.column("query").to_pylist() if q}
    old_enough = {i for i, t in done_at.items() if t < killed_at - 0.5 - 0.5}
    assert len(old_enough) > 20
    assert old_enough <= got
    assert got <= set(done_at)
    deadline = time.monotonic() + 10  # the workers see their pipe close and exit
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{w}").exists() for w in workers), "orphaned anonymizer"


def test_mitmdump_runs_the_addon(sandbox_target: SandboxTarget, tmp_path: Path) -> None:
    out = tmp_path / "trace"
    with capture_proxy(sandbox_target.url, out, mitmdump=True) as proxy:
        with httpx.Client(base_url=proxy.url, timeout=10) as http:
            for i in range(5):
                assert http.get(f"{API}/system/health", params={"i": i}).status_code == 200
        stop(proxy)
    table = captured(out)
    assert table.column("query").to_pylist() == [f"i={i}" for i in range(5)]
    assert open_trace(out).metadata.source == "capture"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracereplay.cli", *args], capture_output=True, text=True,
        check=False, timeout=60,
    )  # fmt: skip


def test_capture_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    bad_policy = tmp_path / "policy.toml"
    bad_policy.write_text("[bodies\n")
    port = free_port()
    cases = [
        (["capture", "--out", str(tmp_path / "a")], "--target is required"),
        (["capture", "--out", str(tmp_path / "b"), "--target", "ftp://x"], "want an http"),
        (["capture", "--out", str(tmp_path / "c"), "--target", "http://127.0.0.1:9",
          "--policy", str(bad_policy), "--listen", f"127.0.0.1:{port}"], "not valid TOML"),
        (["capture", "--out", str(tmp_path / "d"), "--target", "http://127.0.0.1:9",
          "--mode", "socks"], "want reverse or regular"),
        (["capture", "--out", str(tmp_path / "e"), "--target", "http://127.0.0.1:9",
          "--workers", "0"], "--workers must be >= 1"),
        (["capture", "--out", str(tmp_path / "f"), "--target", "http://127.0.0.1:9",
          "--max-backlog", "lots"], "not a size: 'lots'"),
    ]  # fmt: skip
    for args, message in cases:
        result = run_cli(*args)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


def test_capture_port_in_use_and_existing_trace(
    sandbox_target: SandboxTarget, tmp_path: Path
) -> None:
    out = tmp_path / "trace"
    with capture_proxy(sandbox_target.url, out) as proxy:
        busy = run_cli("capture", "--target", sandbox_target.url, "--out",
                       str(tmp_path / "other"), "--listen", f"127.0.0.1:{proxy.port}")  # fmt: skip
        with httpx.Client(base_url=proxy.url, timeout=10) as http:
            http.get(f"{API}/system/health")
        assert stop(proxy, signal.SIGINT) == 0  # Ctrl-C is the normal way to end a capture
    assert busy.returncode == 2 and "cannot listen on" in busy.stderr
    assert not (tmp_path / "other").exists()
    again = run_cli("capture", "--target", sandbox_target.url, "--out", str(out),
                    "--listen", f"127.0.0.1:{free_port()}")  # fmt: skip
    assert again.returncode == 2 and "already holds a trace" in again.stderr
    assert captured(out).num_rows == 1  # the first capture's row is untouched


def test_https_clients_through_mitmproxys_ca(sandbox_target: SandboxTarget, tmp_path: Path) -> None:
    out = tmp_path / "trace"
    ca = Path.home() / ".mitmproxy" / "mitmproxy-ca-cert.pem"  # made when the proxy starts
    with capture_proxy(sandbox_target.url, out) as proxy:
        https = proxy.url.replace("http://", "https://")
        with httpx.Client(
            base_url=https, verify=ssl.create_default_context(cafile=ca), timeout=10
        ) as http:
            assert http.get(f"{API}/system/health").status_code == 200
        stop(proxy)
    table = captured(out)
    assert table.num_rows == 1 and table.column("status").to_pylist() == [200]
