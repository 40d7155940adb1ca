"""Which answers a session keeps for a cursor: `correlate.may_hand_out_a_cursor`."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from tracereplay.replay.correlate import _CURSOR_BODY_MAX, may_hand_out_a_cursor

# The rule as first written: a case-insensitive regex over the raw body.
_REFERENCE = re.compile(rb"\?|token|cursor|secret|key|pass|session", re.I)

_WORDS = st.sampled_from([b"?", b"token", b"cursor", b"secret", b"key", b"pass", b"session"])
_NOISE = st.binary(max_size=40)


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(st.one_of(_NOISE, _WORDS), max_size=6))
    body = b"".join(parts)
    flips = draw(st.lists(st.booleans(), min_size=len(body), max_size=len(body)))
    swapped = (
        b ^ 0x20 if flip and bytes([b]).isalpha() else b
        for b, flip in zip(body, flips, strict=True)
    )
    return bytes(swapped)


@given(_bodies())
def test_it_agrees_with_the_case_insensitive_regex(body: bytes) -> None:
    assert may_hand_out_a_cursor(body) == (_REFERENCE.search(body) is not None)


def test_no_body_and_a_body_past_the_bound_are_never_kept() -> None:
    assert not may_hand_out_a_cursor(None)
    assert may_hand_out_a_cursor(b'{"next": "/items?Cursor=1"}')
    assert not may_hand_out_a_cursor(b'{"data": [1, 2, 3]}')
    assert not may_hand_out_a_cursor(b"?" + b" " * _CURSOR_BODY_MAX)
