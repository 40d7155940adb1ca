"""`order_stats`' medians and quantiles of many values in groups, with and without ties, this
tree's module against another tree's (its models/order_stats.py), alternated; CPU seconds.

    .venv/bin/python bench/bench_order_stats.py --base /path/to/other/tree [--values 8500000]
        [--groups 30] [--rounds 2]

Ties: 7 of 8 values the same 1 ms (what `bench_model.py stretch --times 8` makes of the
think times); no ties: lognormal values. Both modules' answers are checked equal.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from types import ModuleType

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _module(tree: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, tree / "models/order_stats.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--values", type=int, default=8_500_000)
    parser.add_argument("--groups", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    codes = {"base": _module(args.base, "base_order_stats"), "this": _module(REPO, "order_stats")}
    rng = np.random.default_rng(0)
    q = np.array([0.5, 0.9, 0.99])
    for label, tie in (("ties 7/8", 7 / 8), ("no ties", 0.0)):
        values = rng.lognormal(0, 2, args.values)
        values[rng.random(args.values) < tie] = 0.001
        group = rng.integers(0, args.groups, args.values).astype(np.int16)
        sizes = np.bincount(group, minlength=args.groups)
        answers = []
        for _ in range(args.rounds):
            for name, module in codes.items():
                cpu = time.process_time()
                medians = module.group_medians(values, group, args.groups)
                quantiles = module.group_quantiles(
                    values, group, args.groups, np.arange(args.groups), q, sizes
                )
                print(f"{label}: {name} {time.process_time() - cpu:.3f} CPU s")
                answers.append((medians, quantiles))
        assert all(np.array_equal(a[0], answers[0][0]) for a in answers), "medians differ"
        assert all(np.array_equal(a[1], answers[0][1]) for a in answers), "quantiles differ"
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
