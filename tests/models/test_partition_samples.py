"""The payload and correlation samples chosen from the key partitions
(models/partition_samples.py) are the model's own (`sample_reads._payload_sample`,
`_correlation_sample` + `_correlation_rows` on the whole trace's arrays): the same scan
positions in the same order, at 1, 3 and 16 partitions, on traces of several files and of
one, for several seeds and sample sizes that bind and that do not."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from faker import Faker
from pyarrow import ipc

from tests.factories import T0, make_record, make_table
from tests.models.test_partition_failed_auth import _source as _failed_auth_source
from tracereplay.models.endpoints import PAYLOAD_SAMPLE_REQUESTS
from tracereplay.models.key_partitions import ROW_FILE, KeyPartitions, scan_key_partitions
from tracereplay.models.light_columns import read_light_columns
from tracereplay.models.partition_pass import Handout
from tracereplay.models.partition_samples import correlation_sample, payload_sample
from tracereplay.models.partition_sessions import (
    TracePauses,
    merged_sessions,
    partition_sessions,
)
from tracereplay.models.sample_reads import (
    _correlation_rows,
    _correlation_sample,
    _payload_sample,
    _request_parts,
)
from tracereplay.models.session_sample import (
    CORRELATION_SAMPLE_REQUESTS,
    CORRELATION_SAMPLE_SESSIONS,
    CORRELATION_SESSIONS_PER_ENDPOINT,
)
from tracereplay.models.sessionized import _sessionized, _templates
from tracereplay.models.source import ParquetSource

TIMEOUT_S = 600.0
ENDPOINTS = ["/api/items/{}", "/api/orders/{}/lines", "/login", "/api/cart", "/rare/{}"]


def _write(directory: Path, seed: int, files: int, empty: int = 0) -> Path:
    """`files` Parquet files of faker-named sessions over a few hours (times overlapping
    across files and tied within them, gaps past the timeout), a skewed endpoint mix (one
    endpoint in few sessions), some requests keyed by their client; then `empty` files
    of no row (a trace of several files, one holding every request)."""
    fake = Faker(["en_US", "ja_JP"])
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True)
    for f in range(files):
        records = []
        for k in range(int(rng.integers(30, 60))):
            session = None if k % 11 == 5 else f"{fake.user_name()}-{f}-{k}"
            client = f"{fake.ipv4()}-{k % 4}"
            t = float(rng.integers(0, 3 * 3600))
            rare = rng.random() < 0.1
            for _ in range(int(rng.integers(1, 50))):
                t += float(rng.choice([0.0, 1.0, 20.0, 900.0], p=[0.2, 0.5, 0.28, 0.02]))
                e = 4 if rare and rng.random() < 0.3 else int(rng.choice(4, p=[0.6, 0.2, 0.1, 0.1]))
                records.append(
                    make_record(ts=T0 + timedelta(seconds=t), session=session, client=client,
                                path=ENDPOINTS[e].format(int(rng.integers(0, 40))),
                                duration_ms=float(rng.choice([1.0, 30.0])), status=200)
                )  # fmt: skip
        pq.write_table(make_table(records), directory / f"part-{f:06d}.parquet", 97)
    for f in range(files, files + empty):
        pq.write_table(make_table([]), directory / f"part-{f:06d}.parquet")
    return directory


@pytest.fixture(
    scope="module",
    params=[(1, 3, 0), (2, 1, 0), (3, 5, 0), (4, 1, 1)],
    ids=["3files", "1file", "5files", "1file+empty"],
)
def trace(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    seed, files, empty = request.param
    return _write(tmp_path_factory.mktemp("samp") / "t", seed, files, empty)


class _Model:
    """The model's arrays of the whole trace and its own choices of them."""

    def __init__(self, trace: Path, timeout_s: float = TIMEOUT_S) -> None:
        self.source = ParquetSource.open(trace)
        self.requests = read_light_columns(self.source)
        _, self.endpoint, self.names = _templates(self.requests)
        self.sessions, _ = _sessionized(
            self.source, self.requests, self.endpoint, self.names, timeout_s
        )
        self.parts = _request_parts(self.source, self.requests)

    def payload(self, sample: int, seed: int) -> tuple[list[str], list[np.ndarray], dict[str, int]]:
        groups, chosen, _, files = _payload_sample(
            self.parts, self.endpoint, self.names, sample, seed
        )
        return groups.names, [np.asarray(self.requests.row[c], np.int64) for c in chosen], files

    def correlation(self, per_sample: int, per_endpoint: int, seed: int, requests: int) -> Any:
        sample = _correlation_sample(
            self.parts, self.sessions, per_sample, per_endpoint, seed, requests
        )
        read = _correlation_rows(self.sessions, sample)
        rows = np.asarray(self.requests.row[read["request"].to_numpy()], np.int64)
        return sample, rows, read


