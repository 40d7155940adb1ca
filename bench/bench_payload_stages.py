"""Time the model's payloads and correlations stages step by step, on one trace, in one
process: the stages before them (read, templates, sessions) run once, then the steps of
the two stages `--rounds` times, as `models.model.build_model` runs them.

    cd /tmp && .venv/bin/python -P bench/bench_payload_stages.py TRACE [--rounds 3]
        [--json out.json] [--cpu] [--as-built [--no-thread]]

Prints one line per round (seconds per step; `payloads` and `correlations`, the sums of
their steps, are what the stage lines of `tracereplay model` say) and a digest of what
the steps found (endpoints, rules, auth, ids, addresses): the same on every round and
with every code that gives the same model. For an A/B against another commit's code, run
it with PYTHONPATH set to that code (as bench_model.py does: `python -P` from a directory
that holds no `tracereplay`), alternating the two, and compare the ratios per step.
`--as-built` times the two stages whole, as `build_model` runs them (their thread
included: wall and CPU seconds per round; the digest of what they found); with
`--no-thread`, the worker's steps on the calling thread (this tree's code only).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tracereplay.models import model as m
from tracereplay.models import sample_reads as sr
from tracereplay.models.arrivals import fit_arrivals
from tracereplay.models.correlations import auth_to_json, correlations_to_json
from tracereplay.models.frame import read_light_columns
from tracereplay.models.ids import ids_to_json
from tracereplay.models.session_shape import censoring
from tracereplay.models.sessions import DEFAULT_SESSION_TIMEOUT_S, session_table
from tracereplay.models.source import ParquetSource

PAYLOAD_STEPS = ("parts", "correlation_sample", "payload_sample", "sample_reads",
                 "infer_payloads", "param_kinds", "endpoints_rest")  # fmt: skip
CORRELATION_STEPS = ("correlation_frame", "found", "every_address")
"""(`arrivals` and `outcomes` are timed too, each its own stage)"""


CLOCK = time.perf_counter
"""Wall seconds; `--cpu`: this process's CPU seconds (steadier on a loaded machine)."""


class Steps:
    """Seconds per step of one round."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = CLOCK()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + CLOCK() - start

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self(name):
                return fn(*args, **kwargs)

        return wrapper


def prepared(trace_path: Path) -> dict[str, Any]:
    """What the two stages start from: build_model's state after its sessions stage."""
    trace = ParquetSource.open(trace_path)
    requests = read_light_columns(trace)
    _, endpoint, names = m._templates(requests)
    timeout = DEFAULT_SESSION_TIMEOUT_S
    sessions, _ = m._sessionized(trace, requests, endpoint, names, timeout, {})
    table = session_table(sessions)
    censoring(sessions, timeout)
    m._keep_what_later_stages_read(sessions)
    return {"trace": trace, "requests": requests, "endpoint": endpoint, "names": names,
            "sessions": sessions, "table": table}  # fmt: skip


def one_thread_endpoints(requests: Any, groups: Any, chosen: Any, payload_rows: Any) -> Any:
    """The model's `endpoints` with every step on this thread, one after the other (what
    `build_model` does with the statistics on its `WholeTrace` thread)."""
    payloads, _ = sr._payload_models(
        groups, chosen, payload_rows, m.PAYLOAD_SAMPLE_REQUESTS, 0, len(requests)
    )
    return sr._merged(groups, payloads, sr._endpoint_stats(requests, groups))


def one_round(state: dict[str, Any]) -> tuple[dict[str, float], str]:
    """Seconds per step, and a digest of what the steps found."""
    trace, requests, sessions = state["trace"], state["requests"], state["sessions"]
    steps = Steps()
    # param_kinds is called from endpoint_codes since the statistics are passes (pay19)
    home: Any = getattr(m, "endpoint_codes", None) or sr
    if not hasattr(home, "param_kinds"):
        import tracereplay.models.endpoint_codes as home
    infer, kinds = sr.infer_payloads, home.param_kinds
    sr.infer_payloads = steps.timed("infer_payloads", infer)  # type: ignore[assignment]
    home.param_kinds = steps.timed("param_kinds", kinds)
    try:
        with steps("arrivals"):
            span_s = float(requests.t_s[-1])
            fit_arrivals(state["table"]["start_s"].to_numpy(float), span_s)
        with steps("parts"):
            parts = sr._request_parts(trace, requests)
        with steps("correlation_sample"):
            sample = sr._correlation_sample(
                parts, sessions, m.CORRELATION_SAMPLE_SESSIONS,
                m.CORRELATION_SESSIONS_PER_ENDPOINT, 0,
            )  # fmt: skip
        with steps("payload_sample"):
            groups, chosen, payload_read, _ = sr._payload_sample(
                parts, state["endpoint"], state["names"], m.PAYLOAD_SAMPLE_REQUESTS, 0
            )
        with steps("sample_reads"):
            read = sr._SampleReads.of(trace, requests, sessions, payload_read, sample, True)
        with steps("endpoints_rest"):
            endpoints = one_thread_endpoints(requests, groups, chosen, read.payloads)
        with steps("correlation_frame"):
            heavy = sr._correlation_frame(requests, read.sessions, read.correlations)
        with steps("found"):
            found = sr._Found.of(heavy, sample, endpoints, {})
        with steps("every_address"):
            addresses = None if sample.whole else sr._every_address(trace, requests, sessions)
        with steps("outcomes"):  # (the model's outcomes stage: `addresses` not applied)
            found.outcome_facts()
    finally:
        sr.infer_payloads, home.param_kinds = infer, kinds  # type: ignore[assignment]
    seconds = steps.seconds
    seconds["endpoints_rest"] -= seconds.get("infer_payloads", 0) + seconds.get("param_kinds", 0)
    seconds["payloads"] = sum(seconds.get(s, 0.0) for s in PAYLOAD_STEPS)
    seconds["correlations"] = sum(seconds.get(s, 0.0) for s in CORRELATION_STEPS)
    found_json = {
        "endpoints": endpoints,
        "rules": correlations_to_json(found.rules),
        "auth": auth_to_json(found.auth),
        "ids": ids_to_json(found.ids),
        "note": found.note,
        "addresses": addresses,
    }
    text = json.dumps(found_json, sort_keys=True, default=str)
    return seconds, hashlib.sha256(text.encode()).hexdigest()[:16]


