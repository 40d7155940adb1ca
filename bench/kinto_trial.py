"""The pipeline on a third-party app: Kinto (Mozilla's JSON storage API) from PyPI.

Writes a kinto.ini (memory backend, accounts plugin, Basic auth) to a work directory,
starts Kinto on a free 127.0.0.1 port, puts `tracereplay capture` in front of it, drives
it with the Locust users of bench/kinto_users.py (accounts with faker usernames and
passwords, wrong passwords, records CRUD, `Next-Page` pagination) for --run-time, then
runs `tracereplay scan`, `info` and `model` on the trace and, with --replay, replays the
trace 1× straight at Kinto with a credentials file of the accounts and runs `compare`.
Prints (and writes to WORK/figures.json, or --json) the figures: requests sent vs rows
captured, scan findings by kind, sessions, endpoints, the replay's status mix and what it
left on Kinto. Everything binds 127.0.0.1; every stage is bounded in time.

Kinto is not a dependency of tracereplay; give it its own venv:
    python3 -m venv /tmp/kinto-venv && /tmp/kinto-venv/bin/pip install kinto==26.5.0
    .venv/bin/python bench/kinto_trial.py --kinto-venv /tmp/kinto-venv [--replay] \\
        [--users 12] [--run-time 90] [--rewrite-host] [--work DIR] [--json FILE]
($KINTO_VENV works as --kinto-venv.)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pyarrow.compute as pc
from faker import Faker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for bench.*

from tracereplay.capture.scan import scan_trace
from tracereplay.processes import LOOPBACK, free_port, running
from tracereplay.trace import read_trace
from tracereplay.trace.info import describe_trace

BENCH = Path(__file__).resolve().parent
TRACEREPLAY = [sys.executable, "-m", "tracereplay.cli"]
SUMMARY = re.compile(r"(\d+) flows, (\d+) rows written .*?, (\d+) dropped, (\d+) dropped_backlog")
REMOVED = "[removed]"  # what the anonymizer stores for a password
STAGE_TIMEOUT_S = 600

KINTO_INI = """\
[server:main]
use = egg:waitress#main
host = 127.0.0.1
port = {port}

[app:main]
use = egg:kinto
kinto.includes = kinto.plugins.default_bucket
                 kinto.plugins.accounts
kinto.storage_backend = kinto.core.storage.memory
kinto.storage_url =
kinto.cache_backend = kinto.core.cache.memory
kinto.cache_url =
kinto.permission_backend = kinto.core.permission.memory
kinto.permission_url =
kinto.userid_hmac_secret = {userid_secret}
kinto.default_bucket_hmac_secret = {bucket_secret}
multiauth.policies = account
multiauth.policy.account.use = kinto.plugins.accounts.AccountsPolicy
kinto.account_create_principals = system.Everyone
kinto.account_write_principals = account:admin
kinto.bucket_create_principals = account:admin

[loggers]
keys = root, summary

[handlers]
keys = console, summary

[formatters]
keys = plain, summary

[logger_root]
level = WARNING
handlers = console

[logger_summary]
level = INFO
handlers = summary
qualname = request.summary
propagate = 0

