"""What a synthesis costs before its first row: the synthesize path (the command in its
process, and a worker's) loads none of the model-building stages' libraries; faker's
weighted picks, summed once, draw the same values; Arrow arrays built from buffers equal
`pa.array`'s."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from faker import Faker

from tests.factories import realistic_records, write_trace
from tracereplay.models import synth_columns
from tracereplay.models.model import build_model, write_model
from tracereplay.models.payloads import BodyModel
from tracereplay.models.synth_arrow import numbers, scalar, strings, validity
from tracereplay.models.synth_columns import POOL_SIZE, _Pool, quick_faker

HEAVY = ("pandas", "scipy", "sklearn", "threadpoolctl", "pyarrow.dataset")

# The command as `tracereplay synthesize` runs it, in this process (one process).
_COMMAND = """
import json, sys
from tracereplay.cli import main
code = main(["synthesize", sys.argv[1], "--out", sys.argv[2], "--scale", "3", "--seed", "4"])
print(json.dumps({"code": code, "loaded": [m for m in sys.argv[3:] if m in sys.modules]}))
"""
# What a worker does (synth_run.py), as a spawned one does it: its job from the model,
# its share of the pools' blocks, the pools from the parent's file, a chunk drawn and written.
_WORKER = """
import json, multiprocessing, sys, tempfile
from pathlib import Path
from tracereplay.models import synth_run
from tracereplay.models.synthesize import plan_of
from tracereplay.trace import TraceMetadata
work = Path(tempfile.mkdtemp())
plan = plan_of(scale=3, duration_s=None, seed=4, arrivals="stratified")
plan = synth_run.Plan(**{**plan.__dict__, "chunk_sessions": 10, "blocks_first_rows": 0})
job = synth_run.Job(json.loads(Path(sys.argv[1]).read_text()), plan)
counter = synth_run.Counter(multiprocessing.get_context("spawn"))
job.put_blocks(job.render_blocks(counter))
pools = Path(sys.argv[2])
job.write_pools(pools)  # the parent's part, here as well
job.read_pools(pools)
rows = job.write(job.chunks[0], work, TraceMetadata(source="synthesize"))
print(json.dumps({"rows": rows, "loaded": [m for m in sys.argv[3:] if m in sys.modules]}))
"""


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("imports")
    model = build_model(write_trace(where / "t", list(realistic_records(400))))
    return write_model(model, where / "t.model.json")


def _run(code: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args, *HEAVY],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_synthesize_command_loads_no_model_building_library(
    model_file: Path, tmp_path: Path
) -> None:
    result = _run(_COMMAND, str(model_file), str(tmp_path / "out"))
    assert result == {"code": 0, "loaded": []}
    assert list((tmp_path / "out").glob("part-*.parquet"))


def test_a_synthesis_worker_loads_none_either(model_file: Path, tmp_path: Path) -> None:
    result = _run(_WORKER, str(model_file), str(tmp_path / "pools.arrow"))
    assert result["rows"] > 10 and result["loaded"] == []


def test_the_summed_weights_draw_what_faker_draws() -> None:
    ours, theirs = quick_faker(), Faker()
    for seed in range(12):
        ours.seed_instance(seed)
        theirs.seed_instance(seed)
        for _ in range(40):
            for method in ("name", "first_name", "last_name", "user_name", "email",
                           "phone_number", "company", "sentence", "word"):  # fmt: skip
                assert getattr(ours, method)() == getattr(theirs, method)(), method
            assert ours.url(schemes=["https"]) == theirs.url(schemes=["https"])
    # Other draws go to faker's own: unweighted, without replacement, of a length it picks.
    weights = OrderedDict([("a", 0.7), ("b", 0.2), ("c", 0.1)])
    ours.seed_instance(3)
    theirs.seed_instance(3)
    for kwargs in ({"unique": True, "length": 2}, {"use_weighting": False, "length": 5}, {}):
        assert ours.random_elements(weights, **kwargs) == theirs.random_elements(weights, **kwargs)


def test_a_pool_renders_the_same_values_with_summed_weights() -> None:
    fields = [{"k": "name", "key": "n", "part": part} for part in ("full", "first", "last", "user")]
    fields += [{"k": kind, "key": kind} for kind in ("email", "phone", "company")]
    fields += [{"k": "url", "key": "u", "scheme": "https"},
               {"k": "text", "key": "t", "min": 20, "max": 60, "style": "words"}]  # fmt: skip
    body = BodyModel("application/json", {"k": "obj", "fields": fields})
    entries = np.arange(0, POOL_SIZE, 7)
    quick = _Pool("POST /c", body, 5, quick_faker()).take(entries)
    assert quick.equals(_Pool("POST /c", body, 5, Faker()).take(entries))
    assert len(set(quick.to_pylist())) == len(entries)


def test_a_pool_with_a_wrong_sum_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above can tell: picks off by one element change the values."""
    real = synth_columns._WeightedPicks.__call__

    def shifted(self: Any, elements: Any = (), length: int | None = None, **kw: Any) -> Any:
        picked = real(self, elements, length, **kw)
        if isinstance(elements, OrderedDict) and length is not None:
            keys = list(elements)
            return [keys[(keys.index(p) + 1) % len(keys)] for p in picked]
        return picked

    monkeypatch.setattr(synth_columns._WeightedPicks, "__call__", shifted)
    body = BodyModel("application/json", {"k": "obj", "fields": [{"k": "email", "key": "e"}]})
    entries = np.arange(64)
    wrong = _Pool("POST /c", body, 5, quick_faker()).take(entries)
    assert not wrong.equals(_Pool("POST /c", body, 5, Faker()).take(entries))


