"""`build_model`: a trace in, a `tracereplay.model/1` document out (plain JSON data), and
the file's reading and writing. Same trace + same options → byte-identical file.

The stages read only the columns they need: the light columns of every request
(`frame.LIGHT_COLUMNS`, batch by batch, strings kept as codes), then bodies and query
strings of a seeded sample of each endpoint's requests, then what correlation finding
walks (those sample reads: sample_reads.py). Templates are learned per distinct path
skeleton, behaviors are clustered on a bounded sample of sessions; every aggregate is a
numpy/pyarrow reduction over codes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tracereplay import __version__
from tracereplay.allocator import available_bytes, collector_paused, give_back_freed
from tracereplay.errors import UsageError

from .arrivals import ArrivalModel, fit_arrivals, fitted_bucket_s
from .behaviors import CLUSTER_SAMPLE_SESSIONS, Behavior, fit_behaviors, sig
from .correlations import NO_AUTH, AuthInfo, auth_to_json, correlations_to_json
from .endpoints import PAYLOAD_SAMPLE_REQUESTS
from .forked import (
    CHILD_MODULES,
    Pending,
    forked,
    free_processes,
)
from .frame import RequestColumns, read_light_columns
from .id_select import Tails, binomial_tails
from .ids import NO_IDS, ids_to_json
from .kaplan_meier import km_percentiles
from .model_file import MAX_MODEL_BYTES as MAX_MODEL_BYTES  # noqa: PLC0414 (re-exported)
from .model_file import MODEL_FORMAT
from .model_file import load_model as load_model  # noqa: PLC0414 (re-exported)
from .outcomes import NO_OUTCOMES, Outcomes, outcomes_to_json, place_outcomes
from .sample_reads import (
    _correlation_frame,
    _correlation_sample,
    _endpoint_stats,
    _every_address,
    _Found,
    _merged,
    _payload_models,
    _payload_sample,
    _request_parts,
    _SampleReads,
)
from .sample_reads import sessions_auth as sessions_auth  # noqa: PLC0414 (re-exported: compare)
from .session_sample import (
    CORRELATION_SAMPLE_REQUESTS,
    CORRELATION_SAMPLE_SESSIONS,
    CORRELATION_SESSIONS_PER_ENDPOINT,
    SessionSample,
    sampled_whole,
)
from .session_shape import Censoring, censoring
from .sessionized import (
    _after_the_stats,
    _completed,
    _keep_what_later_stages_read,
    _model_sessions,
    _sessionized,
    _templates,
    _templating_and_stats,
)
from .sessions import (
    DEFAULT_SESSION_TIMEOUT_S,
    request_curve,
    session_stats,
    session_table,
)
from .source import ParquetSource, RequestSource, said_rows
from .templating import Templater
from .whole_trace import WholeTrace

SENSITIVITY_TIMEOUTS_S = {"15m": 900.0, "30m": 1800.0, "60m": 3600.0}
STAGES = ("read", "templates", "sessions", "behaviors", "sensitivity", "arrivals", "payloads",
          "correlations", "outcomes")  # fmt: skip


@dataclass(frozen=True)
class StageReport:
    """A stage starting (`seconds` None) or done; `str()` is its progress line."""

    stage: str
    rows: int
    seconds: float | None = None

    @property
    def rows_per_s(self) -> float | None:
        return self.rows / self.seconds if self.seconds else None

    def __str__(self) -> str:
        if self.seconds is None:
            return self.stage
        rate = f" ({self.rows_per_s:,.0f} rows/s)" if self.rows_per_s else ""
        return f"{self.stage}: {self.rows:,} rows in {self.seconds:.2f} s{rate}"


Progress = Callable[[StageReport], None]


@dataclass
class _Clock:
    progress: Progress | None
    rows: int = 0

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        say = self.progress or (lambda _report: None)
        say(StageReport(stage, self.rows))
        start = time.perf_counter()
        yield
        # Arrow's allocator keeps what a stage freed (~0.5 GB after reading 10 M requests'
        # columns) unless told: return it before numpy asks the system for more.
        pa.default_memory_pool().release_unused()
        say(StageReport(stage, self.rows, time.perf_counter() - start))

    def started(self, stage: str) -> None:
        """A stage that runs beside the others (`done` when its result is taken)."""
        if self.progress is not None:
            self.progress(StageReport(stage, self.rows))

    def done(self, stage: str, seconds: float | None) -> None:
        if self.progress is not None:
            self.progress(StageReport(stage, self.rows, seconds))


def build_model(
    trace_path: Path,
    *,
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
    progress: Progress | None = None,
    seed: int = 0,
    payload_sample: int = PAYLOAD_SAMPLE_REQUESTS,
    behavior_sample: int = CLUSTER_SAMPLE_SESSIONS,
    correlation_sample: int = CORRELATION_SAMPLE_SESSIONS,
    correlation_per_endpoint: int = CORRELATION_SESSIONS_PER_ENDPOINT,
    correlation_requests: int = CORRELATION_SAMPLE_REQUESTS,
    correlations: bool = True,
    source: RequestSource | None = None,
    censor_edges: bool = True,
    processes: int | None = None,
    partitions: int | None = None,
) -> dict[str, Any]:
    """The model of the trace at `trace_path` as JSON-ready data. `payload_sample`:
    requests per endpoint whose payloads are read; `behavior_sample`: sessions k-means
    runs on; `correlation_sample` and `correlation_per_endpoint`: the sessions whose
    requests correlation finding reads, `correlation_requests` the most requests it reads
    of them (models/session_sample.py); `correlations=False`
    leaves correlations and auth empty (for benchmarks of the other stages). `source`
    reads the trace (default: its Parquet files through pyarrow; see models/source.py).
    `censor_edges=False` treats sessions cut by the capture's edges as ended (as models
    before issue 11 did: bench_model.py's equality check with the old code). `processes`:
    2 fits the behaviors and arrivals in a child forked before the read, while this
    process learns the payloads and correlations (models/forked.py); 1 runs every stage
    here, one after the other (the same model either way); None: 2 when a core is free
    (`free_processes`). `partitions`: N ≥ 1 makes the model in N partitions of session
    keys spilled to disk (models/partitioned_model.py: the same model, holding what its
    sessions and samples need rather than every request; its behaviors in the child as
    `processes` says); 0 in memory; None: in partitions (~`ROWS_PER_PARTITION` requests
    each) when the trace has more than `PARTITIONED_ABOVE_ROWS` requests or the in-memory
    model would take more than half the memory available (`_partitions`), else in
    memory."""
    if payload_sample < 1 or behavior_sample < 2:
        raise UsageError("--payload-sample must be ≥ 1 and --behavior-sample ≥ 2")
    asked = _Asked.checked(
        payload_sample, correlation_sample, correlation_per_endpoint, seed, correlation_requests
    )
    clock = _Clock(progress)
    trace = source or ParquetSource.open(trace_path)  # (its footers: no thread started)
    child = (processes or free_processes()) > 1
    if count := _partitions(trace, partitions):
        from .partitioned_model import partitioned_model

        return partitioned_model(
            trace_path, trace, partitions=count, clock=clock, asked=asked,
            session_timeout_s=session_timeout_s, behavior_sample=behavior_sample,
            correlations=correlations, censor_edges=censor_edges, child=child,
        )  # fmt: skip
    # The behaviors' child forks first, before this process starts a thread or reads: it
    # imports sklearn and scipy on the second core while the read, templates and sessions
    # run here (they load no scipy: the sessions' counting sort is pandas'), then fits the
    # behaviors (numpy over the sessionized frame) and the arrivals (their scipy.stats) on
    # what it is sent (`_BehaviorInputs`), while this process reads and learns the
    # payloads and correlations (Parquet reads and Python per sampled value). The ids'
    # selections, which need scipy.stats too, have the child test them once it is done
    # (`Pending.ask`): this process imports no scipy (cap20: before, its own import of
    # scipy.stats was a third of the model's wall). The child's stage lines come when its
    # result is taken.
    with forked(_behaviors_and_shape, child=child, imports=CHILD_MODULES) as fitting:
        with clock("read"):
            # The strings as the files' own dictionaries: none decoded per request
            # (real10M's read 14-16 → 5-7 CPU s, peak 1.3 → 0.86 GB; the same arrays).
            # (held only here: `_model_sessions` takes them, and lets their times go once
            # the sessions' sort has its own)
            held = [read_light_columns(trace)]
            clock.rows = len(held[0])
        span_s = float(held[0].t_s[-1])
        # The templates (Arrow over the distinct paths) on a thread while the sessions are
        # made (numpy over keys and times: no endpoint read until their last gather): both
        # let go of the GIL for most of their time, so they share the two cores (real10M:
        # 1.0 s and 1.6 s one after the other on one; bench/README.md, sess17). With no
        # core free (`child` False), one after the other: beside busy cores the thread
        # gained nothing.
        clock.started("templates")
        # (with the endpoints' statistics after them: `_templating_and_stats`)
        with (
            _on_a_thread(_templating_and_stats(held[0]), beside=child) as templating,
            clock("sessions"),
        ):
            # No endpoint nor seq column yet: `_completed` puts them in below. The times and
            # methods let go (the sessions and the templates hold their own), and no key a
            # row (no stage after sessionizing reads them).
            sessions, starts, by_timeout, requests = _model_sessions(
                trace, held, session_timeout_s, SENSITIVITY_TIMEOUTS_S
            )
            # (the runs read through their starts where the frame has no ids yet)
            table = session_table(sessions, starts)
            stats = session_stats(sessions, table).to_json()
            censored = censoring(
                sessions, session_timeout_s if censor_edges else 0.0, requests.duration_ms,
                starts,
            )  # fmt: skip
            del starts
            # The columns only the sessions read let go, and glibc's free pages given back,
            # before the templates are waited for: their thread's arrays come on top.
            _keep_what_later_stages_read(sessions)
            (templater, endpoint, names, endpoint_stats), seconds = templating()
            clock.done("templates", seconds)  # (the endpoints' statistics with them)
            # What only the sessions and the statistics read let go (20 B a request).
            requests = _after_the_stats(requests)
            _completed(sessions, endpoint, names, table["length"].to_numpy())
        _BehaviorInputs.send(fitting, sessions, table, censored, seed, behavior_sample, span_s)
        clock.started("behaviors")
        # The requests per arrivals' bucket (the bucket the child's `fit_arrivals` picks from
        # the same starts and span: `fitted_bucket_s`), counted over the times the
        # statistics keep until asked (the light columns' own were let go above).
        bucket_s = fitted_bucket_s(table["start_s"].to_numpy(), span_s)
        assert by_timeout.times is not None
        curve = request_curve(by_timeout.times, bucket_s, span_s)
        del templating  # (what waited for the templates: their result held no longer)
        with clock("sensitivity"):
            sensitivity = {name: at.to_json() for name, at in by_timeout().items()}
        _fitted_here(fitting)
        endpoints, payload_note, found, sample = _learned_from_samples(
            clock, trace, requests, sessions, endpoint, names, asked, correlations,
            endpoint_stats, partial(fitting.ask, binomial_tails),
        )  # fmt: skip
        fitting.done_asking()  # (the child ends once it has fitted)
        found.note.update(sessions=len(table), sessions_read=int(sample.chosen.sum()))
        # What no behavior decides: while the child still fits (unless the ids' selections
        # waited for it above).
        with clock("outcomes"):
            facts = found.outcome_facts()
        behaviors, shape, (arrivals, arrivals_s) = fitting.result()
        assert arrivals.bucket_s == bucket_s, "the request curve's bucket is not the arrivals'"
        clock.done("behaviors", (fitting.seconds or 0.0) - arrivals_s)
        clock.done("arrivals", arrivals_s)
        # (in the block: the child, done, ends beside it, reaped after)
        with clock("placement"):  # the sampled sessions' outcomes per behavior
            outcomes = NO_OUTCOMES if facts is None else place_outcomes(facts, behaviors)
    return model_document(
        trace_path, trace, Learned(
            len(requests), requests.first_ts, span_s, len(table), {
                "timeout_s": session_timeout_s,
                # Additive (issue 11): sessions the capture's edges cut (session_shape.py).
                "censored": censored.to_json(),
                "stats": stats,
                **shape,
                "requests": curve,
                "timeout_sensitivity": sensitivity,
            }, templater, endpoints, payload_note, behaviors, arrivals, found, outcomes,
        ), behavior_sample, seed,
    )  # fmt: skip


@dataclass(frozen=True)
class Learned:
    """What the model's stages learned of a trace (in memory or in key partitions): what
    `model_document` writes."""

    rows: int
    first_ts: pd.Timestamp
    span_s: float
    sessions: int
    sessions_section: dict[str, Any]
    templater: Templater
    endpoints: dict[str, Any]
    payload_note: dict[str, Any]
    behaviors: list[Behavior]
    arrivals: ArrivalModel
    found: _Found
    outcomes: Outcomes


def model_document(
    trace_path: Path, trace: RequestSource, learned: Learned, behavior_sample: int, seed: int
) -> dict[str, Any]:
    """The model file's data (`tracereplay.model/1`) of what was `learned`."""
    found = learned.found
    return {
        "format": MODEL_FORMAT,
        "provenance": {
            "trace": str(trace_path),
            "source": trace.metadata.source,
            "policy_hash": trace.metadata.policy_hash,
            "rows": learned.rows,
            "sessions": learned.sessions,
            "first_ts": learned.first_ts.isoformat(),
            "span_s": sig(learned.span_s),
            "tool_version": __version__,
            "sampling": {
                "payloads": learned.payload_note,
                "behaviors": {
                    "sample_sessions": behavior_sample,
                    "clustered_sessions": min(learned.sessions, behavior_sample),
                    "seed": seed,
                },
                "correlations": found.note,
            },
        },
        "sessions": learned.sessions_section,
        "templates": learned.templater.to_json(),
        "endpoints": learned.endpoints,
        "behaviors": [b.to_json() for b in learned.behaviors],
        "arrivals": learned.arrivals.to_json(),
        "correlations": correlations_to_json(found.rules),
        "auth": auth_to_json(found.auth),
        # Additive (issue 10): what replay's ownership rules and role matching read.
        "ids": ids_to_json(found.ids),
        "outcomes": outcomes_to_json(learned.outcomes),
    }


