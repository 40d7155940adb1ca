"""The SLO binding on a trace of many files (issue 15): compare draws the model's cluster
sample from its own frame of REAL, so it walks the rows the model walks and decodes the
bodies of the files those rows are in only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.models.test_cluster_sample import FILES, write_files
from tracereplay.trace import Trace


def test_compare_walks_the_models_cluster_sample_reading_few_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracereplay.compare.columns import read_sessionized_rows
    from tracereplay.models import model as model_module
    from tracereplay.models import sample_reads
    from tracereplay.models.source import ParquetSource

    trace = write_files(tmp_path / "t")
    walked: list[Any] = []
    walk = sample_reads.walk_sessions

    def noting(sessions: Any, *args: Any, **kw: Any) -> Any:
        walked.append(sessions)
        return walk(sessions, *args, **kw)

    read: list[str] = []
    lean = Trace.lean_batches

    def spy(self: Trace, columns: list[str], batch_size: int) -> Any:
        read.extend(Path(f).name for f in self.dataset.files)
        return lean(self, columns, batch_size)

    monkeypatch.setattr(sample_reads, "walk_sessions", noting)
    monkeypatch.setattr(Trace, "lean_batches", spy)
    sample = {"correlation_sample": 25, "correlation_per_endpoint": 2}
    auth = model_module.learned_auth(trace, **sample)
    by_model = sorted(read)
    read.clear()
    real_s, _, rows = read_sessionized_rows(trace, None, 1800.0, scan_rows=True)
    assert rows is not None
    source = ParquetSource.open(trace, read_threads=2)
    again = model_module.sessions_auth(
        source, real_s["session_id"].to_numpy(), real_s["endpoint"], rows, **sample
    )
    assert again == auth and auth.login_endpoint == "POST /auth/login"
    # three files of ten sessions for 25, and the three their last sessions spill into
    assert sorted(read) == by_model and 0 < len(set(read)) <= 6 < FILES
    model_walk, compare_walk = walked
    assert 25 <= model_walk["session_id"].nunique() < 40
    for column in ("session_id", "seq", "endpoint", "path", "req_headers", "resp_body"):
        assert model_walk[column].tolist() == compare_walk[column].tolist(), column
