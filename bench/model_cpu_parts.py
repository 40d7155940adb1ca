"""CPU seconds of `tracereplay model`'s parts, in one process (stages one after the other,
BLAS and OpenMP on one thread, as the behaviors' fits run): the parent's imports, the
child's imports (sklearn, scipy), then each stage's `time.process_time` between its
progress lines, and the model file's writing. Where the 1 M rows/s goal's CPU goes
(bench/README.md, "The fixed cost at 1 M rows").

    cd /tmp && TREE/.venv/bin/python -P TREE/bench/model_cpu_parts.py TRACE [--out F]

Run it with another tree's venv (`-P` keeps this directory off the path) to compare.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # before numpy loads its BLAS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("--out", type=Path, default=Path("/tmp/model_cpu_parts.json"))
    args = parser.parse_args()
    start = time.process_time()
    import tracereplay.cli_app  # noqa: F401 (what the console script imports first)
    from tracereplay.models import model

    parent = time.process_time()
    import scipy.ndimage
    import scipy.stats  # noqa: F401
    import sklearn.cluster
    import sklearn.metrics  # noqa: F401

    child = time.process_time()
    marks: list[tuple[float, str]] = []
    began = time.process_time()
    built = model.build_model(
        args.trace, processes=1, progress=lambda r: marks.append((time.process_time(), str(r)))
    )
    done = time.process_time()
    model.write_model(built, args.out)
    print(
        f"parent imports {parent - start:.3f}  child imports {child - parent:.3f}  "
        f"build_model {done - began:.3f}  write {time.process_time() - done:.3f} CPU s"
    )
    before = began
    for at, line in marks:
        print(f"  +{at - before:6.3f}  {line}")
        before = at
    return 0


if __name__ == "__main__":
    sys.exit(main())