PARTITIONED_ABOVE_ROWS = 4_000_000
"""Requests past which `build_model` makes the model in key partitions unless told. Below,
the in-memory model is faster and holds about what the partitioned one does (real1M:
298-313 MB in memory, 290-310 MB in partitions); past it the in-memory model grows ~80 MB
a million requests (~0.55 GB here, 1.0-1.07 GB at real10M) where the partitioned one
holds what its sessions and samples need (real10M: 538-551 MB; at fixed sessions ~4 MB a
million requests), at ~1.3x the CPU (real10M: 9.2-9.8 s against 5.7-6.4 s on two cores;
bench/README.md, "The model in key partitions")."""
IN_MEMORY_BYTES = (350 << 20, 140)
"""What the in-memory model's two processes hold together at most, about: a fixed part
and bytes a request (stop 37's PSS of the tree: 1.35 GB at 10 M requests; ~10 B more
since stop 47, whose counting sort takes and gives 8-byte positions before they are made
4-byte: real10M in memory, the largest process 1.06-1.10 GB, main's 0.97-1.01)."""


def _partitions(trace: RequestSource, asked: int | None) -> int:
    """The key partitions the model of `trace` is made in (0: in memory): as `asked`, else
    in partitions past `PARTITIONED_ABOVE_ROWS` requests or where the in-memory model would
    take more than half the memory available (`available_bytes`: a container's limit
    too), else in memory."""
    if asked is not None and asked < 0:
        raise UsageError(f"--partitions must be ≥ 0, not {asked}")
    if asked is not None:
        return asked
    rows = said_rows(trace)
    if rows is None:
        return 0
    fixed, per_row = IN_MEMORY_BYTES
    need = fixed + per_row * rows
    # (the memory available asked only where it could matter: psutil's import, ~10 ms; the
    # partitioned model's modules only where it is made: ~45 ms before the child's fork)
    if rows > PARTITIONED_ABOVE_ROWS or (need > 512 << 20 and need > available_bytes() // 2):
        from .partitioned_model import partitions_for

        return partitions_for(rows)
    return 0


@dataclass(frozen=True)
class _Asked:
    """The sampling options of the payloads and correlations stages."""

    payload_sample: int
    correlation_sample: int
    correlation_per_endpoint: int
    seed: int
    correlation_requests: int = CORRELATION_SAMPLE_REQUESTS

    @classmethod
    def checked(
        cls, payload_sample: int, correlation_sample: int, correlation_per_endpoint: int,
        seed: int, correlation_requests: int,
    ) -> _Asked:  # fmt: skip
        """The options, each in its range (else a `UsageError` naming them)."""
        if correlation_sample < 2 or correlation_per_endpoint < 0 or correlation_requests < 1:
            raise UsageError(
                "--correlation-sample must be ≥ 2, --correlation-per-endpoint ≥ 0"
                " and --correlation-requests ≥ 1"
            )
        return cls(
            payload_sample, correlation_sample, correlation_per_endpoint, seed, correlation_requests
        )


def _learned_from_samples(
    clock: _Clock,
    trace: RequestSource,
    requests: RequestColumns,
    sessions: pd.DataFrame,
    endpoint: np.ndarray,
    names: list[str],
    asked: _Asked,
    correlations: bool,
    stats: list[dict[str, Any]] | None = None,
    tails: Tails = binomial_tails,
) -> tuple[dict[str, Any], dict[str, Any], _Found, SessionSample]:
    """The payloads and correlations stages: the endpoints, the payload sampling note,
    what correlation finding learned (`correlations=False`: nothing) and its sample.
    The correlation sample, every session's address and the endpoints' statistics (numpy,
    Arrow: GIL-free) are computed on a thread beside the samples' Python, in that order
    (models/whole_trace.py): the sample first, as the reads need it; `stats`: the
    statistics when the caller has them (`build_model`: made beside the sessions, so
    that the columns they read are let go before these stages); `tails`: where the ids'
    selections are tested (`build_model`: in its child, once it has fitted)."""
    seed = asked.seed
    # Every session's address is counted unless the correlation sample is sure to be whole.
    ids = sessions["session_id"].to_numpy()
    everyone = correlations and not sampled_whole(ids, asked.correlation_sample)
    with collector_paused(), WholeTrace() as beside:
        with clock("payloads"):
            # One scan of the trace's heavy columns for every sample read below: the
            # payloads' and the correlation sample's (bodies are most of a scan's cost).
            # Part of this stage's time is the correlations' read.
            parts = _request_parts(trace, requests)
            drawn = beside.submit(
                _correlation_sample,
                parts, sessions, asked.correlation_sample, asked.correlation_per_endpoint, seed,
                asked.correlation_requests,
            )  # fmt: skip
            addresses = (
                beside.submit(_every_address, trace, requests, sessions) if everyone else None
            )
            groups, chosen, payload_read, files = _payload_sample(
                parts, endpoint, names, asked.payload_sample, seed
            )
            if stats is None:
                beside_stats = beside.submit(_endpoint_stats, requests, groups)
            sample = drawn.result()
            del parts  # (the samples' only: 2 B a request not held through the correlations)
            read = _SampleReads.of(trace, requests, sessions, payload_read, sample, correlations)
            payloads, payload_note = _payload_models(
                groups, chosen, read.payloads, asked.payload_sample, seed, len(requests)
            )
            payload_note.update(files)
        # What the payloads freed (their reads, the scan's transient arrays) goes back to
        # the system before the correlations grow: glibc keeps freed pages
        # (tracereplay/allocator.py), and the correlations are where both processes
        # together peak (bench/README.md, mem20, mem21).
        give_back_freed()
        with clock("correlations"):
            note = {
                "per_sample": asked.correlation_sample,
                "per_endpoint": asked.correlation_per_endpoint,
                "seed": seed,
            }
            found = _Found([], NO_AUTH, NO_IDS, note)
            if correlations:
                heavy = _correlation_frame(requests, read.sessions, read.correlations)
                found = _Found.of(heavy, sample, groups.names, note, tails)
                if not sample.whole:  # (started early where the sample could not be whole)
                    at = addresses or beside.submit(_every_address, trace, requests, sessions)
                    found.addresses = at.result()
            endpoints = _merged(
                groups, payloads, stats if stats is not None else beside_stats.result()
            )
    return endpoints, payload_note, found, sample


@contextmanager
def _on_a_thread(work: Callable[[], Any], *, beside: bool) -> Iterator[Callable[[], Any]]:
    """`work` on a thread while the block runs when `beside`, else here before it; the
    block's callable waits for it and gives its result and the seconds it took."""

    def timed() -> tuple[Any, float]:
        start = time.perf_counter()
        return work(), time.perf_counter() - start

    if not beside:
        done = timed()
        yield lambda: done
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="beside") as thread:
        yield thread.submit(timed).result


