"""The payloads and correlations stages with their work over every request on a thread
(models/whole_trace.py): the same endpoints, addresses and findings as the steps one after
the other on this thread; an error on the thread is the stage's error, once."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest

from tests.models.test_every_address import write_files
from tracereplay.errors import TraceCorruptError
from tracereplay.models import model as m
from tracereplay.models import sample_reads as sr
from tracereplay.models.behaviors import sig
from tracereplay.models.correlations import correlations_to_json
from tracereplay.models.endpoints import infer_payloads, latency_and_status, param_kinds
from tracereplay.models.frame import (
    distinct,
    read_light_columns,
)
from tracereplay.models.ids import ids_to_json
from tracereplay.models.session_sample import sampled_whole
from tracereplay.models.sessions import DEFAULT_SESSION_TIMEOUT_S
from tracereplay.models.source import ParquetSource


def prepared(path: Path) -> dict[str, Any]:
    trace = ParquetSource.open(path)
    requests = read_light_columns(trace)
    _, endpoint, names = m._templates(requests)
    sessions, _ = m._sessionized(trace, requests, endpoint, names, DEFAULT_SESSION_TIMEOUT_S, {})
    return {"trace": trace, "requests": requests, "sessions": sessions, "endpoint": endpoint,
            "names": names}  # fmt: skip


def one_after_the_other(s: dict[str, Any], asked: Any) -> tuple[Any, ...]:
    """The two stages' steps on this thread, as build_model ran them before the thread."""
    trace, requests, sessions = s["trace"], s["requests"], s["sessions"]
    parts = sr._request_parts(trace, requests)
    sample = sr._correlation_sample(
        parts, sessions, asked.correlation_sample, asked.correlation_per_endpoint, asked.seed
    )
    groups, chosen, payload_read, files = sr._payload_sample(
        parts, s["endpoint"], s["names"], asked.payload_sample, asked.seed
    )
    read = sr._SampleReads.of(trace, requests, sessions, payload_read, sample, True)
    endpoints, note = endpoints_before(
        requests, groups, chosen, read.payloads, asked.payload_sample, asked.seed
    )
    note.update(files)
    heavy = sr._correlation_frame(requests, read.sessions, read.correlations)
    note_c = {"per_sample": asked.correlation_sample,
              "per_endpoint": asked.correlation_per_endpoint, "seed": asked.seed}  # fmt: skip
    found = sr._Found.of(heavy, sample, endpoints, note_c)
    if not sample.whole:
        found.addresses = sr._every_address(trace, requests, sessions)
    return endpoints, note, found


def endpoints_before(
    requests: Any, groups: Any, chosen: Any, payload_rows: Any, sample: int, seed: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`sample_reads._endpoints` as it was before the statistics went on a thread."""
    out: dict[str, Any] = {}
    sampled = fields = stable = 0
    offset = 0
    grouped = groups.grouped()  # each endpoint's rows
    for i, name in enumerate(grouped.names):
        rows = grouped.rows(i)
        method, template = name.split(" ", 1)
        part = payload_rows.slice(offset, len(chosen[i]))
        offset += len(chosen[i])
        cut = len(chosen[i]) < len(rows)
        payloads = infer_payloads(part, half_check=cut)
        if cut:
            sampled += 1
            fields, stable = fields + payloads.fields, stable + payloads.stable_fields
        paths = requests.paths.take(distinct(requests.path[rows]))
        entry: dict[str, Any] = {
            "method": method,
            "template": template,
            "count": len(rows),
            "share": sig(len(rows) / len(requests)),
            "params": param_kinds(template, pc.fill_null(paths, "/")),
            "query": payloads.query,
            "body": payloads.body,
        }
        entry.update(latency_and_status(requests.duration_ms[rows], requests.status[rows]))
        out[name] = entry
    note = {"per_endpoint": sample, "seed": seed, "requests": len(requests),
            "read": payload_rows.num_rows, "endpoints_sampled": sampled,
            "fields_sampled": fields, "fields_same_on_half": stable}  # fmt: skip
    return out, note


def digest(endpoints: Any, note: Any, found: Any) -> str:
    return json.dumps(
        [endpoints, note, correlations_to_json(found.rules), ids_to_json(found.ids),
         found.note, found.addresses],
        sort_keys=True, default=str,
    )  # fmt: skip


@pytest.mark.parametrize(("payload_sample", "correlation_sample"), [(3, 4), (1000, 5000)])
def test_the_thread_finds_what_one_thread_finds(
    tmp_path: Path, payload_sample: int, correlation_sample: int
) -> None:
    s = prepared(write_files(tmp_path / "t"))
    asked = m._Asked(payload_sample, correlation_sample, 1, 0)
    endpoints, note, found, sample = m._learned_from_samples(
        m._Clock(None), s["trace"], s["requests"], s["sessions"], s["endpoint"], s["names"],
        asked, True,
    )  # fmt: skip
    assert sample.whole == (correlation_sample == 5000)
    assert (found.addresses is None) == sample.whole
    want = one_after_the_other(s, asked)
    assert digest(endpoints, note, found) == digest(*want)
    # JSON equality ignores key order within entries: pin it too (model_json sorts keys,
    # but the dict passed on is what other code iterates)
    assert [list(e) for e in endpoints.values()] == [list(e) for e in want[0].values()]
    assert not [t for t in threading.enumerate() if t.name.startswith("whole-trace")]


@pytest.mark.parametrize("where", ["_correlation_sample", "_every_address", "_endpoint_stats"])
def test_an_error_on_the_thread_is_the_stages_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    s = prepared(write_files(tmp_path / "t"))

    def damaged(*_: Any) -> Any:
        raise TraceCorruptError(f"{where}: a bad page")

    monkeypatch.setattr(m, where, damaged)
    with pytest.raises(TraceCorruptError, match=f"^{where}: a bad page$"):
        m._learned_from_samples(
            m._Clock(None), s["trace"], s["requests"], s["sessions"], s["endpoint"],
            s["names"], m._Asked(3, 4, 1, 0), True,
        )  # fmt: skip
    assert not [t for t in threading.enumerate() if t.name.startswith("whole-trace")]


def test_a_sample_sure_to_be_whole_reads_no_address(tmp_path: Path) -> None:
    s = prepared(write_files(tmp_path / "t"))
    sessions = int(s["sessions"]["session_id"].max()) + 1
    ids = s["sessions"]["session_id"].to_numpy()
    assert sampled_whole(ids, sessions)
    assert not sampled_whole(ids, sessions - 1)
    assert sampled_whole(ids[:0], 2)
