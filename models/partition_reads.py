"""The payloads and correlations stages of the model from the key partitions' samples
(issue 15): `partition_learned` gives what `model._learned_from_samples` gives — the
endpoints, the payload sampling note, what correlation finding learned and its sample —
from the samples `partition_samples` chose (`PayloadSample`, `CorrelationRows`) and
sessions-sized arrays (each session's first request's key and scan position), with no
array of every request.

The reads and the learning are sample_reads' own functions: `sample_scan` (the one scan
of the sampled requests' heavy columns), `_payload_models` and `_merged` (given an
`EndpointCodes` of the endpoints' names and bounds alone: they read no request's rank),
`correlation_frame`, `_Found.of` and `first_request_addresses` (every session's address,
from its first request). tests/models/test_partition_reads.py compares them to the bit.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracereplay.allocator import collector_paused, give_back_freed

from .correlations import NO_AUTH
from .endpoint_codes import EndpointCodes
from .id_select import Tails, binomial_tails
from .ids import NO_IDS
from .partition_samples import CorrelationRows, PayloadSample
from .sample_reads import (
    _Found,
    _merged,
    _payload_models,
    correlation_frame,
    first_request_addresses,
    sample_scan,
)
from .session_sample import SessionSample
from .source import RequestSource
from .whole_trace import WholeTrace

if TYPE_CHECKING:  # (model.py imports sample_reads, not this module: no cycle either way)
    from .model import _Asked, _Clock

__all__ = ["moved_first_keys", "partition_learned"]


def partition_learned(
    trace: RequestSource,
    payloads: PayloadSample,
    rows: CorrelationRows,
    code_names: list[str],
    session_key: pa.Array | pa.ChunkedArray,
    first_row: np.ndarray,
    asked: _Asked,
    correlations: bool,
    stats: list[dict[str, Any]],
    requests: int,
    clock: _Clock | None = None,
    tails: Tails = binomial_tails,
) -> tuple[dict[str, Any], dict[str, Any], _Found, SessionSample]:
    """`_learned_from_samples`' (endpoints, payload note, found, sample), with the note's
    `sessions` and `sessions_read` as `build_model` adds them, from:
    `payloads` (`payload_sample`), `rows` (`correlation_sample`: its sample is always
    given; its rows are read only when `correlations`), `code_names` (what `rows.endpoint`
    codes index: `KeyPartitions.names`), `session_key` (per global session id, the session
    key string of its first request: the request's own key, which for a trace whose
    failed-auth keys are joined may not be its session's joined key: `moved_first_keys`),
    `first_row` (per global session id, its first request's scan position), `stats` (the
    endpoints' statistics in name order, `_endpoint_stats`'), `requests` (the trace's
    request count), `clock` (`build_model`'s stage lines, if any) and `tails` (where the
    ids' selections are tested: `id_select.learn_selections`). Held: the samples' reads
    and sessions-sized arrays."""
    stage: Callable[[str], AbstractContextManager[None]] = clock or (lambda _: nullcontext())
    sample = rows.sample
    sessions = len(first_row)
    keys = _strings(session_key)
    if len(keys) != sessions:
        raise ValueError(f"{len(keys)} session keys for {sessions} sessions")
    # Every session's address is counted unless the correlation sample is sure to be whole
    # (`sampled_whole`: no more sessions than the sample takes).
    everyone = correlations and sessions > asked.correlation_sample
    firsts = np.asarray(first_row, np.int64)
    with collector_paused(), WholeTrace() as beside:
        with stage("payloads"):
            addresses = (
                beside.submit(_every_address, trace, firsts, requests, keys) if everyone else None
            )
            groups = _codes(payloads)
            read = (
                np.concatenate(payloads.rows).astype(np.int64, copy=False)
                if payloads.rows
                else np.zeros(0, np.int64)
            )
            wanted = rows.row if correlations else rows.row[:0]
            payload_rows, scanned = sample_scan(trace, read, np.asarray(wanted, np.int64))
            models, payload_note = _payload_models(
                groups, payloads.rows, payload_rows, asked.payload_sample, asked.seed, requests
            )
            payload_note.update(payloads.files)
            del payload_rows
        give_back_freed()
        with stage("correlations"):
            note = {
                "per_sample": asked.correlation_sample,
                "per_endpoint": asked.correlation_per_endpoint,
                "seed": asked.seed,
            }
            found = _Found([], NO_AUTH, NO_IDS, note)
            if correlations:
                heavy = correlation_frame(
                    scanned,
                    np.array(keys.take(pa.array(rows.session_id)).to_pylist(), object),
                    rows.session_id,
                    rows.seq,
                    np.asarray(code_names, object)[rows.endpoint],
                )
                found = _Found.of(heavy, sample, groups.names, note, tails)
                if not sample.whole:
                    at = addresses or beside.submit(_every_address, trace, firsts, requests, keys)
                    found.addresses = at.result()
            endpoints = _merged(groups, models, stats)
    found.note.update(sessions=sessions, sessions_read=int(sample.chosen.sum()))
    return endpoints, payload_note, found, sample


def _strings(keys: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The keys as one string array (what `addresses` counts and concatenates with `addr`)."""
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks() if keys.num_chunks else pa.array([], keys.type)
    if pa.types.is_dictionary(keys.type):
        keys = keys.dictionary_decode()
    return keys if keys.type == pa.string() else keys.cast(pa.string())


def _codes(payloads: PayloadSample) -> EndpointCodes:
    """The endpoints' names and bounds as `_payload_models` and `_merged` read them (no
    request's rank: `ranked` is empty)."""
    bounds = np.zeros(len(payloads.counts) + 1, np.int64)
    np.cumsum(payloads.counts, out=bounds[1:])
    return EndpointCodes(payloads.names, np.zeros(0, np.int64), bounds)


def _every_address(
    trace: RequestSource, first_row: np.ndarray, requests: int, keys: pa.Array
) -> tuple[int, str | None]:
    """`sample_reads._every_address` from each session's first request's scan position
    and its key (per global session id)."""

    def of(missing: np.ndarray) -> pa.Array:
        return pa.DictionaryArray.from_arrays(pa.array(missing), keys)

    return first_request_addresses(trace, first_row, requests, of)


def moved_first_keys(
    session_key: pa.Array, first_row: np.ndarray, moved_rows: np.ndarray, moved_keys: pa.Array
) -> pa.Array:
    """Each session's first request's own session key, without a read of the trace (the
    tests read it there: tests/models/trace_first_keys.py): each session's key (by global
    session id: its partition's key, the joined one), but where its first request (scan
    position `first_row`) is one of the rows moved from a key joined to another
    (`KeyPartitions.moved_rows`, ascending, and `moved_keys`: their own keys), that key.
    A session's other first requests are its key's own (only moved rows are not)."""
    keys = _strings(session_key)
    if not len(moved_rows):
        return keys
    firsts = np.asarray(first_row, np.int64)
    at = np.minimum(np.searchsorted(moved_rows, firsts), len(moved_rows) - 1)
    moved = moved_rows[at] == firsts
    if not moved.any():
        return keys
    own = moved_keys.cast(pa.string()).take(pa.array(at, mask=~moved))
    return pc.if_else(pa.array(moved), own, keys)
