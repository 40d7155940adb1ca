"""compare sessionizes as the model does: a session key whose requests all failed auth (a
wrong password the client then corrects) joins the key its connection carries next
(`models.sessions.join_failed_credentials`), so `tracereplay compare` and `tracereplay
model` count, number and measure the same sessions of a trace."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pandas as pd
from faker import Faker

from tests.factories import T0, TEST_META, make_record
from tracereplay.compare.columns import read_pair
from tracereplay.compare.compare import COMPARE_COLUMNS, compare_traces
from tracereplay.models.frame import load_requests
from tracereplay.models.model import build_model
from tracereplay.models.sessions import session_stats, sessionize
from tracereplay.trace import TraceRecord, open_writer


def _records(seed: int = 15) -> list[TraceRecord]:
    """Six clients on their own connections: three type a wrong password first (one or
    two 401s under a key of their own, then the right key on the same connection), one
    stranger whose only requests fail (no key after it on its connection), two log in
    at once. Keys, connections and paths from faker."""
    fake = Faker()
    fake.seed_instance(seed)
    records = []
    for user in range(6):
        conn = "conn:" + fake.sha1()[:16]
        right, wrong = "basic:" + fake.sha1()[:16], "basic:" + fake.sha1()[:16]
        t = 11.0 * user + fake.pyfloat(min_value=0, max_value=3)
        path = "/api/v1/clients/" + fake.uuid4()
        if user < 3:  # wrong password first, then the right one
            for _ in range(1 + user % 2):
                records.append(_at(t, wrong, conn, "/api/v1/auth/login", 401))
                t += fake.pyfloat(min_value=0.5, max_value=2)
        if user == 3:  # a stranger: fails and goes
            records.append(_at(t, wrong, conn, "/api/v1/auth/login", 401))
            records.append(_at(t + 1.5, wrong, conn, "/api/v1/auth/login", 401))
            continue
        for i in range(3 + user % 3):
            records.append(_at(t + 1.25 * i, right, conn, path if i else "/api/v1/auth/login", 200))
    return sorted(records, key=lambda r: r.ts)


def _at(t: float, key: str, conn: str, path: str, status: int) -> TraceRecord:
    return make_record(
        ts=T0 + timedelta(seconds=t), session=key, conn=conn, path=path, status=status
    )


def _write(directory: Path, records: list[TraceRecord]) -> Path:
    with open_writer(directory, TEST_META) as writer:
        for record in records:
            writer.write(record)
    return directory


def _by_request(frame: pd.DataFrame) -> pd.DataFrame:
    """Each request's session id, key and think time, in time order."""
    out = pd.DataFrame(
        {
            "t_s": frame["t_s"].to_numpy(float),
            "session_id": frame["session_id"].to_numpy("int64"),  # compare's: int32
            "session_key": frame["session_key"].astype(str).to_numpy(),
            "think_s": frame["think_s"].to_numpy(float),
        }
    )
    return out.sort_values(["t_s", "session_id"], kind="stable").reset_index(drop=True)


def test_compare_joins_a_failed_credential_to_its_connections_next_key(tmp_path: Path) -> None:
    trace = _write(tmp_path / "real", _records())
    model = build_model(trace, correlations=False)
    real_s, _ = read_pair(trace, trace)
    # The model's sessions: `sessionize` of the trace's requests with status and conn.
    frame = load_requests(trace, COMPARE_COLUMNS)
    reference = sessionize(frame)
    # 3 corrected passwords join their next key: 6 sessions, not 9 (the stranger stays).
    assert model["provenance"]["sessions"] == 6
    assert reference["session_id"].nunique() == 6
    pd.testing.assert_frame_equal(_by_request(real_s), _by_request(reference))
    assert session_stats(real_s).to_json() == model["sessions"]["stats"]
    assert compare_traces(trace, trace, rounds=10).to_json()["sessions"] == {"real": 6, "other": 6}


def test_a_failed_key_without_a_connection_keeps_its_own_session(tmp_path: Path) -> None:
    records = [replace(r, conn=None) for r in _records()]
    trace = _write(tmp_path / "real", records)
    real_s, _ = read_pair(trace, trace)
    assert build_model(trace, correlations=False)["provenance"]["sessions"] == 9
    assert real_s["session_id"].nunique() == 9
    # With the connections, the failed attempts join: fewer, longer sessions.
    joined, _ = read_pair(_write(tmp_path / "joined", _records()), tmp_path / "joined")
    assert joined["session_id"].nunique() == 6
    assert _lengths(joined) != _lengths(real_s)


def _lengths(frame: pd.DataFrame) -> list[int]:
    return sorted(frame.groupby("session_id").size().tolist())
