"""The endpoints' statistics from the key partitions (models/partition_endpoints.py) at a
trace's scale: what they cost beside the scan, and whether they are the model's.

Modes (one per process, so `/usr/bin/time -v` reads each one's peak):

  scan         `scan_key_partitions` and every partition read back (the baseline).
  partitioned  the same scan with the parameter kinds' hook on each batch
               (`scan_key_partitions(params=ParamFacts())`: `ParamFacts.add_batch` of each
               batch's skeleton cells and paths), every partition fed to an
               `EndpointTally`, then the statistics.
  whole        the model's way: `read_light_columns`, `request_endpoints`,
               `endpoint_stats` over every request in memory.

`--fake-latency`: every request given a duration and status made from its scan position
(some unknown), in both ways, so that the latency percentiles and status mixes are made
and compared at scale (real1M/real10M hold none: synthesized requests).

`--model` compares the statistics made with the model file's endpoint entries (only the
fields made here: count, share, params, latency_ms, status).

    .venv/bin/python bench/bench_partition_endpoints.py partitioned /work/data/real10M \\
        --partitions 16 --model /work/data/models/real10M.main.json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tracereplay.models import key_partitions
from tracereplay.models.endpoint_codes import EndpointCodes, endpoint_stats
from tracereplay.models.light_columns import read_light_columns
from tracereplay.models.partition_endpoints import EndpointTally, ParamFacts
from tracereplay.models.source import ParquetSource
from tracereplay.models.templating import request_endpoints

FIELDS = ("count", "share", "params", "latency_ms", "status")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fake_latency(row: np.ndarray, status_type: np.dtype[Any]) -> tuple[np.ndarray, np.ndarray]:
    """A duration (ms, ties many, a tenth unknown) and a status (some errors, some unknown)
    for each scan position."""
    row = row.astype(np.int64)
    duration = (row * 2654435761 % 100003) / 100.0
    duration[row % 10 == 3] = np.nan
    status = np.array([200, 200, 200, 201, 404, 500, 503], np.float64)[row % 7]
    status[row % 17 == 0] = np.nan
    return duration, status.astype(status_type)


def run(
    mode: str, trace: Path, partitions: int, spill: Path | None, fake: bool = False
) -> dict[str, Any]:
    source = ParquetSource.open(trace)
    marks: dict[str, Any] = {}
    wall, cpu = time.perf_counter(), _cpu()

    def mark(name: str) -> None:
        nonlocal wall, cpu
        now, used = time.perf_counter(), _cpu()
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        marks[name] = {"wall_s": round(now - wall, 3), "cpu_s": round(used - cpu, 3),
                       "maxrss_mb": peak_mb}  # fmt: skip
        wall, cpu = now, used

    stats: list[dict[str, Any]] | None = None
    names: list[str] = []
    if mode == "whole":
        requests = read_light_columns(source)
        _, endpoint, names = request_endpoints(
            requests.methods, requests.method, requests.paths, requests.path
        )
        if fake:
            duration, status = fake_latency(requests.row, requests.status.dtype)
            requests = replace(requests, duration_ms=duration, status=status)
        mark("read+templates")
        stats = endpoint_stats(requests, EndpointCodes.of(endpoint, names))
        mark("endpoint_stats")
    else:
        facts = ParamFacts()
        hook = facts if mode == "partitioned" else None
        with key_partitions.scan_key_partitions(source, partitions, spill, params=hook) as parts:
            mark("scan")
            names = parts.names
            with EndpointTally(len(names), spill) as tally:
                for part in parts.partitions():
                    if mode == "partitioned" and fake:
                        tally.add(part.endpoint, *fake_latency(part.row, part.status.dtype))
                    elif mode == "partitioned":
                        tally.add_partition(part)
                mark("partitions")
                if mode == "partitioned":
                    kinds = facts.endpoint_kinds(names, parts.endpoint_of)
                    stats = tally.stats(names, kinds)
                    mark("endpoint_stats")
                    marks["facts_held"] = facts.held()
                    marks["spill_bytes"] = tally.durations.spill_bytes()
    marks["endpoints"] = len(names)
    if stats is not None:
        marks["stats"] = dict(zip(sorted(names), stats, strict=True))
    return marks


def compare(stats: dict[str, dict[str, Any]], model: Path) -> list[str]:
    """The endpoints whose fields made here differ from the model file's entries."""
    entries = json.loads(model.read_text())["endpoints"]
    differ = [] if set(entries) == set(stats) else ["(names)"]
    for name, entry in entries.items():
        mine = stats.get(name, {})
        if any(json.dumps(mine.get(f)) != json.dumps(entry.get(f)) for f in FIELDS):
            differ.append(name)
    return differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["scan", "partitioned", "whole"])
    parser.add_argument("trace", type=Path)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--spill", type=Path, default=None, help="spill under this directory")
    parser.add_argument("--model", type=Path, default=None, help="a model file to compare")
    parser.add_argument("--fake-latency", action="store_true", help="see the module doc")
    parser.add_argument("--out", type=Path, default=None, help="the statistics as JSON")
    args = parser.parse_args()
    spill = args.spill or Path(tempfile.gettempdir())
    marks = run(args.mode, args.trace, args.partitions, spill, args.fake_latency)
    stats = marks.pop("stats", None)
    if args.out is not None and stats is not None:
        args.out.write_text(json.dumps(stats, sort_keys=True))
    if args.model is not None and stats is not None:
        differ = compare(stats, args.model)
        marks["model_fields_equal"] = not differ
        marks["differ"] = differ[:10]
    json.dump(marks, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
