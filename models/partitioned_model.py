"""`build_model`'s model made one key partition at a time (issue 15, docs/SCALE.md item 4):
no array of every request is held, so what the model holds grows with its sessions and
endpoints, not with its requests.

One scan spills every request to the partition of its session key (key_partitions.py),
the endpoints' parameter kinds taken from its batches (partition_endpoints.ParamFacts).
Then one pass makes each partition's sessions (partition_sessions.py: its pauses spilled
for their exact quantiles), counts its endpoints (EndpointTally: durations spilled) and
spills what later stages read of each request: its local session, place in it, pause,
endpoint and scan position (partition_pass.py). The merge numbers the sessions as the model does;
the behaviors pass over the handed spills (partition_behaviors.py), the samples choose
their rows from them (partition_samples.py) and their heavy columns are read as the
model reads them (partition_reads.py). Each stage is tested equal to the bit to the one
it replaces; the model file equals the in-memory path's byte for byte.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tracereplay.errors import SpillSpaceError

from .arrivals import ArrivalModel, fit_arrivals
from .behaviors import Behavior
from .forked import CHILD_MODULES, forked
from .id_select import binomial_tails
from .key_partitions import scan_key_partitions
from .outcomes import NO_OUTCOMES, place_outcomes
from .partition_behaviors import partition_behaviors
from .partition_endpoints import EndpointTally, ParamFacts
from .partition_pass import BehaviorRequests, Handed, sessions_pass
from .partition_reads import moved_first_keys, partition_learned
from .partition_samples import correlation_sample, payload_sample
from .partitioned_sessions import SpilledPauses, given_back
from .session_shape import Censoring
from .source import RequestSource, said_rows
from .spilled_quantiles import SpilledValues

if TYPE_CHECKING:
    from .model import _Asked, _Clock

ROWS_PER_PARTITION = 1 << 18
"""Requests per key partition the model aims at (`partitions_for`): what one partition's
arrays hold (~100 B a request, a few partitions at once: `AHEAD`) against the passes' cost
per partition (real10M in one process: 17.2-17.7 CPU s at 40 partitions, 19.0-19.2 at
160, the same peak)."""


def partitions_for(rows: int) -> int:
    """The partitions a trace of `rows` requests is split into: ~`ROWS_PER_PARTITION` each."""
    return max(1, -(-rows // ROWS_PER_PARTITION))


@dataclass(frozen=True)
class _BehaviorInputs:
    """What the behaviors and arrivals read (sent to the child: sessions-sized arrays and
    the handout's directory, which both processes see)."""

    handed: Path
    ids: list[np.ndarray]
    names: list[str]
    seed: int
    sample: int
    censored: Censoring
    start_s: np.ndarray
    span_s: float
    spills: Path


def _behaviors_and_arrivals(
    inputs: _BehaviorInputs,
) -> tuple[list[Behavior], tuple[ArrivalModel, float]]:
    """The behaviors over the handout's spills, and the arrivals with the seconds they took."""
    behaviors = partition_behaviors(
        BehaviorRequests(Handed.at(inputs.handed), inputs.ids), inputs.names,
        seed=inputs.seed, sample=inputs.sample, censored=inputs.censored,
        directory=inputs.spills,
    )  # fmt: skip
    start = time.perf_counter()
    arrivals = fit_arrivals(np.asarray(inputs.start_s, dtype=float), inputs.span_s)
    return behaviors, (arrivals, time.perf_counter() - start)


def partitioned_model(
    trace_path: Path,
    trace: RequestSource,
    *,
    partitions: int,
    clock: _Clock,
    asked: _Asked,
    session_timeout_s: float,
    behavior_sample: int,
    correlations: bool,
    censor_edges: bool,
    child: bool,
    directory: Path | None = None,
) -> dict[str, Any]:
    """`build_model`'s model of `trace` (its options as given), made in `partitions`
    partitions of session keys spilled under `directory` (default: the system's temp
    directory), every spill removed on return or error (a disk too full for them: a
    `SpillSpaceError`). With `child`, the behaviors and arrivals are fitted in a child
    forked first (it imports sklearn while this process scans), beside the samples' reads
    here."""
    from .model import Learned, model_document

    seed, params = asked.seed, ParamFacts()
    with (
        _room_for_spills(trace_path, directory, clock, trace),
        forked(_behaviors_and_arrivals, child=child, imports=CHILD_MODULES) as fitting,
    ):
        with clock("read"):
            parts = scan_key_partitions(
                trace, partitions, directory, join_failed_auth=True, params=params
            )
            clock.rows = parts.rows
        with (
            parts,
            SpilledValues(parts.directory) as spilled,
            EndpointTally(len(parts.names), parts.directory) as tally,
            Handed(parts.directory) as handed,
        ):
            given_back()
            with clock("sessions"):
                from .model import SENSITIVITY_TIMEOUTS_S

                sink = SpilledPauses(spilled, SENSITIVITY_TIMEOUTS_S, session_timeout_s)
                made = sessions_pass(parts, sink, tally, handed, session_timeout_s, censor_edges)
            merged = made.merged
            start_s = merged.table["start_s"].to_numpy()
            fitting.send(
                _BehaviorInputs(
                    handed.directory, merged.ids, parts.names, seed, behavior_sample,
                    merged.censored, start_s, made.span_s, parts.directory,
                )
            )  # fmt: skip
            clock.started("behaviors")
            # (what only this process reads, once the child has its inputs)
            section = made.section()
            session_key, first_row = made.keys_and_firsts()
            if fitting.in_caller:  # (no child: now, before the samples add what they hold)
                fitting.result()
            with clock("templates"):  # (the endpoints' statistics: the templates are the scan's)
                kinds = params.endpoint_kinds(parts.names, parts.endpoint_of)
                stats = tally.stats(parts.names, kinds)
            part_rows = getattr(trace, "part_rows", lambda: None)()
            with clock("samples"):
                chosen = payload_sample(parts, part_rows, asked.payload_sample, seed)
                rows_read = correlation_sample(
                    parts, merged.ids, part_rows, session_timeout_s,
                    per_sample=asked.correlation_sample,
                    per_endpoint=asked.correlation_per_endpoint, seed=seed,
                    requests=asked.correlation_requests,
                    handed=lambda p: handed.read(p, "local", "seq", "row", "endpoint"),
                )  # fmt: skip
            if parts.join is not None:  # (the first requests' own keys: not the joined ones)
                session_key = moved_first_keys(
                    session_key, first_row, parts.moved_rows, parts.moved_keys
                )
            endpoints, payload_note, found, _ = partition_learned(
                trace, chosen, rows_read, parts.names, session_key, first_row, asked,
                correlations, stats, parts.rows, clock, partial(fitting.ask, binomial_tails),
            )  # fmt: skip
            fitting.done_asking()  # (the child ends once it has fitted)
            with clock("outcomes"):
                facts = found.outcome_facts()
            behaviors, (arrivals, arrivals_s) = fitting.result()
            assert arrivals.bucket_s == made.bucket_s, "the curve's bucket is not the arrivals'"
            clock.done("behaviors", (fitting.seconds or 0.0) - arrivals_s)
            clock.done("arrivals", arrivals_s)
            templater = parts.templater
            assert templater is not None
        with clock("placement"):  # (in the block: the child, done, ends beside it)
            outcomes = NO_OUTCOMES if facts is None else place_outcomes(facts, behaviors)
    first_ts = pd.Timestamp(parts.first_ts_us, unit="us", tz="UTC")
    learned = Learned(
        parts.rows, first_ts, made.span_s, len(merged.table), section, templater,
        endpoints, payload_note, behaviors, arrivals, found, outcomes,
    )  # fmt: skip
    return model_document(trace_path, trace, learned, behavior_sample, seed)


SPILL_BYTES_PER_REQUEST = 110
"""What the partitions' spills take on disk at most, about, per request (real1M: ~104)."""


@contextmanager
def _room_for_spills(
    trace_path: Path, directory: Path | None, clock: _Clock, trace: RequestSource
) -> Iterator[None]:
    """A disk too full for the spills under `directory` (default: the system's temp
    directory) said as a `SpillSpaceError`: where, and about how much they take (for the
    requests scanned, or, where the scan itself stopped, for the trace's files' rows)."""
    try:
        yield
    except OSError as exc:
        where = Path(directory or tempfile.gettempdir())
        if not _no_room(exc, where):
            raise
        rows = clock.rows or said_rows(trace) or 0
        size = SPILL_BYTES_PER_REQUEST * rows
        amount = f"~{size / 1e9:.1f} GB" if size >= 1e9 else f"~{max(1, round(size / 1e6))} MB"
        each = f"~{SPILL_BYTES_PER_REQUEST} B a request"
        need = f"{amount} for {rows:,} requests" if rows else each
        raise SpillSpaceError(
            f"model of {trace_path}: no room left under {where} for its key partitions' spills"
            f" ({exc}): they take {need}; free disk space there, or set TMPDIR to a directory"
            " with room"
        ) from exc


def _no_room(exc: OSError, where: Path) -> bool:
    """Whether `exc` says the disk under `where` is full: its errno, or (numpy's short
    writes carry none) hardly a block left there."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        return exc.errno is None and shutil.disk_usage(where).free < 1 << 20
    except OSError:
        return False
