"""The anonymizer's rows do not change when its code is made faster: same input and key,
same row (pseudonyms are part of the trace contract), and each shortcut agrees with the
code it replaces."""

from __future__ import annotations

import re
import sys
import uuid

from hypothesis import given
from hypothesis import strategies as st

from tests.capture.anonymize_corpus import exchanges, rows_digest
from tracereplay.capture.anonymize import keys, pseudonyms, shapes, values
from tracereplay.capture.anonymize.policy import load_policy
from tracereplay.capture.anonymize.record import Anonymizer

KEY = b"corpus-key"
# The rows of anonymize_corpus.exchanges(300, seed=1) under the default policy and KEY, as
# main made them before the speed-ups of issue 14 (fa9452f; bench_anonymize.py --check
# compared the two row by row). A deliberate change of a pseudonym (or of faker's word
# lists, which pseudonyms draw from) changes it: say so where the change is recorded.
CORPUS_DIGEST = "a9183faebcd086baf86700fdb16ce18ae3ca1e5e8eabb61e4f903e0821fee491"


def test_corpus_rows_are_the_pinned_ones() -> None:
    anonymizer = Anonymizer(load_policy(), KEY)
    assert rows_digest(anonymizer.record(ex) for ex in exchanges(300, seed=1)) == CORPUS_DIGEST


def test_a_second_anonymizer_makes_the_same_rows() -> None:
    # Caches (the pseudonym memo, detector plans, the keyed HMAC) carry no state into rows.
    first = Anonymizer(load_policy(), KEY)
    corpus = exchanges(40, seed=2)
    warm = [first.record(ex) for ex in corpus]
    again = [first.record(ex) for ex in corpus]
    fresh = [Anonymizer(load_policy(), KEY).record(ex) for ex in corpus]
    assert [r.resp_body for r in warm] == [r.resp_body for r in again]
    assert [r.resp_body for r in warm] == [r.resp_body for r in fresh]


@given(st.binary(min_size=16, max_size=16))
def test_uuid4_hex_is_what_the_uuid_module_makes(raw: bytes) -> None:
    assert pseudonyms._uuid4_hex(raw) == uuid.UUID(bytes=raw, version=4).hex


@given(st.uuids())
def test_canonical_uuid_needs_no_parsing(value: uuid.UUID) -> None:
    text = str(value)
    assert pseudonyms._CANONICAL_UUID.fullmatch(text)
    for other in (text.upper(), value.hex, "{" + text + "}", f"urn:uuid:{text}"):
        assert not pseudonyms._CANONICAL_UUID.fullmatch(other)
        assert str(uuid.UUID(other)) == text


@given(st.binary(max_size=64))
def test_byte_tables_are_the_modulo_they_replace(raw: bytes) -> None:
    assert raw.translate(pseudonyms._BYTE_TO_DIGIT).decode() == "".join(str(b % 10) for b in raw)
    base62 = pseudonyms._BASE62
    assert raw.translate(pseudonyms._BYTE_TO_BASE62).decode() == "".join(
        base62[b % 62] for b in raw
    )


_PREFIX_TEXT = st.lists(
    st.sampled_from(keys._PREFIXES) | st.text(alphabet="AGSTghklxsp_-.3=0 z", max_size=8),
    max_size=80,
).map("".join)


@given(_PREFIX_TEXT)
def test_key_prefix_check_is_the_substring_search(text: str) -> None:
    assert keys.has_key_prefix(text) == any(p in text for p in keys._PREFIXES)


def test_space_pattern_is_str_isspace() -> None:
    chars = map(chr, range(sys.maxunicode + 1))
    assert all((values._SPACE.match(c) is not None) == c.isspace() for c in chars)


_SHAPE_PARTS = (
    "2026-03-02",
    "T09:30:00",
    "+01:00",
    "Z",
    "v1.2.3",
    "-rc.1",
    "application/json",
    "; charset=utf-8",
    "12ms",
    "en",
    "_US",
    "1,234",
    ".5",
    "%",
    "abc",
    " ",
    "Mon, ",
)


@given(st.lists(st.sampled_from(_SHAPE_PARTS), max_size=5).map("".join))
def test_kept_shapes_are_any_of_the_shapes(value: str) -> None:
    one_of = any(
        p.fullmatch(value)
        for p in (
            shapes._TIMESTAMP,
            shapes._VERSION,
            shapes._MEDIA_TYPE,
            shapes._DURATION,
            shapes._LOCALE,
        )
    )
    assert (shapes._KEPT_SHAPES.fullmatch(value) is not None) == one_of


def test_no_structural_shape_takes_a_uuid() -> None:
    # values.value() pseudonymizes a UUID before it asks is_structural, URL_START or the
    # integer rules: none of them may take one.
    for value in (
        str(uuid.uuid4()),
        "12345678-1234-1234-1234-123456789012",
        "0" * 8 + "-0000" * 3 + "-" + "0" * 12,
    ):
        assert shapes.UUID.fullmatch(value)
        assert not shapes.is_structural(value)
        assert not shapes.is_long_integer(value)
        assert not shapes.URL_START.match(value)
        assert not re.fullmatch(r"\s.*|.*\s|\".*\"|[\[{].*[\]}]", value)
