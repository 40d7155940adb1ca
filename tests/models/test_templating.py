"""Endpoint templating: shape rules, cardinality, names, JSON round trip, sandbox routes."""

from __future__ import annotations

import json
import random
import uuid

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracereplay.errors import ConfigError, UsageError
from tracereplay.models.shapes import cut_path, cut_paths, shaped
from tracereplay.models.templating import (
    Endpoint,
    Templater,
    add_endpoints,
    endpoint_names,
    value_kind,
)

UUID_A = "17426345-d25a-4edf-92e0-f07abb83add2"
UUID_B = "29497C77-38B0-4C70-924D-4326402EEC5F"


def uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def templates(templater: Templater) -> set[str]:
    return {str(e) for e in templater.endpoints}


def gets(paths: list[str]) -> list[tuple[str, str]]:
    return [("GET", p) for p in paths]


@pytest.mark.parametrize(
    ("segment", "kind"),
    [
        (UUID_A, "uuid"),
        (UUID_B, "uuid"),
        ("7", "int"),
        ("20261126", "int"),
        ("2026-11-26", "date"),
        ("2026-11-26T10:15:00Z", "date"),
        ("deadbeef12", "hex"),
        ("da39a3ee5e6b4b0d3255bfef95601890afd80709", "hex"),
        ("abcdefabcdefabcdef", "hex"),
        ("ada.lovelace1f2e@anon.invalid", "email"),
        ("someone%40example.com", "email"),
        ("anon_x8Kq2mZ", "token"),
        ("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "token"),
        ("aZ3kP9qLmN2xR7tY", "token"),
        ("v1", None),
        ("v2", None),
        ("api", None),
        ("health", None),
        ("data-freshness", None),
        ("execution-stats", None),
        ("refresh-cache", None),
        ("refresh-cache-v2", None),
        ("2fa-setup-step-12", None),
        ("deadbeef", None),
        ("my-first-post", None),
        ("", None),
    ],
)
def test_value_kind(segment: str, kind: str | None) -> None:
    assert value_kind(segment) == kind


def test_literal_beside_uuid_gives_two_templates() -> None:
    rng = random.Random(3)
    paths = [f"/clients/{uid(rng)}" for _ in range(40)] + ["/clients/stats"] * 12
    t = Templater.fit(gets(paths))
    assert templates(t) == {"GET /clients/stats", "GET /clients/{client_id}"}
    assert str(t.endpoint("GET", "/clients/stats")) == "GET /clients/stats"
    assert t.endpoint("GET", f"/clients/{UUID_B}") == Endpoint("GET", "/clients/{client_id}")


def test_a_single_uuid_is_still_a_parameter() -> None:
    t = Templater.fit(gets([f"/clients/{UUID_A}"] * 5 + ["/clients/stats"]))
    assert templates(t) == {"GET /clients/stats", "GET /clients/{client_id}"}


def test_short_numeric_ids_are_parameters() -> None:
    t = Templater.fit([("GET", "/orders/7"), ("GET", "/orders/12"), ("DELETE", "/orders/7")])
    assert templates(t) == {"GET /orders/{order_id}", "DELETE /orders/{order_id}"}


def test_a_small_vocabulary_stays_literal_whatever_the_mix() -> None:
    words = ["overview", "workflows", "execution-stats", "executions", "historical"]
    paths = [f"/api/v1/metrics/{w}" for w in words for _ in range(50)]
    paths += ["/api/v1/metrics/data-freshness"]  # rare, but one rare word is no parameter
    t = Templater.fit(gets(paths))
    assert len(templates(t)) == 6
    assert "GET /api/v1/metrics/data-freshness" in templates(t)


def test_many_rare_slugs_are_one_parameter_and_frequent_words_stay() -> None:
    rng = random.Random(5)
    slugs = [f"{rng.choice(['my', 'a', 'the'])}-post-number-{w}" for w in "abcdefghijklmno"]
    paths = [f"/articles/{s}" for s in slugs] + [f"/articles/{slugs[0]}/comments"]
    paths += ["/articles/popular"] * 20 + ["/articles/"] * 5
    t = Templater.fit(gets(paths))
    assert templates(t) == {
        "GET /articles/",
        "GET /articles/popular",
        "GET /articles/{article_id}",
        "GET /articles/{article_id}/comments",
    }
    # an unseen slug takes the learned parameter; the empty segment never does
    assert t.params("GET", "/articles/brand-new-slug") == {"article_id": "brand-new-slug"}
    assert str(t.endpoint("GET", "/articles/other/comments")) == (
        "GET /articles/{article_id}/comments"
    )
    assert str(t.endpoint("GET", "/articles/")) == "GET /articles/"
    assert t.to_json()["endpoints"][-2]["any_value"] == ["article_id"]


def test_few_distinct_words_are_not_slugs() -> None:
    paths = [f"/articles/post-{w}" for w in "abcde"]
    t = Templater.fit(gets(paths), min_distinct=10)
    assert len(templates(t)) == 5
    assert len(templates(Templater.fit(gets(paths), min_distinct=5))) == 1


def test_nested_rare_names_give_two_parameters() -> None:
    owners = [f"owner{w}x" for w in "abcdefghijkl"]
    paths = [f"/repos/{o}/project-{o[-2]}{i}" for o in owners for i in "pq"]
    t = Templater.fit(gets(paths), min_distinct=5)
    assert templates(t) == {"GET /repos/{repo_id}/{id}"}


def test_dates_emails_hex_and_mixed() -> None:
    paths = [
        "/reports/2026-11-26",
        "/reports/20261127/summary",
        "/users/someone%40example.com/settings",
        "/users/ada@anon.invalid/settings",
        "/commits/da39a3ee5e6b4b0d3255bfef95601890afd80709",
        f"/teams/{UUID_A}/members/42",
        "/tokens/anon_Zk3P0qQ8",
    ]
    t = Templater.fit(gets(paths))
    assert templates(t) == {
        "GET /reports/{report_id}",
        "GET /reports/{report_id}/summary",
        "GET /users/{user_id}/settings",
        "GET /commits/{commit_id}",
        "GET /teams/{team_id}/members/{member_id}",
        "GET /tokens/{token_id}",
    }
    assert t.params("GET", f"/teams/{UUID_B}/members/7") == {"team_id": UUID_B, "member_id": "7"}


@pytest.mark.parametrize(
    ("path", "template"),
    [
        (f"/api/v1/cache/client/{UUID_A}", "/api/v1/cache/client/{client_id}"),
        ("/categories/3", "/categories/{category_id}"),
        ("/statuses/3", "/statuses/{status_id}"),
        ("/api-keys/3", "/api-keys/{api_key_id}"),
        (f"/api/v1/{UUID_A}", "/api/v1/{id}"),
        ("/3/4", "/{id}/{id2}"),
        ("/nodes/3/4/nodes/5", "/nodes/{node_id}/{id}/nodes/{node_id2}"),
    ],
)
def test_parameter_names(path: str, template: str) -> None:
    assert Templater.fit([("GET", path)]).endpoint("GET", path).template == template


def test_trailing_slash_and_query() -> None:
    paths = ["/clients/", "/clients", "/clients/?limit=5", "/clients?x=1#top"]
    t = Templater.fit(gets(paths))
    assert templates(t) == {"GET /clients/", "GET /clients"}
    assert t.endpoint("GET", "/clients/?offset=10").template == "/clients/"


def test_method_is_part_of_the_endpoint() -> None:
    t = Templater.fit([("get", f"/w/{UUID_A}"), ("PATCH", f"/w/{UUID_A}")])
    assert templates(t) == {"GET /w/{w_id}", "PATCH /w/{w_id}"}
    # an unseen method on a known path keeps the path's template
    assert str(t.endpoint("delete", f"/w/{UUID_B}")) == "DELETE /w/{w_id}"


def test_unseen_paths_get_shape_rules_and_keep_unknown_literals() -> None:
    t = Templater.fit(gets(["/orders/7", "/orders/8", "/clients/stats"]))
    assert t.endpoint("GET", f"/orders/{UUID_A}").template == "/orders/{order_id}"
    assert t.endpoint("GET", "/orders/new").template == "/orders/new"
    assert t.endpoint("GET", "/orders/7/items/3").template == "/orders/{order_id}/items/{item_id}"
    assert t.endpoint("GET", "/clients/stats2").template == "/clients/stats2"
    assert t.endpoint("GET", "/brand/new/2026-01-02").template == "/brand/new/{new_id}"
    assert t.params("GET", "/orders/7/items/3") == {"order_id": "7", "item_id": "3"}


def test_full_match_wins_over_a_literal_prefix() -> None:
    rng = random.Random(9)
    paths = ["/a/stats/x"] * 5 + [f"/a/{uid(rng)}/y" for _ in range(5)]
    t = Templater.fit(gets(paths))
    assert t.endpoint("GET", "/a/stats/x").template == "/a/stats/x"
    assert t.endpoint("GET", f"/a/{UUID_A}/y").template == "/a/{a_id}/y"


def test_json_round_trip_and_determinism() -> None:
    rng = random.Random(11)
    pairs = [("GET", f"/clients/{uid(rng)}") for _ in range(30)]
    pairs += [("GET", f"/posts/slug-{w}") for w in "abcdefghijklmnop"]
    pairs += [("POST", "/clients/"), ("GET", "/clients/stats"), ("GET", "/health")]
    t = Templater.fit(pairs)
    text = json.dumps(t.to_json(), sort_keys=True)
    for seed in range(3):
        shuffled = list(pairs)
        random.Random(seed).shuffle(shuffled)
        assert json.dumps(Templater.fit(shuffled).to_json(), sort_keys=True) == text
    again = Templater.from_json(json.loads(text))
    assert again.to_json() == t.to_json()
    for method, path in [*pairs, ("GET", "/posts/unseen-slug"), ("GET", "/clients/x/y")]:
        assert again.endpoint(method, path) == t.endpoint(method, path)
        assert again.params(method, path) == t.params(method, path)


def test_degenerate_and_bad_input() -> None:
    empty = Templater.fit([])
    assert empty.to_json()["endpoints"] == []
    assert empty.endpoint("GET", "/x/5").template == "/x/{x_id}"
    assert empty.endpoint("GET", "").template == "/"
    with pytest.raises(UsageError):
        Templater.fit([], min_distinct=1)
    with pytest.raises(ConfigError):
        Templater.from_json({"endpoints": [{"template": "/x"}]})


def test_add_endpoints() -> None:
    df = pd.DataFrame(
        {"method": ["GET", "get", "POST"], "path": [f"/c/{UUID_A}", "/c/stats", "/c/"]}
    )
    out = add_endpoints(df, Templater.fit(zip(df["method"], df["path"], strict=True)))
    assert out["endpoint"].tolist() == ["GET /c/{c_id}", "GET /c/stats", "POST /c/"]
    assert out["path_params"].tolist() == [{"c_id": UUID_A}, {}, {}]
    assert "endpoint" not in df.columns
    empty = add_endpoints(df.iloc[:0], Templater.fit([]))
    assert list(empty.columns) == ["method", "path", "endpoint", "path_params"]


# --- acceptance: the sandbox's routes (demo/README.md), with random ids ------------------

SANDBOX_ROUTES = [
    ("GET", "/health"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/auth/me"),
    ("GET", "/api/v1/clients/"),
    ("POST", "/api/v1/clients/"),
    ("GET", "/api/v1/clients/{client_id}"),
    ("PUT", "/api/v1/clients/{client_id}"),
    ("DELETE", "/api/v1/clients/{client_id}"),
    ("POST", "/api/v1/clients/{client_id}/configure"),
    ("POST", "/api/v1/clients/{client_id}/test-connection"),
    ("POST", "/api/v1/clients/{client_id}/sync"),
    ("GET", "/api/v1/clients/{client_id}/export"),
    ("GET", "/api/v1/metrics/overview"),
    ("GET", "/api/v1/metrics/workflows"),
    ("GET", "/api/v1/metrics/execution-stats"),
    ("GET", "/api/v1/metrics/executions"),
    ("GET", "/api/v1/metrics/historical"),
    ("GET", "/api/v1/metrics/data-freshness"),
    ("POST", "/api/v1/metrics/refresh-cache"),
    ("GET", "/api/v1/workflows/"),
    ("GET", "/api/v1/workflows/{workflow_id}"),
    ("PATCH", "/api/v1/workflows/{workflow_id}"),
    ("GET", "/api/v1/system/health"),
    ("GET", "/api/v1/system/health/detailed"),
    ("GET", "/api/v1/cache/stats"),
    ("DELETE", "/api/v1/cache/clear"),
    ("DELETE", "/api/v1/cache/client/{client_id}"),
]


def sandbox_requests(seed: int, n: int, n_clients: int) -> list[tuple[str, str]]:
    """`n` requests over every sandbox route (each at least once), skewed like real use,
    ids drawn from pools, a query string on some."""
    rng = random.Random(seed)
    clients = [uid(rng) for _ in range(n_clients)]
    workflows = [uid(rng) for _ in range(4 * n_clients)]
    weights = [rng.paretovariate(1.2) for _ in SANDBOX_ROUTES]
    routes = list(SANDBOX_ROUTES) + rng.choices(SANDBOX_ROUTES, weights, k=n - len(weights))
    out = []
    for method, template in routes:
        path = template.replace("{client_id}", rng.choice(clients))
        path = path.replace("{workflow_id}", rng.choice(workflows))
        if rng.random() < 0.3:
            path += f"?client_id={rng.choice(clients)}&limit={rng.randint(1, 50)}"
        out.append((method, path))
    return out


@pytest.mark.parametrize(("seed", "n", "n_clients"), [(1, 1000, 12), (2, 300, 2), (3, 5000, 40)])
def test_sandbox_routes_are_learned_exactly(seed: int, n: int, n_clients: int) -> None:
    t = Templater.fit(sandbox_requests(seed, n, n_clients))
    assert templates(t) == {f"{m} {p}" for m, p in SANDBOX_ROUTES}


# --- the vectorized forms give the per-path answers --------------------------------------

SEGMENT_PIECES = [
    UUID_A, UUID_B, "7", "20261126", "2026-11-26", "2026-11-26T10:15:00Z", "2026-11-26t10:15",
    "deadbeef12", "deadbeef", "abcdefabcdefabcdef", "ada@anon.invalid", "someone%40example.com",
    "anon_x", "anon_", "eyJa.b.c", "aZ3kP9qLmN2xR7tY", "refresh-cache-v2", "2fa-setup-step-12",
    "v1", "api", "", " ", "a b", "é", "%", "%7E", "x\x1c", "a@b.c d", "AbCdEfGh12345678_x",
    "0x1F", "12ab", "-", "~", "=", "a.b", "tab\there",
]  # fmt: skip


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.one_of(st.sampled_from(SEGMENT_PIECES), st.text(max_size=24)), max_size=40))
def test_vectorized_shapes_agree_with_value_kind(segments: list[str]) -> None:
    segments = [s.replace("/", "") for s in segments]
    expected = [value_kind(s) is not None for s in segments]
    assert shaped(pa.array(segments, pa.string())).tolist() == expected


