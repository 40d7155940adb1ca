"""Fuzz: model files with a value anywhere replaced (NaN, inf, huge, negative, wrong type,
unpaired surrogates) or a key removed, through `synthesize` and the replay's parent checks:
exit 0 or 2, never a traceback, nothing left in --out after a failure; and no accepted model
can make the replay address anything but --host."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import T0, make_record, write_trace
from tests.fuzz.harness import FUZZ, assert_clean, scratch
from tracereplay.errors import TraceReplayError
from tracereplay.models.model import build_model, load_model
from tracereplay.replay.checks import check
from tracereplay.replay.run import ReplaySettings
from tracereplay.replay.sources import plan_from_model
from tracereplay.replay.urls import outgoing_url

LEAVES = (
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats()
    | st.sampled_from([0, -1, 1e12, 1e308, -1e-300, "", "x", "//h:1/x", "HTTP://h:1/x",
                       "@h:1/x", "/a/{p}", "9999-12-31T23:59:59+00:00", "\\ud800", "END"])
    | st.lists(st.sampled_from(["\\ud800", "/", "a", "\\x00", "{", "}"]), max_size=6).map("".join)
)  # fmt: skip
VALUES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    rows = []
    for i in range(30):
        t = T0 + timedelta(seconds=2 * i)
        body = json.dumps({"name": f"n{i}", "count": i, "tags": ["a", "b"]}).encode()
        for j, (method, path) in enumerate([("POST", "/api/login"), ("GET", f"/api/items/{i}"),
                                            ("PUT", f"/api/items/{i}")]):  # fmt: skip
            rows.append(make_record(
                ts=t + timedelta(seconds=0.4 * j), session=f"s{i}", method=method, path=path,
                query=f"page={i % 3}" if method == "GET" else None,
                req_body=body if method != "GET" else None,
                req_headers=(("content-type", "application/json"),),
                resp_body=json.dumps({"access_token": f"t{i}", "id": i}).encode(),
            ))  # fmt: skip
    trace = write_trace(tmp_path_factory.mktemp("fuzz-model") / "t", rows)
    return build_model(trace)


def _places(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _places(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _places(value, (*prefix, i))
    return out


def _change(doc: Any, place: tuple[Any, ...], value: Any, delete: bool) -> None:
    node = doc
    for key in place[:-1]:
        node = node[key]
    if delete and isinstance(node, dict):
        del node[place[-1]]
    else:
        node[place[-1]] = value


def test_models_with_a_bad_value_anywhere(model: dict[str, Any], tmp_path: Path) -> None:
    places = _places(model)
    ran: list[int] = []

    @settings(FUZZ, max_examples=200)
    @given(st.lists(st.tuples(st.integers(0, len(places) - 1), VALUES, st.booleans()),
                    min_size=1, max_size=3))  # fmt: skip
    def check_model_file(changes: list[tuple[int, Any, bool]]) -> None:
        ran.append(1)
        doc = json.loads(json.dumps(model))
        for index, value, delete in changes:
            try:
                _change(doc, places[index], value, delete)
            except (KeyError, IndexError, TypeError):
                continue  # an earlier change removed or retyped this place
        with scratch(tmp_path) as work:
            path = work / "m.model.json"
            path.write_text(json.dumps(doc), encoding="utf-8", errors="surrogatepass")
            out = work / "synth"
            assert_clean(["synthesize", str(path), "--out", str(out), "--duration", "5s"], out=out)
            settings_ = ReplaySettings(source=path, host="http://127.0.0.1:9", out=work / "run")
            try:
                checked = check(settings_)  # what the parent does before Locust starts
            except TraceReplayError:
                return
            # Accepted: every request its sessions would send is a URL on --host.
            plan = plan_from_model(load_model(path), duration_s=5.0, seed=1)
            for session in plan.sessions[:20]:
                for request in session.requests:
                    url = outgoing_url(checked.origin, request.path, request.query)
                    assert url.text.startswith("http://127.0.0.1:9/"), url

    check_model_file()
    assert len(ran) >= 200
