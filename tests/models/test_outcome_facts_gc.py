"""`_Found.outcome_facts` learns the facts with the cyclic collector paused, and leaves it
as it found it (on or off), also when the facts raise."""

from __future__ import annotations

import gc
from typing import Any

import pandas as pd
import pytest

from tracereplay.models import sample_reads
from tracereplay.models.correlations import NO_AUTH
from tracereplay.models.ids import NO_IDS


@pytest.mark.parametrize("was", [True, False])
@pytest.mark.parametrize("fails", [False, True])
def test_the_collector_is_paused_then_as_it_was(
    monkeypatch: pytest.MonkeyPatch, was: bool, fails: bool
) -> None:
    seen: list[bool] = []

    def facts(heavy: Any, auth: Any) -> None:
        seen.append(gc.isenabled())
        if fails:
            raise RuntimeError("facts")

    monkeypatch.setattr(sample_reads, "session_facts", facts)
    found = sample_reads._Found([], NO_AUTH, NO_IDS, {}, pd.DataFrame({"a": [1]}))
    enabled = gc.isenabled()
    try:
        (gc.enable if was else gc.disable)()
        if fails:
            with pytest.raises(RuntimeError):
                found.outcome_facts()
        else:
            assert found.outcome_facts() is None
        assert seen == [False] and gc.isenabled() == was
    finally:
        (gc.enable if enabled else gc.disable)()


def test_string_columns_give_what_object_columns_give() -> None:
    """Columns of pandas' `str` dtype (what an object array of strings becomes in a frame)
    and of object dtype: the same Basic endpoints and addresses."""
    from tracereplay.models.addresses import session_addresses
    from tracereplay.models.outcomes import basic_auth_endpoints

    headers = [[("Authorization", "Basic eA==")], [], [("X-Forwarded-For", "10.0.0.1")], None]
    frame = pd.DataFrame(
        {
            "session_id": [0, 0, 1, 2],
            "endpoint": ["GET /a", "GET /a", "GET /b", "GET /c"],
            "req_headers": headers,
            "addr": [None, None, None, "192.0.2.1"],
            "session_key": ["k0", "k0", "k1", "k2"],
        }
    )
    plain = frame.astype({c: object for c in ("endpoint", "addr", "session_key")})
    assert frame["endpoint"].dtype != object  # the `str` dtype this is about
    assert basic_auth_endpoints(frame) == basic_auth_endpoints(plain) == ("GET /a",)
    # one address each: from the key, the header, `addr`; the tie goes to the first seen
    assert session_addresses(frame) == session_addresses(plain) == (3, "session")
