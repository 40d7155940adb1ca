"""The reported bad inputs of model, synthesize, compare and info: each is one line on stderr,
exit 2, no traceback, and no half-written --out (a damaged Parquet page, a capture_start that
is not a date, out-of-range options, a model that cannot be drawn from)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.bad_input import BAD_MODELS, assert_exit_2, bad_model
from tests.factories import T0, make_record, make_table, write_trace
from tracereplay.models.model import build_model, write_model
from tracereplay.trace.schema import META_CAPTURE_START


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [
        make_record(ts=T0 + timedelta(seconds=i), session=f"s{i % 6}",
                    path=f"/api/items/{i % 4}", query=f"page={i % 3}")
        for i in range(60)
    ]  # fmt: skip
    return write_trace(tmp_path_factory.mktemp("bad") / "trace", rows)


@pytest.fixture(scope="module")
def model(trace: Path) -> Path:
    return write_model(build_model(trace), trace.parent / "m.model.json")


def damaged_copy(trace: Path, where: Path, column: str) -> Path:
    """A copy of `trace` whose `column` data page has bytes flipped in the middle."""
    copy_dir = where / f"damaged-{column}"
    shutil.copytree(trace, copy_dir)
    part = sorted(copy_dir.glob("*.parquet"))[0]
    meta = pq.ParquetFile(part).metadata.row_group(0)
    chunk = next(meta.column(i) for i in range(meta.num_columns)
                 if meta.column(i).path_in_schema == column)  # fmt: skip
    data = bytearray(part.read_bytes())
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    middle = start + chunk.total_compressed_size // 2
    for i in range(middle, middle + 8):
        data[i] ^= 0xFF
    part.write_bytes(bytes(data))
    return copy_dir


@pytest.mark.parametrize("column", ["session", "path", "method", "duration_ms"])
def test_a_damaged_page_is_one_line_in_every_reader(
    column: str, trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = damaged_copy(trace, tmp_path, column)
    says = "a trace file is damaged and cannot be read"
    if column == "session":  # info reads ts, session and error only
        assert_exit_2(["info", str(bad)], capsys, says=says)
    out = tmp_path / "m.json"
    assert_exit_2(["model", str(bad), "--out", str(out)], capsys, says=says, out=out)
    cmp_out = tmp_path / "cmp"
    assert_exit_2(["compare", str(trace), str(bad), "--out", str(cmp_out)], capsys, says=says,
                  out=cmp_out)  # fmt: skip


def test_a_page_checksum_catches_flips_that_still_decompress(
    trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Flipped bits in a timestamp page decode without error (they are just other numbers);
    with a page CRC written, the reader verifies it and refuses the file."""
    table = pq.read_table(sorted(trace.glob("*.parquet"))[0])
    crc = tmp_path / "crc"
    crc.mkdir()
    pq.write_table(table, crc / "part-000001.parquet", compression="zstd",
                   write_page_checksum=True)  # fmt: skip
    bad = damaged_copy(crc, tmp_path, "ts")
    assert_exit_2(["info", str(bad)], capsys, says="CRC checksum verification failed")


def test_capture_start_that_is_not_a_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = make_table([make_record()])
    meta = dict(table.schema.metadata)
    meta[META_CAPTURE_START.encode()] = b"the day before yesterday"
    (tmp_path / "t").mkdir()
    pq.write_table(table.replace_schema_metadata(meta), tmp_path / "t" / "part-000001.parquet")
    for argv in (["info"], ["model"], ["scan"]):
        assert_exit_2([*argv, str(tmp_path / "t")], capsys, says="unreadable tracereplay metadata")


OPTION_CASES = {
    "synthesize --scale 1e9": (["synthesize", "{model}", "--scale", "1e9"], "at most 10,000,000"),
    "synthesize --seed -1": (["synthesize", "{model}", "--seed", "-1"], "--seed must be in"),
    "synthesize --scale nan": (["synthesize", "{model}", "--scale", "nan"], "finite number > 0"),
    "synthesize --arrivals x": (["synthesize", "{model}", "--arrivals", "x"], "choose one of"),
    "synthesize --duration 0": (["synthesize", "{model}", "--duration", "0"], "finite time > 0"),
    "compare --session-timeout 0s": (
        ["compare", "{trace}", "{trace}", "--session-timeout", "0s"],
        "--session-timeout must be > 0",
    ),
    "compare --scale nan": (["compare", "{trace}", "{trace}", "--scale", "nan"], "finite number"),
    "model --session-timeout 0": (
        ["model", "{trace}", "--session-timeout", "0"],
        "--session-timeout must be > 0",
    ),
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_a_bad_option_is_one_line(
    case: str, trace: Path, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, says = OPTION_CASES[case]
    out = tmp_path / "out"
    filled = [a.format(model=model, trace=trace) for a in argv]
    assert_exit_2([*filled, "--out", str(out)], capsys, says=says, out=out)
    assert not out.exists()


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_synthesize_from_a_bad_model_leaves_no_out(
    case: str, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bad_model(json.loads(model.read_text()), case)))
    out = tmp_path / "synth"
    message = assert_exit_2(["synthesize", str(bad), "--out", str(out)], capsys, out=out)
    assert str(bad) in message and not out.exists()


def test_no_traceback_from_the_console_script(tmp_path: Path, trace: Path) -> None:
    bad = damaged_copy(trace, tmp_path, "path")
    done = subprocess.run(
        [sys.executable, "-m", "tracereplay.cli", "model", str(bad), "--out",
         str(tmp_path / "m.json")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("tracereplay: error: ")


def test_scan_on_a_damaged_page_is_one_line(
    trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = damaged_copy(trace, tmp_path, "path")
    assert_exit_2(["scan", str(bad)], capsys, says="a trace file is damaged")
