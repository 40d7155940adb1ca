"""CPU seconds of each of the model's two processes (issue 15, early19): `build_model` of
TRACE with the behaviors always in a forked child (`processes=2`, whatever the load), as
`tracereplay model` runs it (glibc set to keep freed memory), then this process's CPU
(`RUSAGE_SELF`) and its reaped child's (`RUSAGE_CHILDREN`), user and system, with the wall
and each one's peak RSS, as one JSON line; exit 1 if the model differs from REF.

    cd /tmp && TREE/.venv/bin/python -P TREE/bench/model_processes_cpu.py TRACE REF [--out F]

Runs the code of the tree whose venv runs it: alternate two trees' venvs for an A/B (their
CPU split is what a loaded machine cannot blur, unlike their wall).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from tracereplay.allocator import reuse_freed_memory
from tracereplay.models.model import build_model, model_json


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("ref", type=Path, help="the model file it must equal byte for byte")
    parser.add_argument("--out", type=Path, default=Path("/tmp/model_processes_cpu.json"))
    args = parser.parse_args()
    reuse_freed_memory()
    start = time.perf_counter()
    text = model_json(build_model(args.trace, processes=2))
    wall = time.perf_counter() - start
    args.out.write_text(text, encoding="utf-8")
    me = resource.getrusage(resource.RUSAGE_SELF)
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    same = text.encode() == args.ref.read_bytes()
    print(json.dumps({
        "wall_s": round(wall, 2),
        "parent_user_s": round(me.ru_utime, 2), "parent_sys_s": round(me.ru_stime, 2),
        "child_user_s": round(child.ru_utime, 2), "child_sys_s": round(child.ru_stime, 2),
        "parent_max_rss_mb": me.ru_maxrss // 1024, "child_max_rss_mb": child.ru_maxrss // 1024,
        "identical": same,
    }))  # fmt: skip
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
