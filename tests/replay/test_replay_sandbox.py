"""Replaying a captured staging trace against the sandbox: the captured sequence, in order,
with live tokens and ids (no 401 from a stale token)."""

from __future__ import annotations

import json
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
    # What ownership skipped (a write to an object the session did not create, a body with
    # an anonymized key) is not sent: the rest goes in the captured order.
    skipped = json.loads((out / "summary.json").read_text())["skipped"]
    skippable = set(skipped["by_endpoint"])
    omitted = [_omitted(endpoints, planned[index]) for index, endpoints in sent.items()]
    same = sum(1 for o in omitted if o is not None and set(o) <= skippable)
    assert same >= 0.95 * len(planned)  # in order; a cut or failed login ends a session early
    assert sum(len(o) for o in omitted if o is not None) <= skipped["total"]
    statuses = timing["status"].value_counts().to_dict()
    unauthorized = timing[timing["status"] == 401][["session", "seq", "endpoint"]]
    # Tokens came from the live logins (the captured sessions got no 401 either).
    assert 401 not in statuses, (statuses, unauthorized.to_dict("records"))
    assert (timing["status"] < 400).mean() >= 0.9


def _omitted(sent: list[str], planned: list[str]) -> list[str] | None:
    """The planned endpoints left out before the last sent one, when `sent` is `planned`
    in order with some left out (a session may end early); None when it is not."""
    out, i = [], 0
    for endpoint in sent:
        while i < len(planned) and planned[i] != endpoint:
            out.append(planned[i])
            i += 1
        if i == len(planned):
            return None
        i += 1
    return out
