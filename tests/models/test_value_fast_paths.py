"""Payload inference's one JSON decoder and the walk's string fast path give what
`json.loads(..., parse_constant=...)` and `_text` of each value gave."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tracereplay.models.payloads import _json_loads, _no_constant
from tracereplay.models.values import Location, _eligible, _text

TEXTS = ['{"a": [1, 2.5, null, true]}', "[]", '"x"', "12", "NaN", '{"a": Infinity}',
         "-Infinity", "\ufeff{}", "{", "", " {} ", '{"a": 1} x', '{"é": "\\u00e9"}']  # fmt: skip


def loaded(load: Any, text: str) -> tuple[str, Any]:
    try:
        return "ok", load(text)
    except ValueError as error:
        return type(error).__name__, str(error)


@pytest.mark.parametrize("text", TEXTS)
def test_one_decoder_loads_as_loads_did(text: str) -> None:
    before = loaded(lambda t: json.loads(t, parse_constant=_no_constant), text)
    assert loaded(_json_loads, text) == before


class Named(str):
    """A str subclass: judged by `_text`, as before."""


VALUES: list[object] = ["abcdefgh", "ab", "2026-01-02", "2026-01-02T10:00:00Z", "12345",
                        "-1234", "-12", True, None, 12, 123456, -99999, 1.5, Named("zzzzzzzz"),
                        Named("z"), b"bytes-value", ""]  # fmt: skip


@pytest.mark.parametrize("min_len", [1, 4, 8])
def test_eligible_values_are_those_text_keeps(min_len: int) -> None:
    places = [(Location("query", f"k{i}"), v) for i, v in enumerate(VALUES)]
    before = [(loc, t) for loc, v in places if (t := _text(v, min_len)) is not None]
    assert _eligible(places, min_len) == before
    assert [type(t) for _, t in _eligible(places, min_len)] == [type(t) for _, t in before]
