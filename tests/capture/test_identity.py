"""Session keys from credentials and connection lineage (capture/anonymize/sessions.py):
one session per user, also when users of one account hold the same token."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from tests.capture.har_factory import chrome_entry, seeded_faker, write_dump, write_har
from tests.capture.test_anonymizer import JSON, KEY, T0, exchange, json_body
from tracereplay.capture.anonymize.policy import load_policy
from tracereplay.capture.anonymize.pseudonyms import Pseudonymizer
from tracereplay.capture.anonymize.record import Anonymizer
from tracereplay.capture.anonymize.sessions import (
    BURST_S,
    SessionTracker,
    Sighting,
    origin_address,
)
from tracereplay.capture.exchange import Exchange
from tracereplay.capture.importers.har import iter_har
from tracereplay.capture.importers.mitm import iter_mitm
from tracereplay.trace import TraceRecord
from tracereplay.trace.info import overlapping_sessions

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiIsImlhdCI6MTcwMDAwMDAwMH0.c2lnbmF0dXJlc2lnbmF0dXJl"
REFRESH = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiIsInR5cGUiOiJyZWZyZXNoIn0.cmVmcmVzaHNpZ25hdHVyZQ"


def at(seconds: float, **kw: object) -> Exchange:
    return exchange(ts=T0 + timedelta(seconds=seconds), **kw)


def login(seconds: float, conn: str, token: str = TOKEN, **kw: object) -> Exchange:
    body = {"data": {"access_token": token, "refresh_token": REFRESH}}
    return at(seconds, method="POST", path="/api/v1/auth/login", client_conn=conn,
              req_headers=JSON, resp_headers=JSON, resp_body=json_body(body), duration_ms=30.0,
              **kw)  # fmt: skip


def use(seconds: float, conn: str | None, token: str = TOKEN, **kw: object) -> Exchange:
    headers = [("Authorization", f"Bearer {token}"), *kw.pop("headers", [])]  # type: ignore[misc]
    return at(seconds, client_conn=conn, req_headers=headers, **kw)


@pytest.fixture
def anon() -> Anonymizer:
    return Anonymizer(load_policy(), KEY)


def keys(anon: Anonymizer, exchanges: list[Exchange]) -> list[str]:
    out = []
    for ex in exchanges:
        session = anon.record(ex).session
        assert session is not None
        out.append(session)
    return out


def test_two_users_of_one_account_with_the_same_token_are_two_sessions(anon: Anonymizer) -> None:
    # Both sign in within one second and get the same token (whole-second iat), each on
    # its own connection; their requests then interleave.
    flow = [
        login(0.0, "a"), login(0.2, "b"),
        use(1.0, "a"), use(1.01, "b", duration_ms=50.0), use(1.02, "a"),
        use(3.0, "b"), use(3.5, "a"),
        at(4.0, method="POST", path="/api/v1/auth/logout", client_conn="b",
           req_headers=[("Authorization", f"Bearer {TOKEN}")]),
        use(5.0, "a"),
    ]  # fmt: skip
    got = keys(anon, flow)
    a = [k for k, ex in zip(got, flow, strict=True) if ex.client_conn == "a"]
    b = [k for k, ex in zip(got, flow, strict=True) if ex.client_conn == "b"]
    assert len(set(a)) == 1 and len(set(b)) == 1 and a[0] != b[0]
    assert a[0].startswith("token:") and b[0].startswith("token:")


def test_without_connection_ids_the_keys_are_the_credentials_and_the_address(
    anon: Anonymizer,
) -> None:
    # An older trace or an exporter that says nothing of connections: what it could do.
    flow = [login(0.0, None), use(1.0, None), use(2.0, None),  # type: ignore[arg-type]
            at(3.0, path="/health"), at(3.5, path="/health", client_addr="10.0.0.9")]  # fmt: skip
    got = keys(anon, flow)
    assert got[0] == got[1] == got[2]
    assert got[3].startswith("client:") and got[4].startswith("client:") and got[3] != got[4]


def test_unauthenticated_traffic_is_split_by_connection_never_by_address(
    anon: Anonymizer,
) -> None:
    flow = [at(0.0, path="/health", client_conn="a"), at(0.5, path="/health", client_conn="b"),
            at(60.0, path="/health", client_conn="a")]  # fmt: skip
    got = keys(anon, flow)
    assert got[0] == got[2] != got[1]  # one address (127.0.0.1), two connections
    assert got[0].startswith("conn:")


def test_a_login_after_a_signed_in_session_on_one_connection_starts_the_next_session(
    anon: Anonymizer,
) -> None:
    other = TOKEN[:-4] + "AAAA"
    got = keys(anon, [at(0.0, path="/", client_conn="a"), login(1.0, "a"), use(2.0, "a"),
                      login(30.0, "a", token=other), use(31.0, "a", token=other)])  # fmt: skip
    assert got[0] == got[1] == got[2]  # signing in on a connection: its client's session
    assert got[3] == got[4] != got[0]  # a new login once signed in: the next session


def test_a_browser_fetching_in_parallel_over_connections_is_one_session(
    anon: Anonymizer,
) -> None:
    burst = [use(2.0 + i * 0.01, f"c{i}", duration_ms=400.0) for i in range(4)]
    got = keys(anon, [login(0.0, "c0"), *burst, use(3.0, "c2"), use(3.2, "c0")])
    assert len(set(got)) == 1


def test_one_credential_interleaving_across_connections_is_split(anon: Anonymizer) -> None:
    # The capture began after both users signed in: no login binds the token to either.
    flow = [use(0.0, "a", duration_ms=100.0), use(0.5, "b", duration_ms=100.0),
            use(1.0, "a", duration_ms=900.0), use(1.3, "b", duration_ms=100.0),
            use(2.0, "a"), use(2.1, "b"), use(2.5, "b")]  # fmt: skip
    got = keys(anon, flow)
    assert got[0] == got[1] == got[2]  # b looked like a's client back on a new connection
    assert got[3] != got[0]  # until b sent while a was waiting: another user
    assert got[4] == got[0] and got[5] == got[6] == got[3]


def test_a_client_back_on_a_new_connection_keeps_its_session(anon: Anonymizer) -> None:
    got = keys(anon, [login(0.0, "a"), use(1.0, "a"), use(90.0, "a2"), use(91.0, "a2")])
    assert len(set(got)) == 1


def test_a_new_connection_from_another_address_is_another_user(anon: Anonymizer) -> None:
    xff = [("X-Forwarded-For", "203.0.113.9")]
    got = keys(anon, [login(0.0, "a"), use(1.0, "a"), use(90.0, "z", headers=xff)])
    assert got[2] != got[0]


def test_rows_anonymized_out_of_order_get_keys_in_order() -> None:
    # The live capture keys rows in the collector (SessionOrder), in the order they came.
    from tracereplay.capture.workers import AnonymizerSpec

    spec = AnonymizerSpec(load_policy(), KEY)
    anonymize, order = spec.build(), spec.session_order()
    flow = [login(0.0, "a"), login(0.2, "b"), use(1.0, "a"), use(1.1, "b")]
    results = [anonymize(i, ex) for i, ex in enumerate(flow)]
    got = [order.apply(r).session for r in results]
    assert got[0] == got[2] != got[1] == got[3]


def test_session_keys_stay_bounded() -> None:
    tracker = SessionTracker(Pseudonymizer(KEY), max_credentials=50)
    for i in range(500):
        seen = Sighting(f"c{i}", None, float(i), float(i) + 0.01)
        tracker.session_for([("bearer", f"t{i}")], [], None, seen)
    assert len(tracker) <= 50
    assert all(len(table) <= 50 for table in (tracker._bound, tracker._owners, tracker._made))


def test_origin_address_prefers_the_forwarded_client() -> None:
    assert (
        origin_address([("X-Forwarded-For", "203.0.113.9, 10.0.0.1")], "127.0.0.1") == "203.0.113.9"
    )
    assert origin_address([("X-Real-IP", " 198.51.100.7 ")], "127.0.0.1") == "198.51.100.7"
    assert (
        origin_address([("Forwarded", 'for="[2001:db8::1]";proto=https')], None) == "[2001:db8::1]"
    )
    assert origin_address([("Accept", "*/*")], "127.0.0.1") == "127.0.0.1"
    assert origin_address(None, None) is None


def test_conn_and_addr_are_pseudonyms_in_the_record(anon: Anonymizer) -> None:
    raw = use(
        0.0, "5d1b2a52-6b9e-4d4f-8a37-3e7d1c0e9a11", headers=[("X-Forwarded-For", "203.0.113.9")]
    )
    record = anon.record(raw)
    plain = anon.record(at(1.0, client_conn="5d1b2a52-6b9e-4d4f-8a37-3e7d1c0e9a11"))
    assert record.conn == plain.conn and record.conn is not None
    assert "5d1b2a52" not in record.conn and len(record.conn) == 16
    assert record.addr not in (None, record.client)  # the forwarded client, not the peer
    assert plain.addr == plain.client  # no forwarding header: the peer
    assert "203.0.113.9" not in json.dumps([record.addr, record.client])


STARTED = "2026-03-02T09:30:00.000Z"


def test_har_connection_and_mitm_client_conn_reach_the_conn_column(tmp_path: Path) -> None:
    fake = seeded_faker(5)
    entries = []
    for i, conn in enumerate(["101", "101", "102"]):
        entry = chrome_entry(fake, started=STARTED, url=f"https://api.example.test/v1/items/{i}")
        entry["connection"] = conn
        entries.append(entry)
    entries.append(chrome_entry(fake, started=STARTED, url="https://api.example.test/v1/items/9"))
    entries[-1].pop("connection", None)
    har = [ex.client_conn for ex in iter_har(write_har(tmp_path / "a.har", entries))]
    assert har[0] == har[1] != har[2] and har[3] is None
    assert har[0] is not None and har[0].endswith("#101")
    other = [ex.client_conn for ex in iter_har(write_har(tmp_path / "b.har", entries[:1]))]
    assert other[0] != har[0]  # connection numbers are per file

    from mitmproxy.test import tflow

    flows = [tflow.tflow(resp=True), tflow.tflow(resp=True)]
    flows[1].client_conn = flows[0].client_conn
    dumped = [ex.client_conn for ex in iter_mitm(write_dump(tmp_path / "d.mitm", flows))]
    assert dumped == [flows[0].client_conn.id] * 2


def test_info_counts_sessions_with_overlapping_requests() -> None:
    def rows(*spans: tuple[str, float, float | None]) -> pa.Table:
        records = [TraceRecord(ts=T0 + timedelta(seconds=s), method="GET", path="/",
                               session=k, duration_ms=d) for k, s, d in spans]  # fmt: skip
        from tracereplay.trace.schema import records_to_batch

        return pa.Table.from_batches([records_to_batch(records)])

    assert overlapping_sessions(rows(("a", 0, 500.0), ("a", 1, 10.0), ("b", 0, None))) == 0
    assert overlapping_sessions(rows(("a", 0, 500.0), ("a", 0.4, 10.0), ("b", 0, 1.0))) == 1
    assert overlapping_sessions(rows(("a", 0, 5000.0), ("a", 1, 1.0), ("a", 2, 1.0))) == 1
    assert BURST_S < 0.5
