"""The replay as a load generator (issue 11 items 5-6): `tracereplay replay` vs a bare
Locust FastHttpUser against nginx on 127.0.0.1, A/B in one run.

Starts nginx (private config in a temp dir, a free port, one worker pinned to the last
CPU, a 4 KB JSON body, keepalive without a request limit) and measures:

1. per core (generator pinned to CPU 0 with taskset): the steady-state request rate and
   CPU per request of (a) bench/locust_bare.py (closed loop, --users users, no wait) and
   (b) `tracereplay replay` of a trace built for it (many short sessions of
   --per-session GETs, zero think time) offered at 1.5 x the bare rate, i.e. overloaded:
   the rate it reaches is its maximum; and (c) the replay with the bare run's load
   shape, --users sessions of 500 GETs each from time zero (one connection each), which
   parts the per-request cost from the per-session one. "Steady state" is the stretch
   between the 10th and the 90th percentile of the run's own send times; CPU is the
   process tree's user+system time sampled every 0.2 s (psutil), interpolated there.
   The machine's other load takes CPU from the pinned core: CPU per request is the
   figure that load moves least; `cpu_cores` says how much of a core the run got.
2. the replay offered 50 % and 90 % of its measured maximum (pinned): summary.json's
   start lateness p99, and stalls: gevent's monitor thread (GEVENT_MONITOR_THREAD_ENABLE,
   GEVENT_MAX_BLOCKING_TIME = --stall-ms) reports every time the hub did not switch for
   that long, with the stack; a report whose stack is in the writer (results.py,
   offload.py, pyarrow, the journal) is the tool's own IO. Beside it, the longest gap
   between consecutive sends of the steady stretch. --long-requests N adds a run of N
   requests at 90 % (the issue saw a 231 ms stall at ~100 k of 120 k requests).
   Each run also says where its CPU went by thread (`cpu_us_per_request_by_thread`:
   the CLI, the Locust sending loop, its writer's thread) and `runq_main_share`, the share
   of the stretch its sending loop was ready to run but waited for the CPU (another
   process had it); with --fifo the 50 % and 90 % runs are repeated at real-time priority
   (`chrt -r 10`, SCHED_RR, root): the start lateness left is the tool's own.
3. `--processes 2` vs 1 on both cores (not pinned), offered 4 x the one-core maximum:
   the steady-state rate ratio, the CPU each got, and sessions started ÷ planned.

Bounded: every run has a planned request count and a --run-time; nginx and every
process are stopped at the end.

    .venv/bin/python bench/bench_generator.py [--json out.json] [--seconds 10]
        [--long-requests 120000] [--skip-processes] [--inproc-rounds 24 [--only-inproc]] [--fifo]
        [--baseline COMMIT [--ab-rounds 3]]

--inproc-rounds N: first, the in-process A/B (`inproc_ab`, bench/gen_ab_child.py): this
tree against itself (A/A: what the A/B resolves) and, with --baseline COMMIT, against that
commit's replay (its package on PYTHONPATH, this venv); --only-inproc stops there.
--baseline COMMIT --ab-rounds N: after the bare and max runs, the max and long shapes of
this tree and of COMMIT's replay as whole runs, alternated N times (a whole run's CPU per
request spreads +-40 % for the same code: read the in-process A/B).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tracereplay.processes import LOOPBACK, free_port
from tracereplay.trace import TraceMetadata, TraceRecord, open_writer

HERE = Path(__file__).resolve().parent
BARE = HERE / "locust_bare.py"
CHILD = HERE / "gen_ab_child.py"
BIN = Path(sys.executable).parent
PATH = "/item.json"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RUNNING = re.compile(r"replay/(driver|sender|results|offload)\.py")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
OWN_IO = re.compile(r"results\.py|offload\.py|pyarrow|trace/store\.py|append_frame")
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {work}/tmp;
    proxy_temp_path {work}/tmp;
    fastcgi_temp_path {work}/tmp;
    uwsgi_temp_path {work}/tmp;
    scgi_temp_path {work}/tmp;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    types {{ application/json json; }}
    server {{
        listen {host}:{port};
        root {work}/www;
    }}
}}
"""