def as_built(state: dict[str, Any]) -> tuple[float, float, str]:
    """The two stages as `build_model` runs them (with their thread, where the code has
    `model._learned_from_samples`; else the steps one after the other, as before it):
    wall and CPU seconds, and the digest."""
    trace, requests, sessions = state["trace"], state["requests"], state["sessions"]
    wall, cpu = time.perf_counter(), time.process_time()
    learned = getattr(m, "_learned_from_samples", None)
    if learned is not None:
        asked = m._Asked(m.PAYLOAD_SAMPLE_REQUESTS, m.CORRELATION_SAMPLE_SESSIONS,
                         m.CORRELATION_SESSIONS_PER_ENDPOINT, 0)  # fmt: skip
        endpoints, _, found, sample = learned(
            m._Clock(None), trace, requests, sessions, state["endpoint"], state["names"],
            asked, True,
        )  # fmt: skip
    else:
        parts = sr._request_parts(trace, requests)
        sample = sr._correlation_sample(
            parts, sessions, m.CORRELATION_SAMPLE_SESSIONS,
            m.CORRELATION_SESSIONS_PER_ENDPOINT, 0,
        )  # fmt: skip
        groups, chosen, payload_read, _ = sr._payload_sample(
            parts, state["endpoint"], state["names"], m.PAYLOAD_SAMPLE_REQUESTS, 0
        )
        read = sr._SampleReads.of(trace, requests, sessions, payload_read, sample, True)
        endpoints = one_thread_endpoints(requests, groups, chosen, read.payloads)
        heavy = sr._correlation_frame(requests, read.sessions, read.correlations)
        found = sr._Found.of(heavy, sample, endpoints, {})
        if not sample.whole:
            found.addresses = sr._every_address(trace, requests, sessions)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    found_json = {
        "endpoints": endpoints,
        "rules": correlations_to_json(found.rules),
        "auth": auth_to_json(found.auth),
        "ids": ids_to_json(found.ids),
        "addresses": found.addresses,
    }
    text = json.dumps(found_json, sort_keys=True, default=str)
    return wall, cpu, hashlib.sha256(text.encode()).hexdigest()[:16]


def on_this_thread() -> None:
    """`whole_trace.WholeTrace.submit` runs its step at once, on the calling thread (the
    same work in the same order as one thread: what the worker thread saves, by A/B)."""
    from concurrent.futures import Future

    from tracereplay.models import whole_trace

    def submit(_self: Any, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        done: Future[Any] = Future()
        done.set_result(fn(*args))
        return done

    whole_trace.WholeTrace.submit = submit  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--cpu", action="store_true", help="CPU seconds, not wall")
    parser.add_argument(
        "--as-built", action="store_true",
        help="the two stages as build_model runs them: wall and CPU seconds per round",
    )  # fmt: skip
    parser.add_argument(
        "--no-thread", action="store_true",
        help="with --as-built: what the worker thread does, on the calling thread",
    )  # fmt: skip
    args = parser.parse_args()
    if args.no_thread:
        on_this_thread()
    global CLOCK  # noqa: PLW0603 (one switch for the whole run)
    CLOCK = time.process_time if args.cpu else time.perf_counter
    start = time.perf_counter()
    state = prepared(args.trace)
    print(f"code {Path(m.__file__).parent}; prepared in {time.perf_counter() - start:.2f} s; "
          f"load {os.getloadavg()[0]:.2f}")  # fmt: skip
    rounds: list[dict[str, Any]] = []
    if args.as_built:
        for _ in range(args.rounds):
            wall, cpu, digest = as_built(state)
            rounds.append({"wall": wall, "cpu": cpu, "digest": digest})
            print(f"{digest} wall={wall:.3f} cpu={cpu:.3f} load={os.getloadavg()[0]:.2f}")
        if args.json:
            args.json.write_text(json.dumps({"code": m.__file__, "rounds": rounds}, indent=1))
        return
    for _ in range(args.rounds):
        seconds, digest = one_round(state)
        rounds.append({"seconds": seconds, "digest": digest, "cpu": args.cpu})
        print(digest, " ".join(f"{k}={v:.3f}" for k, v in seconds.items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"code": m.__file__, "rounds": rounds}, indent=1))


if __name__ == "__main__":
    main()
