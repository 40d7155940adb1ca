"""`tracereplay model ...` with the behaviors in a forked child (as model_two_processes.py),
then the peak RSS of each process on stderr: this process's (VmHWM) and the child's
(`RUSAGE_CHILDREN`), MiB. `/usr/bin/time` gives only the larger of the two.

    cd /tmp && TREE/.venv/bin/python -P TREE/bench/model_peaks.py TRACE --out F

`--timeline` (before the trace) also polls both processes' RSS every 5 ms on a thread and
prints, at each stage line, this process's RSS and peak (VmHWM), the child's RSS and the
tree's peak so far (sum of the two), then where the tree's and this process's peaks came
(the stage running); `--at-peak` (instead of `--timeline`) also takes an inventory (below)
from the polling thread each time this process's RSS is 16 MiB above the last one taken,
and prints the last (what was held at this process's peak, give or take 16 MiB).
`--child-peak` takes such inventories in the forked child, of what it holds at its highs.
`--inventory STAGE[,STAGE...]` lists, when those stages start or
end ("sessions", "sessions done", ...), the numpy arrays and Arrow buffers held by every
thread's frames (followed through objects, dataclasses, frames, closures, futures), each
memory counted once, with its bytes a request; `--one-process` runs every stage here.

    cd /tmp && TREE/.venv/bin/python -P TREE/bench/model_peaks.py --timeline \\
        --inventory "sessions done,payloads,correlations done" TRACE --out F
"""

from __future__ import annotations

import atexit
import contextlib
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tracereplay.cli import console
from tracereplay.models import model


def _hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peaks() -> None:
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peaks MiB: parent {_hwm_mib():.0f} child {child:.0f}", file=sys.stderr, flush=True)


