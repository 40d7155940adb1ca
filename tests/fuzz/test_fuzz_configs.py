"""Fuzz: --credentials CSV (text and bytes), SLO and anonymization-policy TOML, and the
sandbox target's settings TOML, through their one loader each: a value or a TraceReplayError
(one line), never another exception; a credentials error never quotes a cell."""

from __future__ import annotations

import csv
import io
import string
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.harness import EDITS, FUZZ, fuzz_damaged, mutate, scratch
from tracereplay.capture.anonymize.policy import load_policy
from tracereplay.compare.slo import load_slos
from tracereplay.demo.target.settings import load_settings
from tracereplay.errors import TraceReplayError
from tracereplay.replay.credentials import load_credentials

CELL_CHARS = st.sampled_from([",", '"', "\n", "\r", "\x00", "\t", " ", "\ufeff", "é", "\x7f"])
PASSWORDS = st.text(string.ascii_letters + string.digits + "!#$%&*+-.@_", min_size=8, max_size=16)
CELLS = PASSWORDS | st.lists(CELL_CHARS | st.characters(codec="utf-8"), max_size=14).map("".join)
HEADERS = st.sampled_from(["email,password", "email,password,role", "EMAIL , Password",
                           "password,email,role,note", "mail,pass", "", None])  # fmt: skip


def _secret_cells(text: str) -> list[str]:
    """The cells of `text` that a message must not quote (long enough to be a secret)."""
    try:
        rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    except csv.Error:
        return []
    names = {"email", "password", "role", "mail", "pass", "note"}
    return [
        c for row in rows for c in row if len(c.strip()) >= 6 and c.strip().lower() not in names
    ]


def test_credentials_files(tmp_path: Path) -> None:
    ran: list[int] = []

    @settings(FUZZ, max_examples=150)
    @given(HEADERS, st.lists(st.lists(CELLS, max_size=4), max_size=4), st.booleans())
    def check(header: str | None, rows: list[list[str]], as_bytes: bool) -> None:
        ran.append(1)
        body = "\n".join(",".join(row) for row in rows)
        text = body if header is None else header + "\n" + body  # None: the header forgotten
        with scratch(tmp_path) as work:
            path = work / "accounts.csv"
            if as_bytes:  # not UTF-8: a spreadsheet's Latin-1 export
                path.write_bytes(text.encode("latin-1", errors="replace") + b"\xe9\xff")
            else:
                path.write_text(text, encoding="utf-8", errors="surrogatepass")
            try:
                accounts = load_credentials(path)
            except TraceReplayError as exc:
                message = str(exc).replace(str(path), "")
                assert "\n" not in message
                for cell in _secret_cells(text):
                    quoted = repr(cell.strip())[1:-1]  # as a list or repr() would show it
                    assert cell.strip() not in message and quoted not in message, (cell, message)
                return
            assert accounts and all(a.email and a.password for a in accounts)

    check()
    assert len(ran) >= 150


@pytest.mark.parametrize(
    ("name", "loader", "package", "default"),
    [("slo", load_slos, "tracereplay.compare", "default_slo.toml"),
     ("policy", load_policy, "tracereplay.capture.anonymize", "default_policy.toml")],
)  # fmt: skip
def test_toml_files(name: str, loader: object, package: str, default: str, tmp_path: Path) -> None:
    base = resources.files(package).joinpath(default).read_bytes()
    ran: list[int] = []

    @settings(FUZZ, max_examples=120)
    @given(EDITS | st.just([]), st.sampled_from(["", "\n[x]\n", "\nk = " + "[" * 3000,
                                                "\nversion = 2\n", "\n\udcff = 1\n"]))  # fmt: skip
    def check(edits: list[tuple[int, int, int]], tail: str) -> None:
        ran.append(1)
        with scratch(tmp_path) as work:
            path = work / f"{name}.toml"
            path.write_bytes(mutate(base, edits) + tail.encode("utf-8", "surrogateescape"))
            try:
                loader(path)  # type: ignore[operator]
            except TraceReplayError as exc:
                assert "\n" not in str(exc)

    check()
    assert len(ran) >= 120


def test_target_settings_files(tmp_path: Path) -> None:
    base = b'[target]\nport = 8001\nseed = 3\nservice_time_scale = 0.5\nhost = "127.0.0.1"\n'

    def load(file: Path, _work: Path) -> None:
        try:
            load_settings(file, flags={})
        except TraceReplayError as exc:
            assert "\n" not in str(exc)

    fuzz_damaged(base, "target.toml", tmp_path, load, examples=100)
