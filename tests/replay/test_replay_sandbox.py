"""Replaying a captured staging trace against the sandbox: the captured sequence, in order,
with live tokens and ids (no 401 from a stale token)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.servers import SandboxTarget
from tracereplay.cli import main
from tracereplay.demo.accounts import accounts_csv
from tracereplay.models.frame import load_requests
from tracereplay.models.sessions import sessionize
from tracereplay.models.templating import Templater, add_endpoints

pytestmark = pytest.mark.slow


def test_trace_replay_sends_the_captured_sequences_with_live_credentials(
    staging_trace: Path, sandbox_target: SandboxTarget, tmp_path: Path
) -> None:
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(accounts_csv(sandbox_target.accounts))
    out = tmp_path / "run"
    code = main(["replay", str(staging_trace), "--host", sandbox_target.url, "--out", str(out),
                 "--speed", "4", "--credentials", str(accounts), "--grace", "15s"])  # fmt: skip
    assert code == 0
    df = load_requests(staging_trace)
    captured = sessionize(
        add_endpoints(df, Templater.fit(zip(df["method"], df["path"], strict=True)))
    )
    planned = [list(g["endpoint"]) for _, g in captured.groupby("session_id", sort=True)]
    timing = pq.read_table(out / "timing.parquet").to_pandas().sort_values(["session", "seq"])
    sent = {int(k): list(g["endpoint"]) for k, g in timing.groupby("session")}
    assert len(sent) == len(planned)
    same = sum(1 for index, endpoints in sent.items() if endpoints == planned[index])
    assert same >= 0.95 * len(planned)  # in order; a cut or failed login ends a session early
    statuses = timing["status"].value_counts().to_dict()
    unauthorized = timing[timing["status"] == 401][["session", "seq", "endpoint"]]
    # Tokens came from the live logins (the captured sessions got no 401 either).
    assert 401 not in statuses, (statuses, unauthorized.to_dict("records"))
    assert (timing["status"] < 400).mean() >= 0.9