def learned_auth(
    trace_path: Path,
    *,
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
    seed: int = 0,
    correlation_sample: int = CORRELATION_SAMPLE_SESSIONS,
    correlation_per_endpoint: int = CORRELATION_SESSIONS_PER_ENDPOINT,
    correlation_requests: int = CORRELATION_SAMPLE_REQUESTS,
) -> AuthInfo:
    """The auth flow `build_model` (same options) finds in the trace at `trace_path`, found
    the same way (its sessions, its seeded sample of them), without the other stages:
    what compare binds the `login` SLO class to when REAL has no model file. Reads the
    light columns of every request and the heavy ones of the sampled sessions only
    (`sessions_auth`, which takes sessions a caller has already)."""
    trace = ParquetSource.open(trace_path)
    requests = read_light_columns(trace)
    _, endpoint, names = _templates(requests)
    sessions, _ = _sessionized(trace, requests, endpoint, names, session_timeout_s)
    request = sessions["request"].to_numpy()
    return sessions_auth(
        trace, sessions["session_id"].to_numpy(), sessions["endpoint"], requests.row[request],
        seed=seed, correlation_sample=correlation_sample,
        correlation_per_endpoint=correlation_per_endpoint,
        correlation_requests=correlation_requests,
    )  # fmt: skip