@pytest.fixture(scope="module")
def model(trace: Path) -> _Model:
    return _Model(trace)


@pytest.fixture(scope="module", params=[1, 3, 16])
def scanned(
    request: pytest.FixtureRequest, trace: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[KeyPartitions, list[np.ndarray]]]:
    """The trace's key partitions (kept open) and each one's local→global session ids."""
    with scan_key_partitions(
        ParquetSource.open(trace), request.param, tmp_path_factory.mktemp("kp")
    ) as parts:
        made = []
        for p in range(parts.count):
            part = parts.partition(p)
            handout = Handout()
            rows = part.key_partition(parts.first_ts_us)
            made.append(partition_sessions(rows, TIMEOUT_S, {}, None, handout))
            at, local, seq, _ = handout.got
            HANDED[(request.param, p)] = (local, seq, part.row[at], part.endpoint[at])
        merged = merged_sessions(made, TracePauses(math.nan, math.nan, {}))
        yield parts, merged.ids


HANDED: dict[tuple[int, int], tuple[np.ndarray, ...]] = {}
"""What `partition_sessions` handed out of each partition's requests (partitions, p):
local session, place, scan position, endpoint (`correlation_sample`'s `handed`)."""


@pytest.mark.parametrize("sample", [1, 7, 60, 10_000])
@pytest.mark.parametrize("seed", [0, 5])
def test_the_payload_sample_is_the_models(
    model: _Model, scanned: tuple[KeyPartitions, list[np.ndarray]], sample: int, seed: int
) -> None:
    parts, _ = scanned
    names, want, files = model.payload(sample, seed)
    got = payload_sample(parts, model.source.part_rows(), sample, seed)
    assert got.names == names
    assert got.files == files
    for i, rows in enumerate(want):
        np.testing.assert_array_equal(got.rows[i], rows, err_msg=names[i])
    if sample == 10_000:  # (nothing cut: every request, no note)
        assert files == {} and sum(len(r) for r in want) == len(model.requests)
    elif sample < 60:  # (cut)
        assert any(len(r) == sample for r in want) and max(got.counts) > sample


