"""Dependent date fields: a range's two ends are drawn together, per period, as captured."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
from faker import Faker

from tracereplay.errors import ConfigError
from tracereplay.models.payloads import BodyModel, QueryModel, infer_body, infer_query

TODAY = date(2026, 12, 2)
# The sandbox staging users' historical queries: the span depends on the period, the end
# is today or up to a month ago; the API refuses end < start and hourly spans > 62 days.
SPANS = {"hour": (1, 7), "day": (7, 90), "week": (28, 182), "month": (90, 730)}


def history_queries(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        period = rng.choice(sorted(SPANS))
        query = f"period={period}"
        if rng.random() < 0.85:
            end = TODAY - timedelta(days=rng.randint(1, 30) if rng.random() < 0.3 else 0)
            start = end - timedelta(days=rng.randint(*SPANS[period]) - 1)
            query += f"&start_date={start}&end_date={end}"
        out.append(query)
    return out


def refused(query: dict[str, str]) -> bool:
    """The sandbox's own rule (demo/target/metrics.py history_error), or one end alone."""
    if ("start_date" in query) != ("end_date" in query):
        return True
    if "start_date" not in query:
        return False
    start, end = date.fromisoformat(query["start_date"]), date.fromisoformat(query["end_date"])
    days = (end - start).days + 1
    return end < start or days > 731 or (query["period"] == "hour" and days > 62)


def render_queries(model: QueryModel, n: int) -> list[dict[str, str]]:
    rng, fake = random.Random(5), Faker()
    fake.seed_instance(5)
    return [dict(parse_qsl(model.render(rng, fake))) for _ in range(n)]


def test_a_date_range_is_drawn_as_one_and_never_refused() -> None:
    model = infer_query(history_queries(300))
    assert model is not None
    nodes = {f["key"]: f for f in model.root["fields"]}
    # The end spreads over a month, the start over two years: the end is drawn, the start
    # follows it by a span of its period's observed range.
    assert nodes["start_date"]["k"] == "after" and nodes["start_date"]["from"] == "end_date"
    assert nodes["start_date"]["sign"] == -1 and nodes["start_date"]["by"] == "period"
    assert nodes["start_date"]["gaps"]["hour"] == [0, 6]
    assert nodes["start_date"]["with"] is True
    rendered = render_queries(QueryModel.from_json(json.loads(json.dumps(model.to_json()))), 3000)
    assert sum(map(refused, rendered)) == 0
    # Both ends together in about the captured share, periods in their shares, and no end
    # after the last one captured.
    share = sum("end_date" in q for q in rendered) / len(rendered)
    assert abs(share - nodes["end_date"]["p"]) < 0.03
    assert max(q["end_date"] for q in rendered if "end_date" in q) <= TODAY.isoformat()
    hourly = [q for q in rendered if q["period"] == "hour" and "start_date" in q]
    spans = {(date.fromisoformat(q["end_date"]) - date.fromisoformat(q["start_date"])).days
             for q in hourly}  # fmt: skip
    assert spans == set(range(7))


def test_drawn_apart_the_same_queries_are_refused() -> None:
    """What the link prevents: the same fields drawn one by one (the model before it)."""
    model = infer_query(history_queries(300))
    assert model is not None
    apart = {
        **model.root,
        "fields": [
            f["fmt"] | {"key": f["key"], "p": model.root["fields"][2]["p"]}
            if f["k"] == "after"
            else f
            for f in model.root["fields"]
        ],
    }
    rendered = render_queries(QueryModel(apart), 3000)
    assert sum(map(refused, rendered)) > 300


def test_datetimes_in_a_body_keep_their_order_and_format() -> None:
    rng = random.Random(2)
    bodies = []
    for _ in range(60):
        start = datetime(2026, 11, 1, 8) + timedelta(minutes=rng.randint(0, 40_000))
        end = start + timedelta(minutes=rng.randint(15, 240))
        body = {"title": "standup", "starts_at": start.isoformat() + "Z"}
        bodies.append(json.dumps(body | {"ends_at": end.isoformat() + "Z"}).encode())
    model = infer_body(bodies)
    assert model is not None
    (tied,) = [f for f in model.root["fields"] if f["k"] == "after"]
    # Either end may be the drawn one (their spreads are alike); the gap is in seconds.
    assert {tied["key"], tied["from"]} == {"starts_at", "ends_at"} and "by" not in tied
    assert tied["sign"] == (1 if tied["key"] == "ends_at" else -1)
    assert 900.0 <= tied["gap"][0] <= tied["gap"][1] <= 14400.0
    fake = Faker()
    for _ in range(500):
        doc = json.loads(model.render(rng, fake))
        assert list(doc) == ["title", "starts_at", "ends_at"] and doc["ends_at"].endswith("Z")
        gap = datetime.fromisoformat(doc["ends_at"]) - datetime.fromisoformat(doc["starts_at"])
        assert timedelta(minutes=15) <= gap <= timedelta(hours=4)


def test_no_link_where_the_order_is_not_kept() -> None:
    rng = random.Random(3)
    queries = []
    for _ in range(50):
        a, b = (TODAY - timedelta(days=rng.randint(0, 99)) for _ in range(2))
        queries.append(f"created_after={a}&updated_after={b}")
    model = infer_query(queries)
    assert model is not None
    assert [f["k"] for f in model.root["fields"]] == ["date", "date"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"gap": [5, 1]}, "gap must be"),
        ({"gap": "wide"}, "gap must be"),
        ({"by": "period", "gaps": None}, "lacks its 'gaps'"),
        ({"unit": "week"}, "unit"),
        ({"fmt": {"k": "text", "min": 1, "max": 2}}, "unit"),
    ],
)
def test_a_bad_after_node_is_refused(change: dict[str, Any], message: str) -> None:
    model = infer_query(history_queries(100))
    assert model is not None
    doc = model.to_json()
    node = next(f for f in doc["root"]["fields"] if f["k"] == "after")
    node.update(change)
    with pytest.raises(ConfigError, match=message):
        QueryModel.from_json(doc)
    assert isinstance(BodyModel, type)