@dataclass(frozen=True)
class _BehaviorInputs:
    """All the behaviors' fit and the sessions' shape read, what the forked child is sent
    (~13 B a request, 16 a session: real10M's ~0.15 GB, views of this process's arrays)."""

    sessions: pd.DataFrame
    """The sessionized frame's columns `fit_behaviors` reads."""
    length: np.ndarray
    duration_s: np.ndarray
    """The session table's lengths and durations."""
    censored: Censoring
    seed: int
    sample: int
    start_s: np.ndarray
    span_s: float
    """The sessions' starts and the trace's span: the arrivals' inputs."""
    in_caller: bool = False
    """Whether the work runs in the model's own process (no child)."""

    @classmethod
    def of(
        cls, sessions: pd.DataFrame, table: pd.DataFrame, censored: Censoring, seed: int,
        sample: int, span_s: float, in_caller: bool = False,
    ) -> _BehaviorInputs:  # fmt: skip
        return cls(
            sessions[["session_id", "endpoint", "think_s"]],
            table["length"].to_numpy(),
            table["duration_s"].to_numpy(),
            censored, seed, sample, table["start_s"].to_numpy(), span_s, in_caller,
        )  # fmt: skip

    @classmethod
    def send(
        cls, fitting: Pending[_BehaviorInputs, Any], sessions: pd.DataFrame,
        table: pd.DataFrame, censored: Censoring, seed: int, sample: int, span_s: float,
    ) -> None:  # fmt: skip
        """The inputs `of` gives sent to `fitting`, and the frame's `think_s` let go here
        (the behaviors' only: sent, or held by what was sent)."""
        fitting.send(cls.of(sessions, table, censored, seed, sample, span_s, fitting.in_caller))
        del sessions["think_s"]