@pytest.mark.parametrize(
    ("per_sample", "per_endpoint", "requests"),
    [(3, 0, 10**6), (5, 2, 10**6), (8, 20, 40), (2, 1, 3), (10_000, 5, 10**6), (10_000, 0, 50)],
)
@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("handed", [False, True], ids=["again", "handed"])
def test_the_correlation_sample_is_the_models(
    model: _Model,
    scanned: tuple[KeyPartitions, list[np.ndarray]],
    per_sample: int,
    per_endpoint: int,
    requests: int,
    seed: int,
    handed: bool,
) -> None:
    """The same rows whether each partition is sessionized again or its sessions' handout
    (`partition_sessions`' `requests`) is given."""
    parts, ids = scanned
    want, rows, read = model.correlation(per_sample, per_endpoint, seed, requests)
    got = correlation_sample(
        parts, ids, model.source.part_rows(), TIMEOUT_S, per_sample=per_sample,
        per_endpoint=per_endpoint, seed=seed, requests=requests,
        handed=(lambda p: HANDED[(parts.count, p)]) if handed else None,
    )  # fmt: skip
    assert not list(parts.directory.glob("samples-*"))  # (its spill removed)
    sample = got.sample
    np.testing.assert_array_equal(sample.chosen, want.chosen)
    np.testing.assert_array_equal(sample.keys, want.keys)
    assert (sample.parts, sample.parts_read) == (want.parts, want.parts_read)
    assert (sample.per_session, sample.sessions_cut) == (want.per_session, want.sessions_cut)
    assert sample.note() == want.note() and sample.whole == want.whole
    np.testing.assert_array_equal(got.row, rows)
    np.testing.assert_array_equal(got.session_id, read["session_id"].to_numpy())
    np.testing.assert_array_equal(got.seq, read["seq"].to_numpy())
    names = np.asarray(parts.names, object)[got.endpoint]
    assert names.tolist() == read["endpoint"].astype(object).tolist()
    if per_sample < 10:  # (what binds is there: some sessions left out)
        assert not want.chosen.all()


def test_a_handout_not_session_by_session_is_refused(
    scanned: tuple[KeyPartitions, list[np.ndarray]],
) -> None:
    """The handout is read as runs of sessions (each starting at place 0, in local id
    order): one whose requests are not (here: one request moved to the end) is refused,
    not read as other sessions."""
    parts, ids = scanned
    p = max(range(parts.count), key=lambda p: len(ids[p]))
    seq = HANDED[(parts.count, p)][1]
    if len(ids[p]) < 2:
        pytest.skip("no partition of two sessions")
    first = int(np.flatnonzero(seq == 1)[0]) - 1  # a session's first request, not its last
    moved = np.r_[np.arange(first), np.arange(first + 1, len(seq)), first]

    def handed(q: int) -> tuple[np.ndarray, ...]:
        given = HANDED[(parts.count, q)]
        return tuple(c[moved] for c in given) if q == p else given

    with pytest.raises(ValueError, match="runs"):
        correlation_sample(
            parts, ids, None, TIMEOUT_S, per_sample=1, per_endpoint=1, seed=0,
            requests=10**6, handed=handed,
        )  # fmt: skip


def test_spilled_positions_out_of_scan_order_are_refused(trace: Path, tmp_path: Path) -> None:
    """Each file's requests in a partition's spill are found as a run of its scan
    positions, which ascend: a spill whose positions do not is refused, not misread."""
    source = ParquetSource.open(trace)
    if not source.part_rows():
        pytest.skip("one file: no file's run is looked for")
    with scan_key_partitions(source, 1, tmp_path) as parts:
        path = parts.directory / ROW_FILE.format(0)
        with pa.memory_map(str(path)) as file:
            table = ipc.open_file(file).read_all()
        table = table.take(pa.array(np.arange(table.num_rows)[::-1]))
        with ipc.new_file(str(path), table.schema) as writer:
            writer.write_table(table)
        with pytest.raises(ValueError, match="ascend"):
            payload_sample(parts, source.part_rows(), 1, 0)


