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