def _kib(pid: int | str, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children() -> list[int]:
    found = []
    for task in Path("/proc/self/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


class Timeline:
    """Both processes' RSS polled on a thread; the stage running at each poll."""

    def __init__(self, at_peak: bool = False) -> None:
        self.stage = "imports"
        self.start = time.perf_counter()
        self.tree = (0, "", 0.0)  # (KiB, stage, seconds)
        self.parent = (0, "", 0.0)
        self.child = (0, "", 0.0)
        self.done = False
        self.rows = 0
        self.at_peak = at_peak
        self.inventory: tuple[int, str, list[str]] = (0, "", [])
        """The last inventory taken at a new high of this process's RSS (KiB, stage)."""
        threading.Thread(target=self._poll, daemon=True).start()

    def _poll(self) -> None:
        while not self.done:
            mine = _kib("self", "VmRSS:")
            theirs = sum(_kib(pid, "VmRSS:") for pid in _children())
            at = time.perf_counter() - self.start
            for name, value in (("tree", mine + theirs), ("parent", mine), ("child", theirs)):
                if value > getattr(self, name)[0]:
                    setattr(self, name, (value, self.stage, at))
            # (each 16 MiB higher: the walk holds the GIL, the other threads wait)
            if self.at_peak and self.rows and mine > self.inventory[0] + 16 * 1024:
                lines = Inventory(self.rows).lines(f"parent rss {mine / 1024:.0f} MiB")
                self.inventory = (_kib("self", "VmRSS:"), f"{self.stage} at {at:.2f} s", lines)
            time.sleep(0.005)

    def line(self, report: model.StageReport) -> None:
        label = report.stage if report.seconds is None else f"{report.stage} done"
        mine, hwm = _kib("self", "VmRSS:"), _kib("self", "VmHWM:")
        theirs = sum(_kib(pid, "VmRSS:") for pid in _children())
        at = time.perf_counter() - self.start
        print(
            f"[{at:6.2f} s] {label:22s} parent rss {mine / 1024:6.0f} hwm {hwm / 1024:6.0f}"
            f"  child rss {theirs / 1024:6.0f}  tree peak so far {self.tree[0] / 1024:6.0f} MiB"
            + _malloc_mib(),
            file=sys.stderr,
            flush=True,
        )
        if report.seconds is None:
            self.stage = report.stage

    def summary(self) -> None:
        self.done = True
        if self.inventory[2]:
            print(f"=== at this process's last high, in {self.inventory[1]}:", file=sys.stderr)
            print("\n".join(self.inventory[2]), file=sys.stderr)
        for name in ("tree", "parent", "child"):
            kib, stage, at = getattr(self, name)
            print(
                f"{name} peak (polled) {kib / 1024:.0f} MiB at {at:.2f} s, in {stage!r}",
                file=sys.stderr,
                flush=True,
            )


def _malloc_mib() -> str:
    """glibc's heap (every arena, `mallinfo2`): in use and free, MiB; Arrow's pool; Python's
    small-object arenas (pymalloc: mapped on their own, outside glibc's heap)."""
    import ctypes

    import pyarrow as pa

    class Info(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost",
        )]  # fmt: skip

    try:
        call = ctypes.CDLL(None).mallinfo2
    except AttributeError:
        return ""
    call.restype = Info
    info = call()
    arenas = sys.getallocatedblocks()
    return (
        f"  glibc in use {info.uordblks / 2**20:5.0f} free {info.fordblks / 2**20:5.0f}"
        f"  arrow {pa.total_allocated_bytes() / 2**20:4.0f}  python blocks {arenas:,}"
    )


def _owner(array: Any) -> Any:
    import numpy as np

    while isinstance(array, np.ndarray) and isinstance(array.base, np.ndarray):
        array = array.base
    return array


class Inventory:
    """The arrays reachable from every thread's frames, each memory counted once."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.seen_ids: set[int] = set()
        self.kept: list[Any] = []  # (what was walked, alive: no id reused by another)
        self.memory: dict[tuple[int, int], tuple[str, str, int]] = {}

    def add_memory(self, address: int, nbytes: int, name: str, kind: str) -> None:
        if nbytes and (address, nbytes) not in self.memory:
            self.memory[(address, nbytes)] = (name, kind, nbytes)

    def walk(self, value: Any, name: str, depth: int = 0) -> None:
        import numpy as np
        import pandas as pd
        import pyarrow as pa

        if depth > 7 or id(value) in self.seen_ids or value is None:
            return
        if isinstance(value, str | bytes | int | float | bool | type):
            return
        self.seen_ids.add(id(value))
        self.kept.append(value)
        if isinstance(value, np.ndarray):
            owner = _owner(value)
            if isinstance(owner, np.ndarray):
                address = owner.__array_interface__["data"][0]
                self.add_memory(address, owner.nbytes, name, str(value.dtype))
            else:
                self.walk(owner, name + ".base", depth + 1)
            return
        if isinstance(value, pa.Buffer):
            self.add_memory(value.address, value.size, name, "arrow")
            return
        if isinstance(value, pa.Array | pa.ChunkedArray):
            chunks = value.chunks if isinstance(value, pa.ChunkedArray) else [value]
            for chunk in chunks:
                for i, buffer in enumerate(chunk.buffers()):
                    if buffer is not None:
                        self.walk(buffer, f"{name}[{i}]", depth + 1)
            return
        if isinstance(value, pa.Table | pa.RecordBatch):
            for column_name in value.column_names:
                self.walk(value.column(column_name), f"{name}.{column_name}", depth + 1)
            return
        if isinstance(value, pd.DataFrame):
            for column in value.columns:
                self.walk(value[column], f"{name}[{column}]", depth + 1)
            self.walk(value.index, f"{name}.index", depth + 1)
            return
        if isinstance(value, pd.Series | pd.Index):
            values = value.array if isinstance(value, pd.Series) else value
            if isinstance(value.dtype, pd.CategoricalDtype):
                self.walk(
                    np.asarray(value.cat.codes if isinstance(value, pd.Series) else value.codes),
                    name + ".codes",
                    depth + 1,
                )
                return
            if isinstance(value, pd.RangeIndex):
                return
            self.walk(
                np.asarray(values)
                if values.dtype != object
                else values._ndarray
                if hasattr(values, "_ndarray")
                else np.asarray(values),
                name,
                depth + 1,
            )
            return
        if isinstance(value, dict):
            for key, item in list(value.items())[:200]:
                self.walk(item, f"{name}.{key}", depth + 1)
            return
        if isinstance(value, list | tuple | set | frozenset):
            fields = getattr(value, "_fields", None)
            for i, item in enumerate(list(value)[:200]):
                label = fields[i] if fields and i < len(fields) else str(i)
                self.walk(item, f"{name}.{label}", depth + 1)
            return
        if callable(value) and hasattr(value, "__closure__"):
            for cell in value.__closure__ or ():
                with contextlib.suppress(ValueError):  # (an empty cell)
                    self.walk(cell.cell_contents, name + ".<closure>", depth + 1)
            if hasattr(value, "__self__"):
                self.walk(value.__self__, name + ".__self__", depth + 1)
            return
        if hasattr(value, "_result") and hasattr(value, "done"):  # a Future
            self.walk(value._result, name + ".result", depth + 1)
            return
        module = type(value).__module__ or ""
        if module.startswith(("tracereplay", "functools", "concurrent")):
            attrs = getattr(value, "__dict__", None)
            if attrs is None:
                attrs = {s: getattr(value, s, None) for s in getattr(value, "__slots__", ())}
            for key, item in attrs.items():
                self.walk(item, f"{name}.{key}", depth + 1)
            if hasattr(value, "__closure__") or hasattr(value, "func"):
                self.walk(getattr(value, "func", None), name + ".func", depth + 1)
                self.walk(getattr(value, "args", None), name + ".args", depth + 1)

    def report(self, label: str) -> None:
        print("\n".join(self.lines(label)), file=sys.stderr, flush=True)

    def lines(self, label: str) -> list[str]:
        import pyarrow as pa

        for thread_id, top in sys._current_frames().items():
            # (this walk's own frames skipped)
            frame = top.f_back if thread_id == threading.get_ident() else top
            while frame is not None:
                code = frame.f_code.co_name
                if code not in ("walk", "report", "lines", "line", "stage", "_poll"):
                    for var, item in frame.f_locals.items():
                        self.walk(item, f"{code}:{var}")
                frame = frame.f_back
        total = sum(n for _, _, n in self.memory.values())
        out = [
            f"--- inventory at {label!r}: {len(self.memory)} memories, "
            f"{total / 2**20:.0f} MiB = {total / max(self.rows, 1):.1f} B/request; "
            f"Arrow pool {pa.total_allocated_bytes() / 2**20:.0f} MiB"
        ]
        for name, kind, nbytes in sorted(self.memory.values(), key=lambda m: -m[2]):
            if nbytes >= 0.5 * self.rows or nbytes >= 1 << 20:
                out.append(
                    f"    {nbytes / self.rows:7.2f} B/req {nbytes / 2**20:7.1f} MiB  {kind:8s} "
                    f"{name}"
                )
        return out


def _child_watched() -> None:
    """`model._behaviors_and_shape` (run in the forked child) with its own poller taking
    inventories at its highs; the last printed when it is done."""
    fit = model._behaviors_and_shape

    def watched(inputs: Any) -> Any:
        child = Timeline(at_peak=True)
        child.rows = len(inputs.sessions)
        child.stage = "behaviors (child)"
        try:
            return fit(inputs)
        finally:
            child.done = True
            time.sleep(0.01)
            print(f"child: rss peak {_kib('self', 'VmHWM:') / 1024:.0f} MiB", file=sys.stderr)
            if child.inventory[2]:
                print(f"=== the child's last high, {child.inventory[1]}:", file=sys.stderr)
                print("\n".join(child.inventory[2]), file=sys.stderr, flush=True)

    model._behaviors_and_shape = watched  # type: ignore[assignment]


def _watched(wanted: set[str], timeline: Timeline | None) -> None:
    """`model.build_model` with `timeline` and the inventories at the `wanted` lines."""
    build = model.build_model
    rows = {"n": 0}

    def watched(*args: Any, progress: Any = None, **kwargs: Any) -> Any:
        def stage(report: model.StageReport) -> None:
            rows["n"] = report.rows or rows["n"]
            if timeline is not None:
                timeline.rows = rows["n"]
                timeline.line(report)
            label = report.stage if report.seconds is None else f"{report.stage} done"
            if label in wanted:
                Inventory(rows["n"]).report(label)
            if progress is not None:
                progress(report)

        return build(*args, progress=stage, **kwargs)

    model.build_model = watched  # type: ignore[assignment]


if __name__ == "__main__":
    args = sys.argv[1:]
    timeline = None
    wanted: set[str] = set()
    processes = 2
    while args and args[0].startswith("--") and args[0] != "--out":
        option = args.pop(0)
        if option in ("--timeline", "--at-peak"):
            timeline = Timeline(at_peak=option == "--at-peak")
        elif option == "--inventory":
            wanted = set(args.pop(0).split(","))
        elif option == "--one-process":
            processes = 1
        elif option == "--child-peak":
            _child_watched()
    model.free_processes = lambda: processes  # type: ignore[attr-defined]
    if timeline is not None or wanted:
        _watched(wanted, timeline)
    # (the command ends by os._exit once atexit's functions ran: tracereplay/process_end.py)
    atexit.register(_peaks)
    if timeline is not None:
        atexit.register(timeline.summary)
    sys.argv = ["tracereplay", "model", *args]
    sys.exit(console())
