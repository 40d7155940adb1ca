"""The endpoints' statistics from pieces of rows (models/partition_endpoints.py) are
`endpoint_codes.endpoint_stats` of the whole trace, to the bit (the same JSON): fed the
key partitions (P = 1, 3, 16) with the scan's per-batch hook for the parameter kinds, or
the model's rows in batches of odd sizes."""

from __future__ import annotations

import json
import string
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from faker import Faker

from tests.factories import T0, make_record, make_table
from tests.models.test_key_partitions import LIGHT_SCHEMA, TableSource
from tracereplay.models import key_partitions, partition_endpoints
from tracereplay.models.endpoint_codes import EndpointCodes, endpoint_stats
from tracereplay.models.key_partitions import KeyPartitions, scan_key_partitions
from tracereplay.models.light_columns import RequestColumns, read_light_columns
from tracereplay.models.params import param_kind
from tracereplay.models.partition_endpoints import (
    EndpointTally,
    ParamFacts,
    partition_endpoint_stats,
)
from tracereplay.models.skeleton_cells import Segments
from tracereplay.models.source import ParquetSource
from tracereplay.models.templating import request_endpoints

ROWS = 700


def _rows(seed: int, n: int, nulls: bool, negative: bool) -> list[dict[str, Any]]:
    """`n` requests whose paths carry ids: uuids, numbers of 1-6 digits, faker slugs (some
    not ASCII: templated by cardinality), hex digests of various lengths, a parameter of
    mixed kinds (ints and uuids), one of ints and hex (hex), query strings; statuses with
    errors and unknowns, durations unknown, tied, zero (with `negative`, some below zero);
    the first rows endpoints of one request each; with `nulls`, null paths and methods."""
    rng = np.random.default_rng(seed)
    fake = Faker()
    fake.seed_instance(seed)
    slugs = [fake.slug() for _ in range(30)] + ["café-au-lait", "Zeta", "ünï-côdé", "a%20b"]
    ids = [str(uuid.UUID(int=int(rng.integers(1 << 62)), version=4)) for _ in range(25)]

    def pick(values: list[str]) -> str:
        return values[int(rng.integers(len(values)))]

    paths = [
        lambda: f"/api/v1/clients/{pick(ids)}",
        lambda: f"/api/v1/clients/{pick(ids)}?expand={rng.integers(3)}",
        lambda: f"/api/v1/orders/{rng.integers(10 ** int(rng.integers(1, 7)))}/items",
        lambda: f"/blog/{pick(slugs)}",
        lambda: f"/files/{''.join(rng.choice(list('0123456789abcdef'), rng.integers(16, 41)))}",
        lambda: f"/mixed/{pick([str(rng.integers(10**9)), pick(ids)])}",
        lambda: f"/tokens/{pick([str(rng.integers(10**7, 10**9)), 'abcdef12', 'ABCDEF1234'])}",
        lambda: f"/api/v1/orders/{rng.integers(100)}/items?page={rng.integers(3)}#top",
        lambda: "/api/v1/metrics/overview",
        lambda: None if nulls else "/",
    ]
    methods = ["GET", "get", "POST", None if nulls else "PUT", "Delete"]
    durations = [None, 1.5, 0.0, None]
    out = []
    for _ in range(n):
        duration = durations[int(rng.integers(len(durations)))]
        if duration == 1.5:
            duration = float(rng.random() * 100)
        if negative and duration is not None and rng.random() < 0.2:
            duration = -duration - 0.25
        out.append(
            {
                "ts": T0 + timedelta(seconds=int(rng.integers(0, n // 4))),
                "session": f"s{int(rng.integers(40))}" if rng.random() < 0.8 else None,
                "client": f"10.0.0.{int(rng.integers(9))}",
                "method": methods[int(rng.integers(len(methods)))],
                "path": paths[int(rng.integers(len(paths)))](),
                "status": [200, 201, 404, 500, 503, None][int(rng.integers(6))],
                "duration_ms": duration,
            }
        )
    # Endpoints of one request each (one with a parameter, one without).
    out[0] |= {"method": "DELETE", "path": f"/api/v1/clients/{ids[0]}", "status": 500}
    out[1] |= {"method": "GET", "path": "/once/only", "duration_ms": None, "status": None}
    return out


@pytest.fixture(scope="module", params=["parquet", "nulls", "negative"])
def source(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A Parquet trace of three files in row groups of various sizes, a source whose paths
    and methods have nulls, or one with negative durations (the model's grouped way)."""
    if request.param != "parquet":
        rows = _rows(3, ROWS, nulls=request.param == "nulls", negative=request.param == "negative")
        return TableSource(pa.Table.from_pylist(rows, schema=LIGHT_SCHEMA), batch_rows=61)
    directory = tmp_path_factory.mktemp("pe") / "t"
    directory.mkdir()
    for f, size in enumerate([ROWS, 97, 64]):
        rows = _rows(11 + f, ROWS, nulls=False, negative=False)
        pq.write_table(
            make_table([make_record(**r) for r in rows]), directory / f"p{f}.parquet", size
        )
    return ParquetSource.open(directory)


@pytest.fixture(scope="module")
def model(source: Any) -> tuple[RequestColumns, np.ndarray, list[str], str]:
    """What the model reads, its endpoints, and its statistics as JSON."""
    requests = read_light_columns(source)
    _, endpoint, names = request_endpoints(
        requests.methods, requests.method, requests.paths, requests.path
    )
    want = endpoint_stats(requests, EndpointCodes.of(endpoint, names))
    return requests, endpoint, names, json.dumps(want)


def scan_with_facts(source: Any, count: int, parent: Path) -> tuple[KeyPartitions, ParamFacts]:
    """The scan with its parameter kinds' hook: each batch's cells and paths to `facts`."""
    facts = ParamFacts()
    return scan_key_partitions(source, count, parent, params=facts), facts


@pytest.mark.parametrize("count", [1, 3, 16])
def test_the_partitions_give_the_models_endpoint_stats(
    source: Any, model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    monkeypatch.setattr(key_partitions, "SCAN_BATCH_ROWS", 37)  # several batches a group
    parts, facts = scan_with_facts(source, count, tmp_path)
    with parts:
        assert parts.names == model[2]
        got = partition_endpoint_stats(parts, facts, tmp_path)
    assert json.dumps(got) == model[3]
    assert not list(tmp_path.iterdir())  # both spills removed


def _pieces(n: int, sizes: list[int]) -> Iterator[slice]:
    start, i = 0, 0
    while start < n:
        yield slice(start, start + sizes[i % len(sizes)])
        start += sizes[i % len(sizes)]
        i += 1


@pytest.mark.parametrize(("sizes", "status_cells"), [([1], 1), ([7, 3, 101], None), ([33], 1),
                                                    ([10**6], None)])  # fmt: skip
def test_batches_of_any_size_give_the_models_endpoint_stats(
    model: Any, tmp_path: Path, sizes: list[int], status_cells: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The model's rows (in its time order) in pieces, each known by its endpoint; the
    statuses counted in a table or (`status_cells` 1) through a sort."""
    if status_cells is not None:
        monkeypatch.setattr(partition_endpoints, "_STATUS_CELLS", status_cells)
    requests, endpoint, names, want = model
    rank = np.empty(len(names), np.int64)  # (pieces in reverse: the order does not matter)
    rank[np.argsort(names)] = np.arange(len(names))
    facts = ParamFacts()
    with EndpointTally(len(names), tmp_path) as tally:
        for piece in reversed(list(_pieces(len(requests), sizes))):
            tally.add(endpoint[piece], requests.duration_ms[piece], requests.status[piece])
            facts.add_batch(endpoint[piece], requests.paths, requests.path[piece])
        got = tally.stats(names, facts.endpoint_kinds(names))
    assert json.dumps(got) == want


WORDS = [
    "7", "0042", "123456789", "abcdef12", "ABCDEF1234567890", "deadbeef-x", "zz", "Zeta", "ä",
    "ünï", "12345678-1234-1234-1234-123456789abc", "12345678-1234-1234-1234-123456789ABC",
    "", "a b", "x" * 30,
]  # fmt: skip


@pytest.mark.parametrize("seed", range(40))
def test_facts_merged_by_pieces_are_param_kind_of_all_values(seed: int) -> None:
    """`param_kind` of a parameter's values from facts merged piece by piece, in any
    order, duplicates included: uuids, ints, hex, other (more than MAX_EXAMPLES values)."""
    rng = np.random.default_rng(seed)
    pool = [WORDS[i] for i in rng.choice(len(WORDS), int(rng.integers(1, 6)), replace=False)]
    if seed % 4 == 0:  # one kind only, of many values
        maker = [
            lambda: str(uuid.UUID(int=int(rng.integers(1 << 62)))),
            lambda: str(rng.integers(10 ** int(rng.integers(1, 9)))),
            lambda: "".join(rng.choice(list("0123456789abcdef"), rng.integers(8, 20))),
        ]
        pool = [maker[seed // 4 % 3]() for _ in range(30)]  # fmt: skip
    elif seed % 4 == 1:  # words: more distinct values than examples
        pool += ["".join(rng.choice(list(string.ascii_letters), 3)) for _ in range(20)]
    values = [pool[i] for i in rng.integers(0, len(pool), 60)]
    facts = ParamFacts()
    cuts = np.sort(rng.integers(0, len(values), 4))
    for piece in np.split(np.arange(len(values)), cuts)[::-1]:
        texts = pa.array([f"/p/{values[i]}" for i in piece.tolist()], pa.string())
        facts.add_batch(np.zeros(len(piece), np.int64), texts, np.arange(len(piece)))
    assert facts.kinds("/p/{p}", [0]) == {"p": param_kind(values)}


def test_a_literal_segment_in_braces_and_a_path_of_no_parameter(tmp_path: Path) -> None:
    """Labels read as `taken_param_kinds` reads them; an endpoint without parameters and a
    null path (read as "/")."""
    facts = ParamFacts()
    paths = pa.array(["/a/{b}/7", "/a/{b}/8", "/c", None], pa.string())
    facts.add_batch(np.array([0, 0, 1, 2]), paths, np.array([0, 1, 2, 3]))
    names = ["GET /a/{b}/{a_id}", "GET /c", "GET /"]
    kinds = facts.endpoint_kinds(names)
    assert kinds == [{"a_id": {"kind": "int", "digits": [1, 1]}, "b": {"kind": "other",
                      "examples": ["{b}"]}}, {}, {}]  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_facts_from_the_skeletons_split_are_the_facts_of_the_paths(seed: int) -> None:
    """`add_batch` given the paths already split (`SkeletonCells.add_pairs`' segments) finds
    what it finds splitting them itself; a split of other paths is refused."""
    rng = np.random.default_rng(seed)
    words = [*WORDS, "?q=1", "a#frag", "%41b"]
    paths = pa.array(
        [None, "", "/", *("/" + "/".join(rng.choice(words, int(rng.integers(1, 4))))
                          for _ in range(40))], pa.string())  # fmt: skip
    path = rng.integers(0, len(paths) + 1, 200)
    group = rng.integers(0, 5, 200)
    used = np.unique(path)
    texts = pa.concat_arrays([paths, pa.nulls(1, pa.string())]).take(pa.array(used))
    own, given = ParamFacts(), ParamFacts()
    own.add_batch(group, paths, path)
    given.add_batch(group, paths, path, Segments.of(texts.fill_null("/")))
    assert {k: vars(v) for k, v in given.facts.items()} == {
        k: vars(v) for k, v in own.facts.items()
    }
    with pytest.raises(ValueError, match="split paths"):
        given.add_batch(group, paths, path, Segments.of(texts.fill_null("/").slice(1)))


@pytest.mark.parametrize("size", [1, 100, 1 << 16, 1 << 22, 1 << 40])
def test_distinct_codes_are_np_unique_by_table_or_sort(size: int) -> None:
    codes = np.random.default_rng(size).integers(0, size, 3000)
    assert np.array_equal(partition_endpoints._distinct_codes(codes, size), np.unique(codes))