@pytest.mark.parametrize("count", [1, 3, 16])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_samples_of_joined_keys_are_the_models(tmp_path: Path, count: int, seed: int) -> None:
    """A trace with keys whose every request failed auth (the model's pandas sessions, of
    joined keys): partitioned by the joined key, the samples are the model's still."""
    trace = tmp_path / "t"
    _failed_auth_source("parquet", seed, trace)
    model = _Model(trace)
    with scan_key_partitions(
        ParquetSource.open(trace), count, tmp_path, join_failed_auth=True
    ) as parts:
        assert parts.join is not None  # (what is tested is there)
        made = [
            partition_sessions(p.key_partition(parts.first_ts_us), TIMEOUT_S, {})
            for p in parts.partitions(release=False)
        ]
        ids = merged_sessions(made, TracePauses(math.nan, math.nan, {})).ids
        for per_sample, per_endpoint, requests in [(4, 1, 10**6), (3, 0, 30), (10_000, 2, 10**6)]:
            want, rows, read = model.correlation(per_sample, per_endpoint, seed, requests)
            got = correlation_sample(
                parts, ids, model.source.part_rows(), TIMEOUT_S, per_sample=per_sample,
                per_endpoint=per_endpoint, seed=seed, requests=requests,
            )  # fmt: skip
            np.testing.assert_array_equal(got.sample.chosen, want.chosen)
            assert got.sample.parts_read == want.parts_read
            np.testing.assert_array_equal(got.row, rows)
            np.testing.assert_array_equal(got.seq, read["seq"].to_numpy())
        for sample in (5, 10_000):
            names, want_rows, files = model.payload(sample, seed)
            found = payload_sample(parts, model.source.part_rows(), sample, seed)
            assert (found.names, found.files) == (names, files)
            for mine, theirs in zip(found.rows, want_rows, strict=True):
                np.testing.assert_array_equal(mine, theirs)


@pytest.mark.skipif(
    "TRACEREPLAY_REAL_TRACE" not in os.environ,
    reason="set TRACEREPLAY_REAL_TRACE to a trace directory (e.g. /work/data/real1M)",
)
@pytest.mark.parametrize("files_told", [True, False], ids=["by-file", "uniform"])
def test_a_real_trace_at_the_models_defaults(tmp_path: Path, files_told: bool) -> None:
    """A real trace in 16 partitions, the model's default sample sizes (seed 0, timeout
    1800 s): both samples the model's; `uniform`: its files not told (the one-file draws),
    its sessions made again by the correlation sample (by file: their handout given)."""
    model = _Model(Path(os.environ["TRACEREPLAY_REAL_TRACE"]), 1800.0)
    part_rows = model.source.part_rows() if files_told else None
    if not files_told:
        model.parts = None
    handed: dict[int, tuple[np.ndarray, ...]] = {}
    with scan_key_partitions(model.source, 16, tmp_path, join_failed_auth=True) as parts:
        made = []
        for p in range(parts.count):
            part, handout = parts.partition(p), Handout()
            made.append(
                partition_sessions(part.key_partition(parts.first_ts_us), 1800.0, {}, None, handout)
            )
            at, local, seq, _ = handout.got
            if files_told:
                handed[p] = (local, seq, part.row[at], part.endpoint[at])
            del part, handout, at, local, seq
        ids = merged_sessions(made, TracePauses(math.nan, math.nan, {})).ids
        del made
        names, want_rows, files = model.payload(PAYLOAD_SAMPLE_REQUESTS, 0)
        found = payload_sample(parts, part_rows, PAYLOAD_SAMPLE_REQUESTS, 0)
        assert (found.names, found.files) == (names, files)
        for mine, theirs in zip(found.rows, want_rows, strict=True):
            np.testing.assert_array_equal(mine, theirs)
        want, rows, read = model.correlation(
            CORRELATION_SAMPLE_SESSIONS, CORRELATION_SESSIONS_PER_ENDPOINT, 0,
            CORRELATION_SAMPLE_REQUESTS,
        )  # fmt: skip
        got = correlation_sample(
            parts, ids, part_rows, 1800.0, per_sample=CORRELATION_SAMPLE_SESSIONS,
            per_endpoint=CORRELATION_SESSIONS_PER_ENDPOINT, seed=0,
            requests=CORRELATION_SAMPLE_REQUESTS, handed=handed.__getitem__ if handed else None,
        )  # fmt: skip
    np.testing.assert_array_equal(got.sample.chosen, want.chosen)
    assert (got.sample.parts_read, got.sample.note()) == (want.parts_read, want.note())
    np.testing.assert_array_equal(got.row, rows)
    np.testing.assert_array_equal(got.seq, read["seq"].to_numpy())