def _fitted_here(fitting: Pending[Any, Any]) -> None:
    """With no child, the behaviors now: their inputs let go after them and what they
    freed given back, before the payloads and correlations add what they hold (they came
    last, on top of all those had left in glibc's heap: real10M's one-process peak 1,067
    -> ~955 MB, now the sessions'). The same model: `result()` later gives this result."""
    if fitting.in_caller:
        fitting.result()
        give_back_freed()


def _behaviors_and_shape(
    inputs: _BehaviorInputs,
) -> tuple[list[Behavior], dict[str, Any], tuple[ArrivalModel, float]]:
    """The behaviors, the quantiles of the sessions' lengths and durations the file reports
    (1-2 s at 10 M requests: beside the payloads and correlations too), and the arrivals
    with the seconds they took (here: their scipy is the child's, not imported twice). The
    arrivals and the quantiles are made while the behaviors' k-means fits run on their
    threads (`fit_behaviors`' `meanwhile`), where a second core can take them."""
    beside = _Beside(inputs)
    behaviors = fit_behaviors(
        inputs.sessions,
        seed=inputs.seed,
        sample=inputs.sample,
        censored=inputs.censored,
        meanwhile=beside,
        # In the model's own process, what the clustering freed goes back to the system
        # before the chains are counted: glibc keeps freed pages (tracereplay/allocator.py),
        # and the chains' arrays would come on top of them (real10M, one process: the
        # behaviors' peak 994 -> 954 MB, under the sessions' 950).
        clustered=give_back_freed if inputs.in_caller else None,
    )
    arrivals, seconds, shape = beside.result()
    return behaviors, shape, (arrivals, seconds)


