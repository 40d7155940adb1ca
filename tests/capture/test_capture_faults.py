"""`tracereplay capture` under faults real systems have: bytes that are not UTF-8, a full
disk, two captures into one --out, a backlog the anonymizers cannot keep up with, an
--out that cannot be written. Each against a real proxy process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from tests.capture.proxies import TEST_KEY, capture_argv, capture_proxy, stop, threaded_server
from tests.capture.test_capture_proxy import children, run_cli, wait_for_rows
from tests.tmpfs import fill, small_tmpfs
from tracereplay.processes import free_port
from tracereplay.trace import open_trace, read_trace

pytestmark = pytest.mark.slow
LATIN1_NAME = "Müller-Bericht.pdf"
SUMMARY = re.compile(
    r"stopped \(([^)]+)\) after [\d.]+s: (\d+) flows, (\d+) rows written to .*?, (\d+) transport "
    r"errors, (\d+) dropped, (\d+) dropped_backlog"
)


class Backend(BaseHTTPRequestHandler):
    """A backend as real ones are: Latin-1 header values, distinct 4-5 KB JSON bodies."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path.startswith("/download"):
            body = b"%PDF-1.4 not really"
            self.send_response(200)
            # http.server writes header values as Latin-1, as many real servers do
            self.send_header("Content-Disposition", f'attachment; filename="{LATIN1_NAME}"')
            self.send_header("Content-Type", "application/pdf")
        else:
            rng = random.Random(self.path)
            items = [
                {"id": rng.randrange(10**9), "email": f"u{rng.randrange(10**12)}@example.org",
                 "note": "".join(rng.choices("abcdefghij klmnop", k=120)), "active": True}
                for _ in range(24)
            ]  # fmt: skip
            body = json.dumps({"status": "success", "data": items}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[str]:
    with threaded_server(Backend) as url:
        yield url


def raw_get(port: int, target: bytes, *headers: bytes) -> bytes:
    """An HTTP/1.1 GET with bytes no client library sends as they are."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        head = b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        conn.sendall(head + b"".join(h + b"\r\n" for h in headers) + b"\r\n")
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def summary(stderr: str) -> tuple[str, ...]:
    found = SUMMARY.search(stderr)
    assert found, stderr
    return found.groups()


def test_bytes_that_are_not_utf8_are_kept_escaped_and_flagged(backend: str, tmp_path: Path) -> None:
    out = tmp_path / "trace"
    with capture_proxy(backend, out) as proxy:
        with httpx.Client(base_url=proxy.url, timeout=10) as http:
            assert http.get("/download").status_code == 200  # Latin-1 response header
        assert raw_get(proxy.port, b"/files/caf\xe9/\xff?q=\xfe").startswith(b"HTTP/1.1 200")
        assert raw_get(proxy.port, b"/items", b"X-Customer: M\xfcller").startswith(b"HTTP/1.1 200")
        with httpx.Client(base_url=proxy.url, timeout=10) as http:
            for i in range(10):  # the writer goes on after them
                assert http.get("/items", params={"i": i}).status_code == 200
        assert stop(proxy) == 0
    stderr = proxy.stderr()
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
    flows, rows = summary(stderr)[1:3]
    assert flows == rows
    rows = read_trace(out).to_pylist()
    # What is stored of each value is the anonymizer's call (default deny); the rows are
    # there, flagged, and hold only valid text (Arrow would not have taken anything else).
    download = next(r for r in rows if r["path"] == "/download")
    assert download["escaped"] == ["resp_headers"]
    disposition = {k.lower(): v for k, v in download["resp_headers"]}["content-disposition"]
    assert "Müller" not in disposition and "M\\xfcller" not in disposition  # pseudonymized
    assert [r["escaped"] for r in rows if r["escaped"]] == [
        ["resp_headers"], ["path", "query"], ["req_headers"]
    ]  # fmt: skip
    assert sum(1 for r in rows if r["escaped"] is None) == len(rows) - 3


def test_a_second_capture_into_the_same_out_is_refused(backend: str, tmp_path: Path) -> None:
    out = tmp_path / "trace"
    with capture_proxy(backend, out, "--append") as first:
        other = subprocess.run(
            capture_argv(backend, out, free_port(), "--append"), capture_output=True,
            text=True, check=False, timeout=60, env={**os.environ, "TRACEREPLAY_KEY": TEST_KEY},
        )  # fmt: skip
        with httpx.Client(base_url=first.url, timeout=10) as http:
            assert http.get("/items").status_code == 200
        assert stop(first) == 0
    assert other.returncode == 2
    lines = other.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in other.stderr
    assert lines[0] == (
        f"tracereplay: error: --out {out}: another capture or writer is writing this trace "
        f"(pid {first.process.pid})"
    )
    assert open_trace(out).num_rows >= 1  # the first capture's trace is whole


def test_two_captures_started_together_one_wins(backend: str, tmp_path: Path) -> None:
    out = tmp_path / "new-trace"
    env = {**os.environ, "TRACEREPLAY_KEY": TEST_KEY}

    def capture(_: int) -> subprocess.CompletedProcess[str]:
        argv = capture_argv(backend, out, free_port(), "--duration", "3s")
        return subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=60, check=False
        )

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(capture, range(2)))
    assert sorted(r.returncode for r in results) == [0, 2], results
    loser = next(r.stderr for r in results if r.returncode == 2)
    assert "another capture or writer is writing this trace" in loser
    assert len(loser.strip().splitlines()) == 1


@pytest.mark.parametrize("case", ["file", "missing-parent", "read-only"])
def test_an_out_that_cannot_be_written_is_one_line_exit_2(
    backend: str, tmp_path: Path, case: str
) -> None:
    if case == "file":
        out = tmp_path / "a-file"
        out.write_text("x")
        message = f"--out {out}: exists and is not a directory"
    elif case == "missing-parent":
        out = tmp_path / "no" / "such" / "trace"
        message = f"--out {out}: the directory {out.parent} does not exist; create it first"
    if case == "read-only":
        with small_tmpfs(tmp_path / "ro", "1m", read_only=True) as ro:
            out = ro / "trace"
            result = run_cli("capture", "--target", backend, "--out", str(out),
                             "--listen", f"127.0.0.1:{free_port()}")  # fmt: skip
        message = f"--out {out}: cannot write there (Read-only file system)"
    else:
        result = run_cli("capture", "--target", backend, "--out", str(out),
                         "--listen", f"127.0.0.1:{free_port()}")  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"tracereplay: error: {message}"]


def test_a_full_disk_stops_the_capture_with_one_line_and_keeps_what_was_written(
    backend: str, tmp_path: Path
) -> None:
    with small_tmpfs(tmp_path / "fs", "3m") as fs:
        fill(fs, leave_bytes=400_000)
        out = fs / "trace"
        with capture_proxy(backend, out, "--flush-interval", "0.2s") as proxy:
            sent = 0
            with httpx.Client(base_url=proxy.url, timeout=10) as http:
                while proxy.process.poll() is None and sent < 3000:
                    try:
                        http.get("/items", params={"n": sent})
                    except httpx.TransportError:
                        break  # the capture stopped itself
                    sent += 1
            code = proxy.process.wait(timeout=60)
        stderr = proxy.stderr()
        assert code == 1, stderr
        assert "Traceback" not in stderr
        stopped_by, flows, written = summary(stderr)[:3]
        assert stopped_by == "write failure"
        failed = [line for line in stderr.splitlines() if "writing the trace failed" in line]
        # one line from the writer as it happens, and the capture's last line
        assert len(failed) == 2, stderr
        assert failed[0].startswith("capture: writing the trace failed (No space left on device)")
        assert re.search(r"; \d+ rows lost: writing the trace failed", failed[1])
        table = open_trace(out).to_table()  # readable, journal included
        assert 0 < table.num_rows == int(written) < int(flows)
        assert table["escaped"].null_count == table.num_rows


def test_a_full_backlog_leaves_exchanges_out_and_counts_them(backend: str, tmp_path: Path) -> None:
    out = tmp_path / "trace"
    # room for ~3 exchanges of ~4.6 KB: six clients at once overflow it
    args = ("--workers", "1", "--max-backlog", "16KiB", "--flush-interval", "0.5s")
    with capture_proxy(backend, out, *args) as proxy:
        with httpx.Client(base_url=proxy.url, timeout=10) as http:
            http.get("/items", params={"warm": 1})
            wait_for_rows(out)

        def hammer(worker: int) -> int:
            done = 0
            with httpx.Client(base_url=proxy.url, timeout=10) as http:
                end = time.monotonic() + 4.0
                while time.monotonic() < end:
                    http.get("/items", params={"w": worker, "n": done})
                    done += 1
            return done

        with ThreadPoolExecutor(6) as pool:
            sent = sum(pool.map(hammer, range(6))) + 1
        stopping = time.monotonic()
        assert stop(proxy) == 0
        drain_s = time.monotonic() - stopping
    _, flows, written, _, dropped, dropped_backlog = summary(proxy.stderr())
    assert int(flows) >= sent
    assert int(dropped_backlog) > 0, "the anonymizer kept up: the bound was not tested"
    assert int(written) + int(dropped) + int(dropped_backlog) == int(flows)
    assert open_trace(out).num_rows == int(written)
    assert drain_s < 10  # a few exchanges to anonymize after SIGTERM, not a long queue


def test_sigkill_under_overload_keeps_a_readable_trace_and_no_worker(
    backend: str, tmp_path: Path
) -> None:
    out = tmp_path / "trace"
    with capture_proxy(backend, out, "--max-backlog", "200KiB") as proxy:
        with httpx.Client(base_url=proxy.url, timeout=10) as http:
            http.get("/items")
            wait_for_rows(out)
            workers = children(proxy.process.pid)
            for n in range(300):
                http.get("/items", params={"n": n})
        proxy.process.send_signal(signal.SIGKILL)
        proxy.process.wait(timeout=10)
    table = open_trace(out).to_table()
    assert 1 <= table.num_rows <= 301
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{w}").exists() for w in workers)
