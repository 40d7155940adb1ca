"""Where `build_model`'s two paths end: runs it once on TRACE (the load decides whether the
behaviors fork, as in the command) and prints, in seconds from the build's start, when each
stage of this process started and ended, and when the forked child's imports and work ran
(its CPU seconds too). The child's marks go through a file, written as each ends.

    cd /tmp && TREE/.venv/bin/python -P TREE/bench/model_timeline.py /work/data/real1M

(bench/README.md, "scipy 1.16, one import of scipy.sparse, the child's fits on one thread".)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the command sets it

from tracereplay.models import forked
from tracereplay.models.model import build_model

MARKS = Path(tempfile.mkstemp(prefix="model_timeline-", suffix=".txt")[1])


def _marked(kind: str, run: Any) -> Any:
    start, cpu = time.perf_counter(), time.process_time()
    value = run()
    with MARKS.open("a") as out:
        end = time.perf_counter()
        out.write(f"{os.getpid()} {kind} {start} {end} {time.process_time() - cpu}\n")
    return value


def main() -> None:
    imported, serve = forked._imported, forked._serve
    forked._imported = lambda modules: _marked("imports", lambda: imported(modules))  # type: ignore[assignment]

    def served(work: Any, *args: Any) -> None:
        serve(lambda inputs: _marked("work", lambda: work(inputs)), *args)

    forked._serve = served  # type: ignore[assignment]
    marks: list[tuple[str, float | None, float]] = []

    def progress(event: Any) -> None:
        marks.append((str(getattr(event, "stage", event)), getattr(event, "seconds", None),
                      time.perf_counter()))  # fmt: skip

    start = time.perf_counter()
    build_model(Path(sys.argv[1]), progress=progress)
    print(f"build {time.perf_counter() - start:.3f} s, load {os.getloadavg()[0]:.2f}")
    for name, seconds, at in marks:
        said = "starts" if seconds is None else f"ends ({seconds:.3f} s)"
        print(f"  {at - start:6.3f}  {name} {said}")
    for line in MARKS.read_text().splitlines():
        pid, kind, began, ended, cpu = line.split()
        who = "here" if int(pid) == os.getpid() else "child"
        print(f"  {who} {kind}: {float(began) - start:.3f} -> {float(ended) - start:.3f}"
              f" ({float(cpu):.3f} CPU s)")  # fmt: skip
    MARKS.unlink()


if __name__ == "__main__":
    main()
