"""The model in key partitions (models/partitioned_model.py) in this process, each stage's
line with the seconds since the start and the process's peak RSS so far, then the whole
run's wall, CPU and peaks, and which sections equal a model file's (made with the same
options: the defaults).

    cd /tmp && CHILD=0 TREE/.venv/bin/python -P TREE/bench/partitioned_stages.py \\
        /work/data/real10M /work/data/models/real10M.main.json 41 [OUT.json]

CHILD=1 fits the behaviors in the forked child (as the command does when a core is free);
OUT.json, when given, is the model written (compare it with `cmp`)."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

from tracereplay.models import model as m
from tracereplay.models.partitioned_model import partitioned_model
from tracereplay.models.source import ParquetSource


def _peak_mb(who: int = resource.RUSAGE_SELF) -> int:
    return resource.getrusage(who).ru_maxrss // 1024


def main() -> int:
    trace, ref, partitions = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    want = json.loads(ref.read_text())
    start, cpu = time.perf_counter(), time.process_time()

    def line(report: m.StageReport) -> None:
        print(f"{time.perf_counter() - start:7.2f} s  peak {_peak_mb()} MB  {report}", flush=True)

    asked = m._Asked.checked(
        m.PAYLOAD_SAMPLE_REQUESTS, m.CORRELATION_SAMPLE_SESSIONS,
        m.CORRELATION_SESSIONS_PER_ENDPOINT, 0, m.CORRELATION_SAMPLE_REQUESTS,
    )  # fmt: skip
    got = partitioned_model(
        Path(want["provenance"]["trace"]), ParquetSource.open(trace), partitions=partitions,
        clock=m._Clock(line), asked=asked, session_timeout_s=m.DEFAULT_SESSION_TIMEOUT_S,
        behavior_sample=m.CLUSTER_SAMPLE_SESSIONS, correlations=True, censor_edges=True,
        child=os.environ.get("CHILD") == "1",
    )  # fmt: skip
    text = m.model_json(got)
    load = Path("/proc/loadavg").read_text().split()[0]
    print(
        f"wall {time.perf_counter() - start:.2f} s, CPU {time.process_time() - cpu:.2f} s,"
        f" peak {_peak_mb()} MB (a child's {_peak_mb(resource.RUSAGE_CHILDREN)} MB), load {load}"
    )
    found = json.loads(text)
    for key in sorted(want):
        print(("same " if want[key] == found.get(key) else "DIFFERENT ") + key)
    if len(sys.argv) > 4:
        Path(sys.argv[4]).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