@pytest.mark.parametrize(
    ("values", "type_"),
    [
        (np.array([3, -1, 7], dtype=np.int64), None),
        (np.array([0, 2], dtype=np.int32), None),
        (np.array([1.5, 2.0]), None),
        (np.arange(0, 3 * 10**6, 10**6, dtype=np.int64), pa.timestamp("us", tz="UTC")),
        (np.zeros(0, dtype=np.int64), None),
    ],
)
def test_numbers_equal_pa_array(values: np.ndarray, type_: pa.DataType | None) -> None:
    expected = pa.array(values).cast(type_) if type_ is not None else pa.array(values)
    assert numbers(values, type_).equals(expected)
    assert numbers(values[::-1], type_).equals(expected[::-1] if len(values) else expected)
    valid = np.arange(len(values)) % 2 == 0
    assert numbers(values, type_, valid).equals(
        pa.array(values, mask=~valid).cast(type_) if type_ else pa.array(values, mask=~valid)
    )


def test_strings_and_validity_equal_pa_array() -> None:
    texts = ["", "a", None, "é€", "x" * 300]
    assert strings(texts).equals(pa.array(texts, pa.string()))
    blobs = [b"", None, b"\x00\xff", b"body"]
    assert strings(blobs, pa.binary()).equals(pa.array(blobs, pa.binary()))
    assert strings([]).equals(pa.array([], pa.string()))
    array = pa.array(texts, pa.string())
    assert validity(array).tolist() == [True, True, False, True, True]
    assert validity(array.slice(2, 3)).tolist() == [False, True, True]
    assert validity(pa.array([1, 2])).tolist() == [True, True]
    assert scalar("synth:").equals(pa.scalar("synth:"))


def test_pools_rendered_part_way_give_the_values_of_whole_blocks() -> None:
    """Entries asked in pieces, two pools sharing one faker in turn: each block comes out
    as rendering it whole from its seed gives (the generators' states kept between)."""
    body = BodyModel("application/json", {"k": "obj", "fields": [
        {"k": "email", "key": "e"}, {"k": "int", "key": "n", "min": 0, "max": 10**6}]})  # fmt: skip
    fake = quick_faker()
    pools = [_Pool("POST /a", body, 9, fake), _Pool("POST /b", body, 9, fake)]
    rng = np.random.default_rng(2)
    for _ in range(30):
        for pool in pools:
            pool.take(rng.integers(0, POOL_SIZE, 5))
    assert any(0 < c < 64 for pool in pools for c in pool.count.tolist())  # some part way
    for pool in pools:
        whole = _Pool(pool.name, body, 9, quick_faker()).whole()
        assert pool.whole().equals(whole)
    assert not pools[0].whole().equals(pools[1].whole())


def test_a_few_sessions_render_a_few_entries() -> None:
    body = BodyModel("application/json", {"k": "obj", "fields": [{"k": "email", "key": "e"}]})
    pool = _Pool("POST /a", body, 1, quick_faker())
    pool.take(np.array([3, 70, 5]))
    assert pool.count[:2].tolist() == [6, 7] and not pool.count[2:].any()  # 0-5, 64-70
    with pytest.raises(IndexError):
        pool.take(np.array([POOL_SIZE]))
