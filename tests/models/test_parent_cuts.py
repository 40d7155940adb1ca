"""Cheaper steps of the payloads and correlations stages against the plain code they
replace: names repeated within a query string (`payloads._repeated_names`), the header
scan's order taken from the address scan's (`sample_reads._within`), parameter kinds
judged without `unique` unless examples are needed (`params.param_kind`)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracereplay.models.params import MAX_EXAMPLES, param_kind
from tracereplay.models.payloads import _repeated_names
from tracereplay.models.sample_reads import _within


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.integers(0, 6), max_size=40), st.data())
def test_the_order_within_is_the_stable_sort_of_the_kept(positions: list[int], data: Any) -> None:
    rows = np.asarray(positions, dtype=np.int64)  # ties: a stable order breaks them by index
    kept_mask = data.draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    kept = np.flatnonzero(np.asarray(kept_mask, bool))
    order = np.argsort(rows, kind="stable")
    assert _within(order, kept).tolist() == np.argsort(rows[kept], kind="stable").tolist()


def _param_kind_of_distinct(values: pa.Array) -> dict[str, Any]:
    """`param_kind` as it was: every check on `unique` of the values (the reference)."""
    seen = pc.unique(values.drop_null())

    def every(pattern: str) -> bool:
        return bool(len(seen)) and bool(pc.all(pc.match_substring_regex(seen, pattern)).as_py())

    if every(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"):
        return {"kind": "uuid"}
    lengths = pc.utf8_length(seen)
    if every(r"^[0-9]+$"):
        low, high = pc.min_max(lengths).values()
        return {"kind": "int", "digits": [low.as_py(), high.as_py()]}
    if every(r"^[0-9a-fA-F]{8,}$"):
        return {"kind": "hex", "length": pc.max(lengths).as_py()}
    return {
        "kind": "other",
        "examples": seen.take(pc.sort_indices(seen)[:MAX_EXAMPLES]).to_pylist(),
    }


VALUES = ["17426345-d25a-4edf-92e0-f07abb83add2", "7", "0042", "deadbeef", "DEADBEEF99", "x", ""]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.lists(
        st.one_of(st.none(), st.sampled_from(VALUES), st.text("0123456789abcdefé", max_size=9)),
        max_size=30,
    )
)
def test_param_kinds_are_those_of_the_distinct_values(values: list[str | None]) -> None:
    array = pa.array(values, pa.string())
    assert param_kind(array) == _param_kind_of_distinct(array)


@pytest.mark.parametrize(
    ("values", "kind"),
    [([None, None], "other"), ([], "other"), (["12", None, "12", "345"], "int"),
     (["deadbeef00", "deadbeef00"], "hex")],
)  # fmt: skip
def test_param_kinds_with_nulls_repeats_and_nothing(values: list[str | None], kind: str) -> None:
    array = pa.array(values, pa.string())
    assert param_kind(array)["kind"] == kind
    assert param_kind(array) == _param_kind_of_distinct(array)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from("abcA"), st.sampled_from(["", "1"])), max_size=5),
        max_size=6,
    )
)
def test_repeated_names_are_those_a_counter_per_list_finds(
    lists: list[list[tuple[str, str]]],
) -> None:
    counted = {k for pairs in lists for k, n in Counter(k for k, _ in pairs).items() if n > 1}
    assert _repeated_names(lists) == counted