[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = plain

[handler_summary]
class = FileHandler
args = ({served!r}, "a")
formatter = summary

[formatter_plain]
format = %(asctime)s %(levelname)s %(name)s %(message)s

[formatter_summary]
format = %(method)s %(path)s %(code)s
"""


def main() -> int:
    args = parse_args()
    kinto = args.kinto_venv / "bin" / "kinto"
    if not kinto.is_file():
        usage_error(
            f"no {kinto}: make a venv with Kinto first "
            "(python3 -m venv /tmp/kinto-venv && /tmp/kinto-venv/bin/pip install kinto==26.5.0) "
            "and pass --kinto-venv (or $KINTO_VENV)"
        )
    work = args.work or Path(tempfile.mkdtemp(prefix="kinto-trial-"))
    work.mkdir(parents=True, exist_ok=True)
    if any(work.iterdir()):
        usage_error(f"--work {work} is not empty")
    accounts = write_accounts(work / "accounts.csv", args.accounts)
    port, proxy_port = free_port(), free_port()
    kinto_url, proxy_url = f"http://{LOOPBACK}:{port}", f"http://{LOOPBACK}:{proxy_port}"
    ini = work / "kinto.ini"
    ini.write_text(
        KINTO_INI.format(
            port=port,
            userid_secret=secrets.token_hex(32),
            bucket_secret=secrets.token_hex(32),
            served=str(work / "kinto_served.log"),
        )
    )
    env = {"TRACEREPLAY_KEY": secrets.token_hex(32)}  # pseudonyms for this run only
    figures: dict[str, Any] = {
        "work": str(work),
        "users": args.users,
        "run_time_s": args.run_time,
        "rewrite_host": args.rewrite_host,
    }
    trace = work / "trace"
    with running(
        [str(kinto), "start", "--ini", str(ini)],
        ready_url=f"{kinto_url}/v1/__heartbeat__",
        start_timeout_s=60,
        log=work / "kinto.log",
    ):
        figures["kinto_version"] = httpx.get(f"{kinto_url}/v1/").json()["project_version"]
        capture = [*TRACEREPLAY, "capture", "--target", kinto_url, "--out", str(trace),
                   "--listen", f"{LOOPBACK}:{proxy_port}", "--workers", "1",
                   *(["--rewrite-host"] if args.rewrite_host else [])]  # fmt: skip
        capture_log = work / "capture.log"
        before = served(work)
        with running(capture, ready_port=(LOOPBACK, proxy_port), env=env, log=capture_log) as cap:
            figures["locust"] = drive(work, proxy_url, args)
            cap.send_signal(signal.SIGINT)
            cap.wait(timeout=120)
        figures["kinto_served_during_capture"] = served(work) - before
        figures["capture"] = capture_figures(capture_log.read_text(errors="replace"))
        figures["scan"] = scan_figures(trace, work)
        figures["info"] = info_figures(trace, work)
        figures["model"] = model_figures(trace, work)
        if args.replay:
            figures["replay"] = replay_figures(trace, work, kinto_url, env, args)
            figures["leftovers"] = leftovers(trace, kinto_url, accounts)
            figures["compare"] = compare_figures(trace, work)
    figures["missing_from_capture"] = (
        figures["kinto_served_during_capture"] - figures["capture"]["rows"]
    )
    text = json.dumps(figures, indent=2, sort_keys=True)
    (args.json or work / "figures.json").write_text(text + "\n")
    print(text)
    return 0


def usage_error(message: str) -> NoReturn:
    print(f"kinto_trial: {message}", file=sys.stderr)
    sys.exit(2)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    env_venv = os.environ.get("KINTO_VENV")
    parser.add_argument("--kinto-venv", type=Path, default=Path(env_venv) if env_venv else None,
                        required=env_venv is None, help="venv with kinto installed")  # fmt: skip
    parser.add_argument("--users", type=int, default=12)
    parser.add_argument("--accounts", type=int, default=6, help="shared by the users")
    parser.add_argument("--run-time", type=int, default=90, help="seconds of Locust traffic")
    parser.add_argument("--replay", action="store_true", help="replay the trace 1× and compare")
    parser.add_argument(
        "--rewrite-host", action="store_true", help="capture with --rewrite-host (Host: Kinto's)"
    )
    parser.add_argument("--work", type=Path, help="directory for every output (new or empty)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not 1 <= args.users <= 100 or not 1 <= args.run_time <= 900 or args.accounts < 1:
        parser.error("--users 1..100, --run-time 1..900 s, --accounts >= 1")
    return args


def write_accounts(path: Path, count: int) -> list[tuple[str, str]]:
    """Kinto accounts for the users (and the replay's --credentials): all made by faker."""
    fake = Faker()
    fake.seed_instance(secrets.randbits(32))
    names = list(dict.fromkeys(fake.user_name() for _ in range(count * 4)))[:count]
    accounts = [(name, fake.password(length=16)) for name in names]
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["email", "password"])  # replay/credentials.py's header
        writer.writerows(accounts)
    return accounts


def drive(work: Path, proxy_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Locust through the capture; what it sent, from its own stats."""
    argv = [sys.executable, "-m", "locust", "-f", str(BENCH / "kinto_users.py"), "--headless",
            "-u", str(args.users), "-r", "4", "--run-time", f"{args.run_time}s",
            "--stop-timeout", "10", "--host", proxy_url, "--csv", str(work / "locust"),
            "--only-summary", "--exit-code-on-error", "0"]  # fmt: skip
    with (work / "locust.log").open("wb") as log:
        subprocess.run(
            argv, stdout=log, stderr=subprocess.STDOUT, check=True, timeout=args.run_time + 120,
            env={**os.environ, "KINTO_TRIAL_ACCOUNTS": str(work / "accounts.csv")},
        )  # fmt: skip
    with (work / "locust_stats.csv").open(newline="") as file:
        rows = {row["Name"]: row for row in csv.DictReader(file)}
    total = rows["Aggregated"]
    return {
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "next_page_requests": int(rows.get("records next page", {}).get("Request Count", 0)),
    }


def served(work: Path) -> int:
    """Requests Kinto has answered so far (its `request.summary` log, one line each)."""
    log = work / "kinto_served.log"
    return len(log.read_text().splitlines()) if log.is_file() else 0


def capture_figures(log: str) -> dict[str, Any]:
    found = SUMMARY.search(" ".join(log.split()))
    if not found:
        raise SystemExit(f"kinto_trial: no summary line in the capture's log:\n{log[-2000:]}")
    flows, rows, dropped, dropped_backlog = map(int, found.groups())
    return {
        "flows": flows,
        "rows": rows,
        "dropped": dropped,
        "dropped_backlog": dropped_backlog,
        "warned_direct_links": "links to the target" in log,
    }


def run_cli(work: Path, name: str, *argv: str, env: dict[str, str] | None = None) -> int:
    """`tracereplay ARGV`, its output in WORK/NAME.txt; its exit code."""
    with (work / f"{name}.txt").open("wb") as out:
        done = subprocess.run(
            [*TRACEREPLAY, *argv], stdout=out, stderr=subprocess.STDOUT, check=False,
            timeout=STAGE_TIMEOUT_S, env={**os.environ, **(env or {})},
        )  # fmt: skip
    return done.returncode


def scan_figures(trace: Path, work: Path) -> dict[str, Any]:
    code = run_cli(work, "scan", "scan", str(trace))
    report = scan_trace(trace)
    by_kind: Counter[str] = Counter()
    for (kind, _column), count in report.counts.items():
        by_kind[kind] += count
    return {"exit_code": code, "findings": report.findings, "by_kind": dict(by_kind)}


def info_figures(trace: Path, work: Path) -> dict[str, Any]:
    code = run_cli(work, "info", "info", str(trace))
    info = describe_trace(trace)
    return {
        "exit_code": code,
        "rows": info.rows,
        "sessions": info.sessions,
        "overlapping_sessions": info.overlapping_sessions,
    }


def model_figures(trace: Path, work: Path) -> dict[str, Any]:
    model_file = work / "model.json"
    code = run_cli(work, "model", "model", str(trace), "--out", str(model_file))
    if code != 0:
        return {"exit_code": code}
    model = json.loads(model_file.read_text())
    return {
        "exit_code": code,
        "sessions": model["sessions"]["stats"]["sessions"],
        "endpoints": sorted(model["endpoints"]),
        "auth_login": model["auth"]["login"],
    }


def replay_figures(
    trace: Path, work: Path, kinto_url: str, env: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    run = work / "replay"
    code = run_cli(
        work, "replay", "replay", str(trace), "--host", kinto_url, "--out", str(run),
        "--credentials", str(work / "accounts.csv"), "--run-time", f"{args.run_time + 90}s",
        env=env,
    )  # fmt: skip
    figures: dict[str, Any] = {"exit_code": code}
    summary = run / "summary.json"
    if summary.is_file():
        done = json.loads(summary.read_text())
        keys = ("requests", "failures", "sessions_planned", "sessions_completed",
                "sessions_cut", "sessions_failed", "sessions_login_failed")  # fmt: skip
        figures.update({k: done.get(k) for k in keys})
    replayed = run / "replayed"
    if replayed.is_dir():
        status = read_trace(replayed).column("status")
        counts = pc.value_counts(status).to_pylist()
        figures["status_mix"] = {str(c["values"]): c["counts"] for c in counts}
    return figures


def leftovers(trace: Path, kinto_url: str, accounts: list[tuple[str, str]]) -> dict[str, Any]:
    """What the replay left on Kinto: accounts it made (pseudonymous names from the trace's
    paths) that take the anonymizer's placeholder as a password, and their records."""
    paths = read_trace(trace).column("path").to_pylist()
    names = sorted({p.split("/")[3] for p in paths if p.startswith("/v1/accounts/")})
    made: dict[str, int] = {}
    with httpx.Client(base_url=kinto_url, timeout=10) as http:
        for name in names:
            who = http.get("/v1/", auth=(name, REMOVED)).json().get("user")
            if who is None:
                continue
            records = http.head(
                "/v1/buckets/default/collections/tasks/records", auth=(name, REMOVED)
            )
            made[name] = int(records.headers.get("Total-Records", 0))
    return {
        "accounts_in_trace": len(names),
        "raw_account_names_in_trace": len(set(names) & {name for name, _ in accounts}),
        "accounts_with_placeholder_password": len(made),
        "their_records": sum(made.values()),
    }


def compare_figures(trace: Path, work: Path) -> dict[str, Any]:
    out = work / "compare"
    code = run_cli(work, "compare", "compare", str(trace), str(work / "replay" / "replayed"),
                   "--out", str(out))  # fmt: skip
    doc_file = out / "compare.json"
    if not doc_file.is_file():
        return {"exit_code": code}
    doc = json.loads(doc_file.read_text())
    return {
        "exit_code": code,
        "verdict": doc["verdict"],
        "requests": doc["requests"],
        "sessions": doc["sessions"],
        "fidelity": doc["fidelity"]["verdict"],
    }


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.TimeoutExpired as exc:
        sys.exit(f"kinto_trial: a stage ran out of time: {exc.cmd[3:5]}")
