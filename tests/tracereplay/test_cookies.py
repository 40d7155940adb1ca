"""cookie_pairs: the name=value parts of a Cookie header, as the model and replay read them."""

from __future__ import annotations

from tracereplay.cookies import cookie_pairs


def test_pairs_are_stripped_and_parts_without_name_or_equals_skipped() -> None:
    header = ' access_token = a.b.c ; flag; =orphan ;refresh_token="r1"; empty='
    assert list(cookie_pairs(header)) == [
        ("access_token", "a.b.c"),
        ("refresh_token", '"r1"'),
        ("empty", ""),
    ]


def test_unquote_drops_the_quotes_around_a_value() -> None:
    assert list(cookie_pairs('sid="x=1"; id=2', unquote=True)) == [("sid", "x=1"), ("id", "2")]
    assert list(cookie_pairs("")) == []