def body_4k() -> bytes:
    items = [{"id": i, "name": f"item-{i:04d}", "active": i % 3 == 0} for i in range(200)]
    text = json.dumps({"status": "success", "data": items})
    data = text[: text.rfind("},", 0, 4096 - 2) + 1].encode() + b"]}"
    return data + b" " * (4096 - len(data))  # exactly 4 KB (JSON allows trailing space)


@contextlib.contextmanager
def nginx(work: Path, cpu: int) -> Iterator[int]:
    if shutil.which("nginx") is None:
        sys.exit("bench_generator: nginx is not installed (apt-get install -y nginx)")
    (work / "www").mkdir(parents=True)
    (work / "tmp").mkdir()
    (work / "www" / PATH.lstrip("/")).write_bytes(body_4k())
    for path in (work.parent, work, work / "www", work / "www" / PATH.lstrip("/")):
        path.chmod(0o755)  # the worker runs as nobody
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, host=LOOPBACK, port=port))
    argv = ["taskset", "-c", str(cpu), "nginx", "-p", str(work), "-c", str(conf)]
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not _answers(port):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("bench_generator: nginx did not start (see its error.log)")
            time.sleep(0.1)
        yield port
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{PATH}", timeout=1) as r:
            return bool(r.status == 200 and len(r.read()) == 4096)
    except OSError:
        return False


def make_trace(directory: Path, rate: float, window_s: float, per_session: int) -> int:
    """Sessions of `per_session` GETs back to back (think 0), starts evenly spread so the
    plan offers `rate` requests per second over `window_s`. Returns the request count."""
    sessions = max(1, round(rate * window_s / per_session))
    meta = TraceMetadata(source="bench", capture_start=T0)
    with open_writer(directory, meta) as writer:
        for i in range(sessions):
            start = T0 + timedelta(seconds=i * window_s / sessions)
            for k in range(per_session):
                # 1 ms apart, each lasting 2 ms: the next starts before the previous
                # ended, so its think time is exactly 0.
                writer.write(
                    TraceRecord(
                        ts=start + timedelta(milliseconds=k),
                        method="GET",
                        path=PATH,
                        duration_ms=2.0,
                        session=f"s{i:07d}",
                        client="bench",
                        scheme="http",
                        host="127.0.0.1:80",
                        status=200,
                        req_headers=(("accept", "application/json"),),
                        resp_body_size=4096,
                        conn=f"c{i:07d}",
                    )
                )
    return sessions * per_session


class CpuSampler:
    """(epoch seconds, user+system CPU seconds of a process tree, its parts) every 0.2 s.

    The parts, from /proc per thread (Linux; empty elsewhere): CPU of the root process's
    main thread and of its other threads, of the children's main threads and of their
    other threads (for a replay: the `tracereplay replay` CLI, the Locust process's
    sending loop, its writer's thread), and `runq_main`: the time the main threads were
    ready to run but waited for a CPU (schedstat): the machine's share of a late start."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.samples: list[tuple[float, float, dict[str, float]]] = []
        self._last: dict[int, float] = {}
        self._threads: dict[tuple[int, int], tuple[str, float, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                procs = []
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    t = proc.cpu_times()
                    self._last[proc.pid] = t.user + t.system
                self._read_threads(proc.pid, "root" if proc.pid == self.root.pid else "children")
            parts: dict[str, float] = {}
            for role, cpu, runq in self._threads.values():
                parts[role] = parts.get(role, 0.0) + cpu
                if role.endswith("_main"):
                    parts["runq_main"] = parts.get("runq_main", 0.0) + runq
            self.samples.append((time.time(), sum(self._last.values()), parts))
            self._stop.wait(0.2)

    def _read_threads(self, pid: int, who: str) -> None:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                    runq_ns = int((task / "schedstat").read_text().split()[1])
                    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
                    main = int(task.name) == pid
                    role = f"{who}_main" if main else f"{who}_other_threads"
                    self._threads[(pid, int(task.name))] = (role, cpu, runq_ns / 1e9)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def at(self, t: float) -> float:
        times, cpu, _ = zip(*self.samples, strict=True)
        return float(np.interp(t, times, cpu))

    def parts_between(self, a: float, b: float) -> dict[str, float]:
        """Each part's growth between epoch seconds a and b."""
        times = [x[0] for x in self.samples]
        keys = sorted({k for x in self.samples for k in x[2]})
        series = {k: [x[2].get(k, 0.0) for x in self.samples] for k in keys}
        return {k: float(np.interp(b, times, v) - np.interp(a, times, v))
                for k, v in series.items()}  # fmt: skip


