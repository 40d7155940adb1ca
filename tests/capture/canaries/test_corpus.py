"""The canary corpus through every way in: 0 raw canaries stored; scan finds planted ones.

Live capture (the capture proxy in front of a canned target), HAR import and mitmdump
import all go through the same anonymizer; each must store no canary in any byte of its
files or any decoded cell. Planted raw into a trace (bypassing the capture), scan's own
checks must flag at least 95 % of them, and all of them given `--canaries`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.capture.canaries.corpus import Case, build_corpus
from tests.capture.canaries.drive import (
    canned_target,
    exchange,
    leaked,
    send_live,
    tally,
    write_corpus_dump,
    write_corpus_har,
)
from tests.capture.har_factory import plain_record
from tests.capture.proxies import capture_proxy, stop
from tests.factories import write_trace
from tracereplay.capture.anonymize.policy import load_policy
from tracereplay.capture.anonymize.record import Anonymizer
from tracereplay.capture.importers.run import import_files
from tracereplay.capture.scan import SCANNED_COLUMNS, cell_findings
from tracereplay.capture.scan_checks import Checker
from tracereplay.trace import TraceMetadata, open_writer

KEY = b"canary-corpus-test-key"
CASES = build_corpus()
SCAN_GOAL = 0.95


def describe(cases: Sequence[Case], missed: Sequence[Case]) -> str:
    rows = [f"{p}: {f} found, {m} missed" for p, (f, m) in tally(cases, missed).items() if m]
    return "\n".join(rows)


def test_the_corpus_is_big_and_varied() -> None:
    assert len(CASES) >= 150
    assert len({c.place for c in CASES}) >= 50
    assert len({c.canary for c in CASES}) == len(CASES)  # every canary is its own


def test_the_check_finds_a_raw_canary(tmp_path: Path) -> None:
    """The leak check itself: a trace written without anonymization leaks every case."""
    trace = write_trace(tmp_path / "raw", [plain_record(exchange(c)) for c in CASES])
    assert len(leaked(CASES, trace)) == len(CASES)


def test_anonymizer_stores_no_canary(tmp_path: Path) -> None:
    anonymizer = Anonymizer(load_policy(), KEY)
    writer = open_writer(tmp_path / "t", TraceMetadata(source="test"))
    for case in CASES:
        writer.write(anonymizer.record(exchange(case)))
    writer.close()
    missed = leaked(CASES, tmp_path / "t")
    assert missed == [], describe(CASES, missed)


@pytest.mark.parametrize("kind", ["har", "mitm"])
def test_imports_store_no_canary(tmp_path: Path, kind: str) -> None:
    source = tmp_path / f"corpus.{kind}"
    (write_corpus_har if kind == "har" else write_corpus_dump)(source, CASES)
    out = tmp_path / "trace"
    result = import_files(
        [source], out, to_record=Anonymizer(load_policy(), KEY).record, policy_hash="x"
    )
    assert result.rows == len(CASES)
    missed = leaked(CASES, out)
    assert missed == [], describe(CASES, missed)


@pytest.mark.timeout(180)
def test_live_capture_stores_no_canary(tmp_path: Path) -> None:
    out = tmp_path / "trace"
    with canned_target(CASES) as (url, seen), capture_proxy(url, out) as proxy:
        send_live(proxy.url, CASES)
        assert stop(proxy) == 0
    assert seen == {c.index for c in CASES}  # every case reached the target
    missed = leaked(CASES, out)
    assert missed == [], describe(CASES, missed)


def scan_missed(cases: Sequence[Case]) -> list[Case]:
    """Cases whose raw canary, planted in a row, no check of scan points at."""
    checker = Checker(own_hosts=frozenset({"api.canary.test"}))
    missed = []
    for case in cases:
        record = plain_record(exchange(case))
        found = [
            value
            for column in SCANNED_COLUMNS
            if (cell := getattr(record, column)) not in (None, ())
            for _, value in cell_findings(checker, column, cell)
        ]
        if not any(case.canary in v or (len(v) >= 4 and v in case.canary) for v in found):
            missed.append(case)
    return missed


def test_scan_flags_planted_canaries() -> None:
    missed = scan_missed(CASES)
    share = 1 - len(missed) / len(CASES)
    assert share >= SCAN_GOAL, f"{share:.1%}\n" + describe(CASES, missed)


def test_scan_flags_every_listed_canary(tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "raw", [plain_record(exchange(c)) for c in CASES])
    listed = tmp_path / "canaries.txt"
    listed.write_text("\n".join(c.canary for c in CASES if "\n" not in c.canary))
    done = subprocess.run(
        [sys.executable, "-m", "tracereplay.cli", "scan", str(trace), "--canaries", str(listed)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "canary" in done.stdout
