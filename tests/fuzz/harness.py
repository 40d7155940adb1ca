"""What every fuzz test asserts about one malformed input run through the CLI: it ends with
an allowed exit code, never a traceback (no exception escapes `main`), a failure is one error
line (the last), and a failed command leaves nothing half-written in its --out."""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracereplay.cli import main

ERROR_PREFIX = "tracereplay: error: "

# Seeded (derandomize) and without an example database, so CI reruns start from the same
# seed; hypothesis still adapts to timing, so the examples can differ between runs.
FUZZ = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def run_cli(argv: Sequence[str]) -> tuple[int, str]:
    """(exit code, stderr) of `tracereplay argv`, in this process."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, err.getvalue()


def assert_clean(
    argv: Sequence[str], *, out: Path | None = None, allowed: Sequence[int] = (0, 2)
) -> int:
    """Run `argv` and check the outcome (see the module doc); the exit code."""
    code, err = run_cli(argv)
    assert code in allowed, (code, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    if code == 2:
        lines = err.strip().splitlines()
        errors = [line for line in lines if line.startswith(ERROR_PREFIX)]
        assert errors == lines[-1:], err[-2000:]
    if code != 0 and out is not None:
        assert not out.exists() or not any(out.iterdir()), f"{out} left behind after exit {code}"
    return code


@contextmanager
def scratch(base: Path) -> Iterator[Path]:
    """A fresh directory for one example, removed after it."""
    path = Path(tempfile.mkdtemp(dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """`data` with each edit applied: (0, i, v) flips byte i with v, (1, i, _) cuts the
    file at i, (2, i, v) inserts byte v at i, (3, i, n) deletes n bytes at i."""
    buf = bytearray(data)
    for kind, where, value in edits:
        if not buf:
            break
        i = where % len(buf)
        if kind == 0:
            buf[i] ^= value or 1
        elif kind == 1:
            del buf[i:]
        elif kind == 2:
            buf.insert(i, value)
        else:
            del buf[i : i + value]
    return bytes(buf)


EDITS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 2**31), st.integers(0, 255)),
    min_size=1, max_size=6,
)  # fmt: skip
"""Edits for `mutate`: a few flips, cuts, insertions and deletions anywhere."""


def fuzz_damaged(
    data: bytes, name: str, base: Path, use: Callable[[Path, Path], None], examples: int = 60
) -> None:
    """Write `data`, damaged by random `EDITS`, as `name` in a scratch directory and call
    `use(file, directory)`, `examples` times; fails unless that many ran."""
    ran: list[int] = []

    @settings(FUZZ, max_examples=examples)
    @given(EDITS)
    def check(edits: list[tuple[int, int, int]]) -> None:
        ran.append(1)
        with scratch(base) as work:
            path = work / name
            path.write_bytes(mutate(data, edits))
            use(path, work)

    check()
    assert len(ran) >= examples, len(ran)