@dataclass
class _Beside:
    """The arrivals (and the seconds they took) and the sessions' quantiles, made once:
    when called (beside the fits), else when their result is asked for."""

    inputs: _BehaviorInputs
    found: tuple[ArrivalModel, float, dict[str, Any]] | None = None

    def __call__(self) -> None:
        if self.found is not None:
            return
        inputs, start = self.inputs, time.perf_counter()
        arrivals = fit_arrivals(np.asarray(inputs.start_s, dtype=float), inputs.span_s)
        seconds = time.perf_counter() - start
        censored = inputs.censored.any
        shape = {
            # Kaplan-Meier (issue 11): cut sessions' lengths are lower bounds.
            "length": censored_quantiles(np.asarray(inputs.length, dtype=float), censored),
            "duration_s": censored_quantiles(np.asarray(inputs.duration_s, dtype=float), censored),
        }
        self.found = (arrivals, seconds, shape)

    def result(self) -> tuple[ArrivalModel, float, dict[str, Any]]:
        self()
        assert self.found is not None
        return self.found


def censored_quantiles(values: np.ndarray, censored: np.ndarray) -> dict[str, float]:
    """The sessions' shape entries: the p05..p99 and max of `values`, those `censored`
    lower bounds (Kaplan-Meier), to 4 significant digits; {} for no values."""
    if not len(values):
        return {}
    points = {"p05": 5, "p25": 25, "p50": 50, "p75": 75, "p95": 95, "p99": 99, "max": 100}
    found = km_percentiles(values, censored, list(points.values()))
    return {k: sig(float(v), 4) for k, v in zip(points, found, strict=True)}


def model_json(model: dict[str, Any]) -> str:
    """The file's text: indented, keys sorted, so two models diff line by line."""
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_model(model: dict[str, Any], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(model_json(model), encoding="utf-8")
    tmp.replace(out)
    return out


def default_model_path(trace_path: Path) -> Path:
    """traces/NAME → traces/NAME.model.json (DESIGN.md's NAME.model.json)."""
    trace_path = Path(trace_path)
    return trace_path.with_name(f"{trace_path.name}.model.json")
