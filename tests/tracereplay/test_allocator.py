"""The allocator setting (tracereplay/allocator.py): applied by `tracereplay model`,
effective (a big array comes from the heap, not a mapping of its own, and numpy asks for
no huge pages), a no-op where the C library is not glibc, and the models byte for byte
the same.

Each case that applies it runs in its own interpreter: the setting is for the whole
process, and the test runner's own should stay as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.factories import realistic_records, write_trace
from tracereplay import allocator, cli

glibc = pytest.mark.skipif(allocator._glibc() is None, reason="glibc's malloc only")

# mallinfo2 (glibc ≥ 2.33): hblkhd is what is mapped in blocks of their own, arena the heap:
# what a 64 MiB array adds to each.
MAPPED_BYTES = """
import ctypes, sys
import numpy as np
from tracereplay.allocator import reuse_freed_memory

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
applied = reuse_freed_memory() if sys.argv[1] == "on" else None
before = libc.mallinfo2()
big = np.ones(64 << 20, dtype=np.uint8)
after = libc.mallinfo2()
hugepages = np._core.multiarray._set_madvise_hugepage(True)  # returns the setting it had
print(applied, after.hblkhd - before.hblkhd, after.arena - before.arena, hugepages)
"""
ENTRY = """
import sys
import tracereplay.allocator as allocator
if sys.argv[1] == "off":
    allocator.reuse_freed_memory = lambda: False
from tracereplay.cli import console
sys.argv[1:2] = []
sys.exit(console())
"""


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-c", code, *args],
        capture_output=True, text=True, timeout=300, check=False, env=dict(os.environ),
    )  # fmt: skip


@glibc
def test_a_big_array_comes_from_the_heap_once_applied() -> None:
    off = _python(MAPPED_BYTES, "off")
    on = _python(MAPPED_BYTES, "on")
    assert off.returncode == 0 and on.returncode == 0, off.stderr + on.stderr
    _, off_mapped, _, off_hugepages = off.stdout.split()
    applied, on_mapped, on_heap, on_hugepages = on.stdout.split()
    assert int(off_mapped) >= 64 << 20  # glibc's default: a mapping of its own
    assert applied == "True"
    assert int(on_mapped) == 0 and int(on_heap) > 32 << 20  # (less what was free already)
    assert (off_hugepages, on_hugepages) == ("True", "False")


def test_nothing_is_changed_where_the_c_library_is_not_glibc(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    called: list[str] = []
    musl_like = SimpleNamespace(mallopt=lambda *a: called.append("mallopt") or 1)
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: musl_like)
    assert allocator.reuse_freed_memory() is False
    assert called == []

    def no_handle(name: object) -> object:
        raise OSError("no such library")

    monkeypatch.setattr(allocator.ctypes, "CDLL", no_handle)
    assert allocator.reuse_freed_memory() is False


@glibc
def test_a_refused_value_says_not_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    refusing = SimpleNamespace(gnu_get_libc_version=object(), mallopt=lambda *a: 0)
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: refusing)
    assert allocator.reuse_freed_memory() is False


@pytest.mark.parametrize(
    ("argv", "applied"),
    [(["model", "x"], True), (["synthesize", "x"], False), (["compare", "x"], False),
     (["info", "x"], False), (["--help"], False), ([], False)],
)  # fmt: skip
def test_the_commands_that_apply_it(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], applied: bool
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(cli, "reuse_freed_memory", lambda: calls.append("applied") or True)
    monkeypatch.setattr(cli, "main", lambda: 2)
    monkeypatch.setattr(cli, "end_now", lambda code, inherited: None)
    monkeypatch.setattr(sys, "argv", ["tracereplay", *argv])
    assert cli.console() == 2
    assert calls == (["applied"] if applied else [])


@glibc
def test_the_model_is_byte_for_byte_the_same(tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "trace", list(realistic_records(3000)))
    models = {}
    for side in ("off", "on"):
        out = tmp_path / f"{side}.json"
        done = _python(ENTRY, side, "model", str(trace), "--out", str(out))
        assert done.returncode == 0, done.stderr
        models[side] = out.read_bytes()
    assert models["on"] == models["off"]


# A heap whose free top is kept (the setting on): 256 MiB in 4 MiB arrays, freed but for the
# last (so the heap cannot shrink from its top alone), then given back.
GIVEN_BACK = """
import sys
import numpy as np
from tracereplay.allocator import give_back_freed, reuse_freed_memory

def rss():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) << 10

assert reuse_freed_memory()
arrays = [np.ones(4 << 20, dtype=np.uint8) for _ in range(64)]
del arrays[:-1]
kept = rss()
if sys.argv[1] == "on":
    give_back_freed()
print(kept - rss())
"""


@glibc
def test_freed_heap_memory_is_given_back_to_the_system() -> None:
    kept = _python(GIVEN_BACK, "off")
    given = _python(GIVEN_BACK, "on")
    assert kept.returncode == 0 and given.returncode == 0, kept.stderr + given.stderr
    assert int(kept.stdout) < 16 << 20  # freed, but resident: the heap keeps it
    assert int(given.stdout) > 200 << 20


def test_giving_back_is_a_no_op_where_the_c_library_is_not_glibc(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    called: list[str] = []
    musl_like = SimpleNamespace(malloc_trim=lambda *a: called.append("trim"))
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: musl_like)
    allocator.give_back_freed()
    assert called == []
