"""The sessions' counting sort three ways, on codes like a trace's session keys: pandas'
`groupsort_indexer` (what `key_split.grouped` uses), scipy.sparse's CSR conversion (what it
used before stop 47) and numpy's stable argsort, each checked equal to the last.

    .venv/bin/python bench/counting_sort.py [--rounds 7]

Per size (requests, keys): each way's median and fastest wall seconds over --rounds,
alternated, on one thread; then, each in a fresh interpreter that has imported what the
model's caller has before its fork, the CPU seconds of its first call with its imports
(scipy.sparse: ~0.06 s of them, its array-API module loading numpy.f2py and numpy.testing).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np

SIZES = [(1_062_111, 111_270), (10_648_017, 1_100_000)]


def by_pandas(codes: np.ndarray, groups: int) -> np.ndarray:
    from tracereplay.models.key_split import grouped  # (the shipped sort: pandas')

    return grouped(codes, groups)


def by_scipy(codes: np.ndarray, groups: int) -> np.ndarray:
    from scipy import sparse

    n = len(codes)
    matrix = sparse.csr_array(
        (np.ones(n, dtype=np.int8), (codes, np.arange(n, dtype=np.int32))), shape=(groups, n)
    )
    return matrix.indices.astype(np.int32, copy=False)


def by_numpy(codes: np.ndarray, groups: int) -> np.ndarray:
    return np.argsort(codes, kind="stable").astype(np.int32)


WAYS = {"pandas": by_pandas, "scipy": by_scipy, "numpy": by_numpy}

_FIRST_CALL = """
import sys, time
import numpy as np, tracereplay.models.model  # (what the model's caller has loaded)
sys.path.insert(0, sys.argv[2])
from counting_sort import WAYS
codes = np.random.default_rng(0).integers(0, 111_270, 1_062_111).astype(np.int32)
start = time.process_time()
WAYS[sys.argv[1]](codes, 111_270)
print(time.process_time() - start)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    import pandas  # noqa: F401
    import scipy.sparse  # noqa: F401

    for n, groups in SIZES:
        codes = np.random.default_rng(0).integers(0, groups, n).astype(np.int32)
        expected = by_numpy(codes, groups)
        seconds: dict[str, list[float]] = {name: [] for name in WAYS}
        for _ in range(args.rounds):
            for name, way in WAYS.items():
                start = time.perf_counter()
                got = way(codes, groups)
                seconds[name].append(time.perf_counter() - start)
                assert np.array_equal(got, expected), name
        print(f"{n:,} requests of {groups:,} keys:")
        for name, times in seconds.items():
            print(f"  {name:7s} median {statistics.median(times):.4f} s, fastest {min(times):.4f}")
    here = str(__import__("pathlib").Path(__file__).parent)
    for name in ("pandas", "scipy"):
        cpu = [_first_call(name, here) for _ in range(args.rounds)]
        print(f"first call with its imports, 1 M requests: {name} median "
              f"{statistics.median(cpu):.4f} CPU s")  # fmt: skip


def _first_call(name: str, here: str) -> float:
    command = [sys.executable, "-c", _FIRST_CALL, name, here]
    return float(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


if __name__ == "__main__":
    main()