def steady(sent: np.ndarray, sampler: CpuSampler) -> dict[str, Any]:
    """Rate and CPU per request between the 10th and 90th percentile of the send times."""
    sent = np.sort(sent)
    if len(sent) < 100:
        return {"requests": len(sent), "rps": None}
    a, b = float(sent[len(sent) // 10]), float(sent[len(sent) * 9 // 10])
    n = int(np.count_nonzero((sent >= a) & (sent < b)))
    cpu = sampler.at(b) - sampler.at(a)
    stretch = sent[(sent >= a) & (sent < b)]
    parts = sampler.parts_between(a, b)
    runq = parts.pop("runq_main", None)
    return {
        "requests": len(sent),
        "steady_s": round(b - a, 3),
        "stretch": [a, b],  # epoch seconds: another process's CPU over the same stretch
        "rps": round(n / (b - a), 1),
        "cpu_ms_per_request": round(cpu / n * 1000.0, 4),
        "cpu_cores": round(cpu / (b - a), 3),
        "max_gap_ms": round(float(np.diff(stretch).max()) * 1000.0, 2),
        # Where the CPU per request went (µs): the parts of `CpuSampler`.
        "cpu_us_per_request_by_thread": {k: round(v / n * 1e6, 1) for k, v in parts.items()},
        # How much of the stretch the main threads were ready but waited for a CPU.
        "runq_main_share": None if runq is None else round(runq / (b - a), 3),
    }


def run_bare(port: int, work: Path, users: int, seconds: int) -> dict[str, Any]:
    times = work / "bare.times"
    argv = ["taskset", "-c", "0", str(BIN / "locust"), "-f", str(BARE), "--headless",
            "-u", str(users), "-r", str(users), "--run-time", f"{seconds}s", "--only-summary",
            "--host", f"http://{LOOPBACK}:{port}", "--stop-timeout", "2"]  # fmt: skip
    env = {**os.environ, "BENCH_TIMES": str(times), "BENCH_PATH": PATH}
    with (work / "bare.log").open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        sampler = CpuSampler(process.pid)
        process.wait(seconds + 60)
        sampler.stop()
    return steady(np.fromfile(times, dtype=np.float64), sampler)


def run_replay(
    port: int,
    work: Path,
    name: str,
    *,
    rate: float,
    window_s: float,
    per_session: int,
    processes: int = 1,
    pinned: bool = True,
    stall_ms: float | None = None,
    tree: Path | None = None,
    fifo: bool = False,
) -> dict[str, Any]:
    trace = work / f"{name}.trace"
    planned = make_trace(trace, rate, window_s, per_session)
    out = work / name
    argv = [str(BIN / "tracereplay"), "replay", str(trace), "--host", f"http://{LOOPBACK}:{port}",
            "--out", str(out), "--grace", "90s", "--run-time", f"{window_s + 150:.0f}s",
            "--processes", str(processes)]  # fmt: skip
    if pinned:
        argv = ["taskset", "-c", "0", *argv]
    if fifo:  # real-time priority: no other process of the machine delays it (root only).
        # Round-robin, not FIFO: one FIFO run (of 16) had its CLI's threads spin on the one
        # core, none letting another run, until set back to SCHED_OTHER.
        argv = ["chrt", "-r", "10", *argv]
    env = dict(os.environ)
    if tree is not None:  # another commit's package (baseline_tree), ahead of this one
        env["PYTHONPATH"] = str(tree)
    if stall_ms is not None:
        env["GEVENT_MONITOR_THREAD_ENABLE"] = "true"
        env["GEVENT_MAX_BLOCKING_TIME"] = str(stall_ms / 1000.0)
    # In the run's own directory: the Locust child is `python -m locust`, whose sys.path
    # starts with the working directory; run from a checkout, that checkout's `tracereplay`
    # came first and a --baseline run sent with this tree's replay.
    steal0 = _steal_cpu0()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=env, cwd=work)  # fmt: skip
    sampler = CpuSampler(process.pid)
    try:
        process.wait(window_s + 200)
    except subprocess.TimeoutExpired:  # bounded: the whole tree goes, then the bench stops
        _kill_tree(process.pid)
        raise
    finally:
        sampler.stop()
    summary = json.loads((out / "summary.json").read_text())
    timing = pq.read_table(out / "timing.parquet", columns=["seq", "intended_s", "sent_s"])
    sent = timing["sent_s"].to_numpy()
    result = {
        "processes": processes,
        "pinned": pinned,
        "fifo": fifo,
        "offered_rps": round(rate, 1),
        "planned_requests": planned,
        **steady(sent, sampler),
        "sessions_planned": summary["sessions_planned"],
        "sessions_started": summary["sessions_started"],
        "started_share": round(summary["sessions_started"] / max(1, planned // per_session), 4),
        "sessions_cut": summary["sessions_cut"],
        "failures": summary["failures"],
        "achieved_rps_window": summary["achieved_rps"],
        "start_lateness_ms": summary["start_lateness_ms"],
        "first_send_late_ms": first_send_late(timing),
        "steal_cpu0_ms": None if steal0 is None else round((_steal_cpu0() or 0) - steal0, 1),
    }
    if stall_ms is not None:
        result["stalls"] = stalls((out / "locust.log").read_text(errors="replace"))
    return result


def first_send_late(timing: Any) -> dict[str, Any]:
    """How late each session's first request went out after its planned start (its first
    request's sent_s - intended_s: the start's lateness plus the session's setup, ~0.1 ms):
    the quantiles summary.json does not give, and how many were over 2 and 10 ms."""
    first = pc.equal(timing["seq"], 0)
    late = (pc.filter(timing["sent_s"], first).to_numpy()
            - pc.filter(timing["intended_s"], first).to_numpy()) * 1000.0  # fmt: skip
    if not len(late):
        return {}
    q = np.percentile(late, [50, 90, 99, 99.9, 100])
    return {**{k: round(float(v), 3) for k, v in zip(("p50", "p90", "p99", "p999", "max"), q,
                                                      strict=True)},
            "over_2ms": int((late > 2).sum()), "over_10ms": int((late > 10).sum()),
            "sessions": len(late)}  # fmt: skip


def _steal_cpu0() -> float | None:
    """Milliseconds CPU 0 was taken by the host (a VM's steal time, /proc/stat): time the
    pinned replay lost that no process of this machine used."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("cpu0 "):
                return int(line.split()[8]) * 1000.0 / CLOCK_TICKS
    return None


def _kill_tree(pid: int) -> None:
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for proc in [*root.children(recursive=True), root]:
            with contextlib.suppress(psutil.Error):
                os.sched_setscheduler(proc.pid, os.SCHED_OTHER, os.sched_param(0))
                proc.kill()


def baseline_tree(commit: str, work: Path) -> Path:
    """The `tracereplay` package of `commit` (git archive, laid out as pyproject's
    package-dir maps it), for PYTHONPATH: the replay of that commit in this venv."""
    src, tree = work / "baseline-src", work / "baseline"
    src.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(HERE.parent), "archive", commit],
                             check=True, capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    shutil.copytree(src / "tracereplay", tree / "tracereplay")
    for package in ("capture", "models", "replay", "compare", "demo"):
        shutil.copytree(src / package, tree / "tracereplay" / package)
    return tree


def ab_rounds(port: int, work: Path, tree: Path, rounds: int, top_rps: float,
              users: int, per_session: int, window: float) -> dict[str, Any]:  # fmt: skip
    """This tree and `tree` alternated (ABBA...), the max and the long shape each: CPU per
    request of both in the same run, and their ratio per round (baseline ÷ this)."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for r in range(rounds):
        order = [("this", None), ("baseline", tree)]
        for label, path in order if r % 2 == 0 else order[::-1]:
            for shape in ("max", "long"):
                d = work / f"ab{r}-{label}-{shape}"
                d.mkdir()
                if shape == "max":
                    res = run_replay(port, d, shape, rate=1.5 * top_rps, window_s=window,
                                     per_session=per_session, tree=path)  # fmt: skip
                else:
                    res = run_replay(port, d, shape, rate=users * 500 / 0.032, window_s=0.032,
                                     per_session=500, tree=path)  # fmt: skip
                runs.setdefault(f"{label}_{shape}", []).append(res)
                print(f"A/B round {r} {label} {shape}:", res, flush=True)
    out: dict[str, Any] = {}
    for shape in ("max", "long"):
        this = [x["cpu_ms_per_request"] for x in runs[f"this_{shape}"]]
        base = [x["cpu_ms_per_request"] for x in runs[f"baseline_{shape}"]]
        out[shape] = {
            "this_cpu_ms": this,
            "baseline_cpu_ms": base,
            "baseline_over_this": [round(b / t, 3) for b, t in zip(base, this, strict=True)],
            "median_baseline_over_this": round(
                float(np.median(np.array(base) / np.array(this))), 3
            ),
        }
    return out


def lateness_rounds(port: int, work: Path, tree: Path, rounds: int, rate: float, window_s: float,
                    per_session: int, stall_ms: float) -> dict[str, Any]:  # fmt: skip
    """Whole runs at `rate` (50 % of this tree's max), this tree and `tree` alternated
    (ABBA...), as `replay_50` runs (gevent's monitor on): each run's start lateness p50 /
    p99 and the share of its stretch the sending loop waited for the CPU (the machine's
    part), and their medians per side."""
    runs: dict[str, list[dict[str, Any]]] = {"this": [], "baseline": []}
    order = [("this", None), ("baseline", tree)]
    for r in range(rounds):
        for label, path in order if r % 2 == 0 else order[::-1]:
            res = run_replay(port, work, f"late{r}-{label}", rate=rate, window_s=window_s,
                             per_session=per_session, stall_ms=stall_ms, tree=path)  # fmt: skip
            late = res["start_lateness_ms"]
            runs[label].append({"p50_ms": late["p50"], "p99_ms": late["p99"],
                                "first_send_late_ms": res["first_send_late_ms"],
                                "steal_cpu0_ms": res["steal_cpu0_ms"],
                                "runq_main_share": res.get("runq_main_share"),
                                "rps": res.get("rps"), "failures": res["failures"],
                                "started_share": res["started_share"]})  # fmt: skip
            print(f"lateness round {r} {label}:", runs[label][-1], flush=True)
    out: dict[str, Any] = {"offered_rps": round(rate, 1), **runs}
    for label, got in runs.items():
        out[f"{label}_p99_ms_median"] = round(float(np.median([g["p99_ms"] for g in got])), 3)
        out[f"{label}_p50_ms_median"] = round(float(np.median([g["p50_ms"] for g in got])), 4)
    return out


class Side:
    """A bench/gen_ab_child.py process pinned to CPU 0, with `tree` (or this tree) first on
    PYTHONPATH: it plays what it is told and answers with its own CPU count."""

    def __init__(self, port: int, tree: Path | None) -> None:
        env = dict(os.environ)
        if tree is not None:
            env["PYTHONPATH"] = str(tree)
        argv = ["taskset", "-c", "0", sys.executable, str(CHILD), f"http://{LOOPBACK}:{port}",
                PATH]  # fmt: skip
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        env=env, text=True)  # fmt: skip
        self.late: dict[str, list[float]] = {}
        self.late50: dict[str, list[float]] = {}
        self.failed: list[dict[str, Any]] = []

    def run(self, command: str) -> float:
        """CPU µs per request of one burst (its start lateness p99 joins `self.late`)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"bench_generator: the A/B child ended on {command!r}")
        answer = json.loads(line)
        if not answer.get("ok"):  # kept, said, and left out of the figures
            print(f"bench_generator: a burst did not complete: {command!r} -> {answer}")
            self.failed.append({"command": command, **answer})
            return float("nan")
        if answer.get("late_p99_ms") is not None:
            self.late.setdefault(command, []).append(float(answer["late_p99_ms"]))
        if answer.get("late_p50_ms") is not None:
            self.late50.setdefault(command, []).append(float(answer["late_p50_ms"]))
        return float(answer["cpu_s"]) / answer["requests"] * 1e6

    def close(self) -> None:
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def inproc_ab(port: int, tree: Path | None, rounds: int, users: int, per_session: int,
              short_rps: float, burst_s: float) -> dict[str, Any]:  # fmt: skip
    """Long-lived processes on CPU 0, given the same short bursts in turn, each counting its
    own CPU over its own requests: this tree twice (A and A2: the A/A check, what the A/B
    resolves) and `tree` (B, if given). The order rotates every round. The bursts: "long"
    (`users` sessions of many GETs from time zero, the bare run's shape), "short" (sessions
    of `per_session` GETs started evenly at `short_rps`, below the maximum) and a bare
    FastHttpUser client loop (in A: the per-core reference), and the same client in the
    short shape (a new FastHttpSession per session, the same starts: `bare_short`, what
    that shape costs without the replay). Per shape: the median CPU µs per request of each
    side and, per round, A2 ÷ A and B ÷ A (> 1: A spends less): their median, the median's
    95 % interval (bootstrap over rounds) and the rounds' spread."""
    long_k = max(50, round(burst_s * 3000 / users))
    sessions = max(10, round(burst_s * short_rps / per_session))
    commands = {
        "long": f"replay {users} {long_k} 0",
        "short": f"replay {sessions} {per_session} {per_session / short_rps:.6f}",
    }
    bare_cmd = f"bare {users} {long_k}"
    bare_short_cmd = "bare_sessions" + commands["short"].removeprefix("replay")
    sides = {"a": Side(port, None), "a2": Side(port, None)}
    if tree is not None:
        sides["b"] = Side(port, tree)
    order = list(sides.items())
    runs: dict[str, list[float]] = {f"{w}_{s}": [] for w in sides for s in commands}
    runs["bare"], runs["bare_short"] = [], []
    try:
        for side in sides.values():  # warm-up: imports, first connections, code paths
            for command in commands.values():
                side.run(command)
        sides["a"].run(bare_cmd)
        for r in range(rounds):
            turn = order[r % len(order) :] + order[: r % len(order)]
            for shape, command in commands.items():
                for label, side in turn if r % 2 == 0 else turn[::-1]:
                    runs[f"{label}_{shape}"].append(side.run(command))
            runs["bare"].append(sides["a"].run(bare_cmd))
            runs["bare_short"].append(sides["a"].run(bare_short_cmd))
    finally:
        for side in sides.values():
            side.close()
    out: dict[str, Any] = {
        "rounds": rounds,
        "commands": {**commands, "bare": bare_cmd, "bare_short": bare_short_cmd},
    }
    out["failed_bursts"] = {w: side.failed for w, side in sides.items() if side.failed}
    bare_us = float(np.nanmedian(runs["bare"]))
    out["bare_us"] = {"median": _us(bare_us), "runs": [_us(x) for x in runs["bare"]]}
    bare_short_us = float(np.nanmedian(runs["bare_short"]))
    out["bare_short_us"] = {
        "median": _us(bare_short_us),
        "runs": [_us(x) for x in runs["bare_short"]],
    }
    for shape, command in commands.items():
        this = np.array(runs[f"a_{shape}"])
        out[shape] = {
            "bare_over_a": round(bare_us / float(np.nanmedian(this)), 3),
            **{f"{w}_us": [_us(x) for x in runs[f"{w}_{shape}"]] for w in sides},
            **{f"{w}_median_us": _us(float(np.nanmedian(runs[f"{w}_{shape}"]))) for w in sides},
        }
        for w in sides:
            if w != "a":
                out[shape][f"{w}_over_a"] = _ratios(np.array(runs[f"{w}_{shape}"]) / this)
        if shape == "short":  # start lateness p99 / p50 per burst, median over the rounds
            out[shape]["bare_short_over_a"] = round(bare_short_us / float(np.nanmedian(this)), 3)
            for w, side in sides.items():
                late = side.late.get(command, [])
                out[shape][f"{w}_late_p99_ms_median"] = round(float(np.median(late)), 3)
                late50 = side.late50.get(command, [])
                if late50:  # a baseline older than this answer's p50 has none
                    out[shape][f"{w}_late_p50_ms_median"] = round(float(np.median(late50)), 4)
    return out


def _us(value: float) -> float | None:
    return None if np.isnan(value) else round(value, 1)


def _ratios(ratio: np.ndarray) -> dict[str, Any]:
    ratio = ratio[~np.isnan(ratio)]  # rounds with a burst that did not complete: left out
    q10, q25, q50, q75, q90 = np.percentile(ratio, [10, 25, 50, 75, 90])
    # The median's 95 % interval by resampling the rounds: what the A/B can resolve.
    rng = np.random.default_rng(0)
    boot = np.median(rng.choice(ratio, (2000, len(ratio))), axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {
        "median": round(float(q50), 3),
        "ci95_median": [round(float(lo), 3), round(float(hi), 3)],
        "iqr": [round(float(q25), 3), round(float(q75), 3)],
        "p10_p90": [round(float(q10), 3), round(float(q90), 3)],
        "rounds": [round(float(x), 3) for x in ratio],
    }


def stalls(log: str) -> dict[str, Any]:
    """gevent monitor reports in a Locust log: those while sessions ran (the blocked
    greenlet in the driver, the sender or the writer) and how many of them were in the
    tool's own IO; the rest came at start or at the end (Locust's own stop and report)."""
    reports = log.split(" appears to be blocked")[1:]
    blocked = [r.split("Blocked Stack", 1)[-1].split("\nInfo:", 1)[0] for r in reports]
    running = [b for b in blocked if RUNNING.search(b)]
    own = [b for b in running if OWN_IO.search(b)]
    where = Counter(_innermost(b) for b in running)
    own_where = Counter(_innermost(b, OWN_IO) for b in own)
    return {
        "reports": len(blocked),
        "while_running": len(running),
        "own_io": len(own),
        "where": dict(where.most_common(8)),
        "own_io_where": dict(own_where.most_common(8)),
    }


def _innermost(stack: str, only: re.Pattern[str] | None = None) -> str:
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', stack)
    frames = [f for f in frames if only is None or only.search(f[0] + " " + f[2])]
    file, line, func = (frames or [("?", "0", "?")])[-1]
    return f"{Path(file).name}:{line} {func}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="offered window per run")
    parser.add_argument("--per-session", type=int, default=10, help="requests per session")
    parser.add_argument("--users", type=int, default=32, help="bare Locust users")
    parser.add_argument("--stall-ms", type=float, default=10.0)
    parser.add_argument("--skip-processes", action="store_true")
    parser.add_argument(
        "--long-requests", type=int, default=0, help="also a run of N requests at 90 %% of max"
    )
    parser.add_argument(
        "--baseline", help="also replay a git commit's code (A/B, alternated, same run)"
    )
    parser.add_argument(
        "--ab-rounds", type=int, default=0,
        help="whole-run A/B rounds against --baseline (each a whole replay: noisy, +-40 %%)",
    )  # fmt: skip
    parser.add_argument(
        "--inproc-rounds", type=int, default=0,
        help="in-process A/B (this tree vs --baseline, or vs itself without it), N rounds",
    )  # fmt: skip
    parser.add_argument(
        "--lateness-rounds", type=int, default=0,
        help="whole runs at 50 %% of max, this tree and --baseline alternated, N each",
    )  # fmt: skip
    parser.add_argument("--short-rps", type=float, default=1000.0,
                        help="in-process A/B: offered rate of the short sessions")  # fmt: skip
    parser.add_argument("--burst-s", type=float, default=0.5, help="in-process burst length")
    parser.add_argument("--only-inproc", action="store_true", help="only the in-process A/B")
    parser.add_argument(
        "--fifo", action="store_true",
        help="also the 50 %% and 90 %% runs at real-time priority (chrt -r 10, root): their "
             "start lateness without the machine's other processes (see runq_main_share)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        sys.exit("bench_generator: needs 2 CPUs (generator on 0, nginx on the last)")
    figures: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_start": [round(v, 2) for v in os.getloadavg()],
    }
    window, k = args.seconds, args.per_session
    with (
        tempfile.TemporaryDirectory(prefix="bench-gen-") as tmp,
        nginx(Path(tmp) / "nginx", (os.cpu_count() or 2) - 1) as port,
    ):
        work = Path(tmp)
        if args.inproc_rounds:
            tree = baseline_tree(args.baseline, work / "inproc") if args.baseline else None
            inproc = inproc_ab(port, tree, args.inproc_rounds, args.users, k, args.short_rps,
                               args.burst_s)  # fmt: skip
            figures["inproc"] = {"baseline": args.baseline, **inproc}
            print("in-process A/B:", json.dumps(figures["inproc"]), flush=True)
        if args.only_inproc:
            finish(figures, args.json)
            return
        bare = run_bare(port, work, args.users, int(window) + 5)
        print("bare FastHttpUser, 1 core:", bare, flush=True)
        top = run_replay(port, work, "max", rate=1.5 * bare["rps"], window_s=window,
                         per_session=k)  # fmt: skip
        print("replay at max, 1 core:", top, flush=True)
        # The same load shape as the bare run: --users sessions of many requests from time
        # zero (closed loop, one connection each): the replay's own per-request cost.
        longs = run_replay(port, work, "long", rate=args.users * 500 / 0.032, window_s=0.032,
                           per_session=500)  # fmt: skip
        print(f"replay, {args.users} sessions of 500, 1 core:", longs, flush=True)
        figures.update(bare=bare, replay_max=top, replay_long=longs)
        figures["ratio_cpu_long"] = round(
            bare["cpu_ms_per_request"] / longs["cpu_ms_per_request"], 3
        )
        figures["ratio_rps"] = round(top["rps"] / bare["rps"], 3)
        figures["ratio_cpu"] = round(bare["cpu_ms_per_request"] / top["cpu_ms_per_request"], 3)
        if args.baseline and args.lateness_rounds:
            tree = baseline_tree(args.baseline, work / "lateness")
            figures["lateness_ab"] = {"baseline": args.baseline, **lateness_rounds(
                port, work, tree, args.lateness_rounds, 0.5 * top["rps"], window * 1.5, k,
                args.stall_ms)}  # fmt: skip
            print("lateness A/B:", figures["lateness_ab"], flush=True)
        if args.baseline and args.ab_rounds:
            tree = baseline_tree(args.baseline, work)
            figures["ab"] = {"baseline": args.baseline, **ab_rounds(
                port, work, tree, args.ab_rounds, top["rps"], args.users, k, window)}  # fmt: skip
            print("A/B:", figures["ab"], flush=True)
        for share in (0.5, 0.9):
            name = f"replay_{int(share * 100)}"
            figures[name] = run_replay(port, work, name, rate=share * top["rps"],
                                       window_s=window * 1.5, per_session=k,
                                       stall_ms=args.stall_ms)  # fmt: skip
            print(f"replay at {share:.0%} of max, 1 core:", figures[name], flush=True)
            if args.fifo:  # the same, the machine's other processes kept off its core
                figures[f"{name}_fifo"] = run_replay(port, work, f"{name}_fifo",
                                                     rate=share * top["rps"], window_s=window * 1.5,
                                                     per_session=k, stall_ms=args.stall_ms,
                                                     fifo=True)  # fmt: skip
                print(f"replay at {share:.0%} of max, real-time priority:", figures[f"{name}_fifo"],
                      flush=True)  # fmt: skip
        if args.long_requests:  # a long run at 90 %: stalls late in a big run
            rate = 0.9 * top["rps"]
            window_s = args.long_requests / rate
            figures["replay_90_long"] = run_replay(port, work, "long90", rate=rate,
                                                   window_s=window_s, per_session=k,
                                                   stall_ms=args.stall_ms)  # fmt: skip
            print("replay at 90 % of max, long:", figures["replay_90_long"], flush=True)
        if not args.skip_processes:
            for p in (1, 2):
                name = f"replay_p{p}"
                figures[name] = run_replay(port, work, name, rate=4 * top["rps"],
                                           window_s=window, per_session=k, processes=p,
                                           pinned=False)  # fmt: skip
                print(f"replay --processes {p}, 2 cores:", figures[name], flush=True)
            figures["ratio_p2_p1"] = round(
                figures["replay_p2"]["rps"] / figures["replay_p1"]["rps"], 3
            )
    finish(figures, args.json)


def finish(figures: dict[str, Any], path: Path | None) -> None:
    """The load at the end added, the figures printed as JSON and written to `path`."""
    figures["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    text = json.dumps(figures, indent=2)
    print(text)
    if path:
        path.write_text(text + "\n")


if __name__ == "__main__":
    main()
