"""compare sessionizes as the model does: a session key whose requests all failed auth (a
wrong password the client then corrects) joins the key its connection carries next
(`models.sessions.join_failed_credentials`), so `tracereplay compare` and `tracereplay
model` count, number and measure the same sessions of a trace."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from faker import Faker

from tests.factories import T0, TEST_META, make_record
from tracereplay.compare.columns import _session_keys, read_pair
from tracereplay.compare.compare import COMPARE_COLUMNS, compare_traces
from tracereplay.models.frame import connections_to_join, load_requests, read_light_columns
from tracereplay.models.model import build_model
from tracereplay.models.sessions import join_failed_credentials, session_stats, sessionize
from tracereplay.models.source import ParquetSource
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


def _tangled(seed: int) -> list[TraceRecord]:
    """Many clients sharing a few connections whose names sort otherwise than they are
    first used ("c10" before "c9", upper case before lower, a non-ASCII one), some keys
    failing throughout (on one connection or two), times with ties, some rows without a
    connection: where the join's order of connections, times and positions decides."""
    fake = Faker()
    fake.seed_instance(seed)
    conns = ["c9", "c10", "C1", "c1", "é1", "c1 ", None]
    keys = ["basic:" + fake.sha1()[:12] for _ in range(40)]
    failing = set(fake.random_elements(keys, length=14, unique=True))
    records = []
    for _ in range(700):
        key = fake.random_element(keys)
        status = 401 if key in failing else fake.random_element([200, 200, 201, 401, 404])
        t = fake.random_int(0, 240) * 0.5  # (ties)
        path = fake.random_element(["/api/v1/auth/login", "/api/v1/clients/"])
        records.append(_at(t, key, fake.random_element(conns), path, status))
    return sorted(records, key=lambda r: r.ts)


@pytest.mark.parametrize("seed", range(6))
def test_compare_joins_failed_keys_as_the_pandas_join_does(tmp_path: Path, seed: int) -> None:
    """compare's numpy join (`columns._session_keys`: the model's `sessionized.joined_keys`)
    gives each request the key `join_failed_credentials` (pandas, over every request's
    `conn` as a Python object) does, and the sessions are `sessionize`'s."""
    trace = _write(tmp_path / "real", _tangled(seed))
    source = ParquetSource.open(trace)
    requests = read_light_columns(source, status_dtype=np.float32)
    conn = connections_to_join(source, requests)
    assert conn is not None  # (some key failed throughout)
    want = join_failed_credentials(requests.key, requests.t_s, requests.status, conn)
    got = _session_keys(source, requests)
    assert (want != requests.key).any()  # (some key joined: the case matters)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == requests.key.dtype
    real_s, _ = read_pair(trace, trace)
    reference = sessionize(load_requests(trace, COMPARE_COLUMNS))
    pd.testing.assert_frame_equal(_by_request(real_s), _by_request(reference))