CUT_PIECES = ["/a?x=1", "/b", "", "/c#f", "/d?y#z", "/e/", "?q", "/é?ü"]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(CUT_PIECES), max_size=12), st.integers(0, 12), st.integers(0, 12))
def test_paths_cut_in_arrow_are_cut_path_in_any_slice(paths: list[str], a: int, b: int) -> None:
    # A slice's strings only: a "?" or an empty path outside it changes nothing in it.
    start, stop = sorted((min(a, len(paths)), min(b, len(paths))))
    array = pa.array(paths, pa.string()).slice(start, stop - start)
    assert cut_paths(array).to_pylist() == [cut_path(p) for p in paths[start:stop]]


def test_shapes_check_can_fail() -> None:
    # A deliberately wrong answer is told apart: the check above is not vacuous.
    assert shaped(pa.array(["v1", UUID_A])).tolist() != [True, True]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_endpoints_per_skeleton_equal_endpoints_per_path(seed: int) -> None:
    requests = sandbox_requests(seed, 800, 9)
    rng = random.Random(seed)
    requests += [("GET", f"/articles/{rng.choice(['a', 'b-c', 'd%20e'])}-{i}") for i in range(30)]
    requests += [("GET", "/x?y#z"), ("POST", ""), ("GET", "/clients/stats")]
    requests += [("PUT", "/a/" + UUID_B), ("GET", "/a/%41%42/" + UUID_A)]
    t = Templater.fit(requests)
    methods, paths = [m for m, _ in requests], [p for _, p in requests]
    assert endpoint_names(t, methods, paths) == [str(t.endpoint(m, p)) for m, p in requests]
    other = Templater.fit(requests[: len(requests) // 3])  # applied to paths it never saw
    assert endpoint_names(other, methods, paths) == [str(other.endpoint(m, p)) for m, p in requests]
