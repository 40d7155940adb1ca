"""What the model learns for safe, stateful replay: id producers and own-object writes,
creates and their DELETE, body-storing POSTs (models/ids.py); login outcomes, roles and
privileged endpoints per behavior, captured addresses (models/outcomes.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.models.test_correlations import ex, trace, uid
from tracereplay.errors import ConfigError
from tracereplay.models.behaviors import END, Behavior, ThinkTime
from tracereplay.models.correlations import Location, find_auth, find_correlations, walk_sessions
from tracereplay.models.ids import (
    IdModel,
    IdTarget,
    check_ids,
    ids_from_json,
    ids_to_json,
    is_id_place,
    learn_ids,
)
from tracereplay.models.outcomes import (
    PRIVILEGED,
    UNPRIVILEGED,
    DistinctPaths,
    Outcomes,
    SessionOutcome,
    behavior_posterior,
    draw_outcome,
    outcomes_from_json,
    outcomes_to_json,
    path_log_likelihood,
    place_outcomes,
    privileged_endpoints,
    session_facts,
    session_outcomes,
)

ID = Location("path", "id")
DATA_ID = Location("json", "/data/id")
LISTED = Location("json", "/data/items/*/id")
SEEDED = [uid(500 + n) for n in range(3)]


def signin(s: int, role: str = "admin", status: int = 200) -> dict[str, Any]:
    tokens = {"token": f"tok-{s}-" + "a" * 24}
    user = {"id": uid(1000 + s), "role": role}
    return ex("POST", "/auth/login", body={"email": f"u{s}@example.test", "password": "x"},
              status=status,
              resp={"status": "success", "data": {**tokens, "user": user}} if status < 400
              else {"status": "error"})  # fmt: skip


def owner_session(s: int) -> list[dict[str, Any]]:
    """Creates an item, renames it, configures it (body given back), syncs, deletes it."""
    tok, item = f"tok-{s}-" + "a" * 24, uid(s)
    url = f"https://hook-{s}.example.test"
    return [
        signin(s),
        ex("POST", "/items/", token=tok, body={"name": f"Item {s}"}, status=201,
           resp={"data": {"id": item, "name": f"Item {s}"}}),
        ex("PUT", f"/items/{item}", token=tok, body={"name": "renamed"},
           resp={"data": {"id": item}}),
        ex("POST", f"/items/{item}/configure", token=tok, body={"url": url},
           resp={"data": {"id": item, "url": url}}),
        ex("POST", f"/items/{item}/sync", token=tok, resp={"data": {"synced": 3}}),
        ex("DELETE", f"/items/{item}", token=tok, resp={"data": {"deleted": True}}),
    ]  # fmt: skip


def reader_session(s: int, role: str = "client") -> list[dict[str, Any]]:
    """Lists the seeded items and edits one of them: a write to an object it did not make."""
    tok = f"tok-{s}-" + "a" * 24
    pick = SEEDED[s % 3]
    return [
        signin(s, role),
        ex("GET", "/items/", token=tok, resp={"data": {"items": [{"id": i} for i in SEEDED]}}),
        ex("GET", f"/items/{pick}", token=tok, resp={"data": {"id": pick}}),
        ex("PUT", f"/items/{pick}", token=tok, body={"name": "theirs"}),
    ]  # fmt: skip


def learned(sessions: list[list[dict[str, Any]]]) -> Any:
    df = trace(sessions)
    walk = walk_sessions(df)
    rules = find_correlations(df, walk=walk)
    auth = find_auth(df, rules, walk=walk)
    return df, auth, learn_ids(walk, auth, df["endpoint"].unique().tolist())


def test_producers_own_writes_creates_and_their_delete() -> None:
    _, auth, ids = learned(
        # Two readers of five sessions: the listed ids are not constants of the API.
        [owner_session(s) for s in range(3)] + [reader_session(s) for s in range(3, 5)]
    )
    assert auth.login_endpoint == "POST /auth/login"
    put = next(t for t in ids.targets if t.endpoint == "PUT /items/{id}" and t.target == ID)
    kinds = {(p.endpoint, p.kind) for p in put.producers}
    assert ("POST /items/", "create") in kinds  # the owners renamed what they made
    assert ("GET /items/", "list") in kinds  # the readers, a listed (seeded) item
    assert (put.requests, put.own) == (5, 3)
    (creation,) = ids.creations
    assert (creation.endpoint, creation.source) == ("POST /items/", DATA_ID)
    assert (creation.delete, creation.param, creation.learned_from) == (
        "DELETE /items/{id}", "id", "trace",
    )  # fmt: skip
    assert ids.stores_body == ("POST /items/{id}/configure",)  # the sync sends no body
    assert [p.endpoint for p in ids.list_producers()] == ["GET /items/"]
    assert ids.places("DELETE /items/{id}") == (ID,)


def test_a_delete_never_seen_is_found_from_the_template() -> None:
    sessions = [owner_session(s)[:3] for s in range(3)]  # create and rename, no delete
    sessions += [[signin(9), ex("DELETE", f"/items/{SEEDED[0]}", token="tok-9-" + "a" * 24)]]
    _, _, ids = learned(sessions)
    (creation,) = ids.creations
    assert (creation.delete, creation.param, creation.learned_from) == (
        "DELETE /items/{id}", "id", "template",
    )  # fmt: skip


def test_id_places() -> None:
    assert is_id_place(Location("path", "client_id"), [])
    assert not is_id_place(Location("path", "2"), [])  # a literal segment's index
    assert is_id_place(Location("query", "client_id"), ["x"])
    assert is_id_place(Location("json", "/workflowId"), ["x"])
    assert is_id_place(Location("form", "parent"), [uid(1)])  # UUID values
    assert not is_id_place(Location("query", "period"), ["day"])
    assert not is_id_place(Location("cookie", "session_id"), ["x"])  # a credential


def test_ids_round_trip_and_checks() -> None:
    _, _, ids = learned([owner_session(s) for s in range(3)])
    assert ids_from_json(ids_to_json(ids)) == ids
    assert ids_from_json(None).targets == ()  # an older model: nothing known
    check_ids(ids, [t.endpoint for t in ids.targets] + ["POST /items/", "DELETE /items/{id}",
              "PUT /items/{id}", "POST /items/{id}/configure", "POST /auth/login"])  # fmt: skip
    with pytest.raises(ConfigError, match="unknown endpoint"):
        check_ids(ids, ["GET /items/"])
    bad = ids_to_json(ids)
    bad["targets"][0]["producers"][0]["kind"] = "guess"
    with pytest.raises(ConfigError, match="ids"):
        ids_from_json(bad)
    with pytest.raises(ConfigError):
        ids_from_json([1, 2])


# ---- outcomes ---------------------------------------------------------------------------


def _outcomes(df: Any, auth: Any, behaviors: list[Behavior]) -> Outcomes:
    """The outcomes as `build_model` learns them: the facts, then the placement."""
    facts = session_facts(df, auth)
    assert facts is not None
    return place_outcomes(facts, behaviors)


def chain(name: str, share: float, path: list[str]) -> Behavior:
    moves = {a: {b: 1.0} for a, b in zip(path, [*path[1:], END], strict=True)}
    flat = ThinkTime(tuple(0.0 for _ in range(21)), 0, "none")
    return Behavior(name, share, 10, {path[0]: 1.0}, moves, {}, float(len(path)), flat)


def random_chain(rng: np.random.Generator, name: str, endpoints: list[str]) -> Behavior:
    """A chain over some of `endpoints` (moves it never made included), END among its moves."""

    def shares(to: list[str]) -> dict[str, float]:
        kept = [t for t in to if rng.random() < 0.6]
        weights = rng.random(len(kept))
        return {t: float(w / weights.sum()) for t, w in zip(kept, weights, strict=True)}

    moves = {a: shares([*endpoints, END]) for a in endpoints if rng.random() < 0.8}
    flat = ThinkTime(tuple(0.0 for _ in range(21)), 0, "none")
    share = float(rng.random())
    return Behavior(name, share, 10, shares(endpoints), moves, {}, 3.0, flat)


def test_paths_are_scored_at_once_as_one_at_a_time() -> None:
    """Placement scores every distinct path under each chain at once: the same floats as
    `path_log_likelihood` (its logs added in its order), the same likeliest behavior as
    `behavior_posterior`; repeated, empty and unknown paths included."""
    rng = np.random.default_rng(7)
    endpoints = [f"GET /e{i}" for i in range(9)]
    for _ in range(20):
        behaviors = [random_chain(rng, f"b{i}", endpoints) for i in range(int(rng.integers(1, 5)))]
        known = [*endpoints, "GET /never-seen"]
        paths = [[known[int(i)] for i in rng.integers(0, len(known), int(rng.integers(0, 30)))]
                 for _ in range(60)]  # fmt: skip
        paths += [*paths[:10], []]
        distinct = DistinctPaths.of(paths)
        rows = distinct.of_session
        for b in behaviors:
            at_once = distinct.log_likelihoods(b)[rows]
            assert at_once.tolist() == [path_log_likelihood(b, path) for path in paths]
        likeliest = distinct.likeliest(behaviors)[rows]
        one_by_one = [int(np.argmax(behavior_posterior(behaviors, path))) for path in paths]
        assert likeliest.tolist() == one_by_one
        assert len(set(rows.tolist())) == len({tuple(p) for p in paths})


def admin_session(s: int) -> list[dict[str, Any]]:
    """Reads and edits like a client user, and creates: the broadest role."""
    tok = f"tok-{s}-" + "a" * 24
    create = ex("POST", "/items/", token=tok, body={"name": "new"}, status=201,
                resp={"data": {"id": uid(s)}})  # fmt: skip
    return [signin(s, "admin"), *reader_session(s, "admin")[1:], create]


def test_roles_privileges_and_failed_logins() -> None:
    sessions = [admin_session(s) for s in range(3)]
    sessions += [reader_session(s, "client") for s in range(3, 7)]
    sessions += [[signin(s, status=401), ex("GET", "/items/", status=401)] for s in range(7, 9)]
    df = trace(sessions)
    rules = find_correlations(df)
    auth = find_auth(df, rules)
    field, per_session = session_outcomes(df, auth)
    assert field == Location("json", "/data/user/role")
    assert [o.role for o in per_session] == ["admin"] * 3 + ["client"] * 4 + [None] * 2
    assert [o.login for o in per_session] == ["ok"] * 7 + ["failed"] * 2
    read = ["POST /auth/login", "GET /items/", "GET /items/{id}", "PUT /items/{id}"]
    behaviors = [
        chain("b1", 0.4, [*read, "POST /items/"]),
        chain("b2", 0.4, read),
        chain("b3", 0.2, ["POST /auth/login", "GET /items/"]),
    ]
    outcomes = _outcomes(df, auth, behaviors)
    assert outcomes.roles == {"admin": 3, "client": 4}
    # Only admins created, and admins did all that clients did: creating is theirs alone.
    # Clients used nothing admins did not, so nothing is privileged to them.
    assert outcomes.privileged == {"POST /items/": "admin"}
    assert (outcomes.logins, outcomes.failed_logins) == (9, 2)
    assert outcomes.behaviors["b3"].failed_share == 1.0
    assert outcomes.behaviors["b2"].roles == {"client": 1.0}
    assert outcomes.behaviors["b1"].roles == {"admin": 1.0}
    assert outcomes_from_json(outcomes_to_json(outcomes)) == outcomes
    with pytest.raises(ConfigError):
        outcomes_from_json({"behaviors": {"b1": {"roles": {}, "logins": 1, "failed_share": 2}}})


def test_without_a_role_field_403s_show_the_privileged() -> None:
    tok = "tok-{}-" + "a" * 24
    sessions = [
        [ex("POST", "/auth/login", body={"email": "a@example.test"},
            resp={"data": {"token": tok.format(s)}}),
         ex("DELETE", f"/items/{SEEDED[0]}", token=tok.format(s), status=200 if s < 2 else 403)]
        for s in range(4)
    ]  # fmt: skip
    df = trace(sessions)
    auth = find_auth(df, find_correlations(df))
    _, per_session = session_outcomes(df, auth)
    assert [o.role for o in per_session] == [PRIVILEGED] * 2 + [UNPRIVILEGED] * 2


def test_draw_outcome_needs_the_privileged_role_and_keeps_the_failed_share() -> None:
    login, create, read = "POST /auth/login", "POST /items/", "GET /items/"
    behaviors = [chain("b1", 0.5, [login, create]), chain("b2", 0.5, [login, read])]
    outcomes = outcomes_from_json(
        {"privileged": {create: "admin"}, "addresses": 3,
         "behaviors": {"b1": {"roles": {"admin": 1.0}, "logins": 10, "failed_share": 0.0},
                       "b2": {"roles": {"admin": 0.25, "client": 0.75}, "logins": 10,
                              "failed_share": 0.5}}}
    )  # fmt: skip
    rng = np.random.default_rng(1)
    draws = [draw_outcome(outcomes, behaviors, [login, read], login, rng) for _ in range(2000)]
    roles = [r for r, _ in draws]
    assert 0.70 < roles.count("client") / len(roles) < 0.80
    assert 0.45 < sum(f for _, f in draws) / len(draws) < 0.55
    for _ in range(50):  # a session that creates needs the role that alone could
        assert draw_outcome(outcomes, behaviors, [login, read, create], login, rng)[0] == "admin"
    assert draw_outcome(outcomes, behaviors, [read], login, rng)[1] is False  # no login


def test_a_role_named_admin_is_the_broad_one_even_when_clients_used_more_endpoints() -> None:
    """A short capture where client users wandered more than the one admin: the create
    only the admin made is still the admin's (a client account sent it would get 403)."""
    both = frozenset({"GET /items/"})
    outcomes = [
        SessionOutcome("admin", "ok", both | {"POST /items/"}),
        SessionOutcome("client", "ok", both | {"GET /a", "GET /b", "GET /c"}),
        SessionOutcome("client", "ok", both | {"GET /a"}),
    ]
    assert privileged_endpoints(outcomes)["POST /items/"] == "admin"
    # Without a role named like a privileged one, breadth decides (the old rule).
    renamed = [SessionOutcome("blue" if o.role == "admin" else "green", o.login, o.used)
               for o in outcomes]  # fmt: skip
    assert "POST /items/" not in privileged_endpoints(renamed)


def test_id_places_are_computed_once_per_endpoint_and_model() -> None:
    """Template parameters first, then the learned places, each once; the answer is kept per
    endpoint and per model (asked twice per replayed request)."""
    query = Location("query", "client_id")
    put = IdTarget("PUT /items/{id}", ID, (), 1, 1, 0)
    read = IdTarget("GET /items/{id}/runs", query, (), 1, 1, 0)
    model = IdModel(targets=(read, put, IdTarget("GET /items/{id}/runs", ID, (), 1, 1, 0)))
    assert model.id_places("GET /items/{id}/runs") == (ID, query)
    assert model.id_places("PUT /items/{id}") == (ID,)
    assert model.id_places("GET /items/{id}/runs?x=1") == (ID,)  # learned for another
    assert model.id_places("DELETE /a/{a_id}/b/{b_id}") == (
        Location("path", "a_id"), Location("path", "b_id"),
    )  # fmt: skip
    assert model.id_places("GET /health") == ()
    assert model.id_places("GET /items/{id}/runs") is model.id_places("GET /items/{id}/runs")
    # Another model's answer for the same endpoint is its own, not the first model's.
    assert IdModel(targets=(put,)).id_places("GET /items/{id}/runs") == (ID,)
    assert ids_from_json(ids_to_json(model)) == model  # the kept answers are not the model


def test_logins_after_a_session_s_first_are_counted_with_how_many_were_refused() -> None:
    """A client's next, mistyped login keyed to its previous session (by its connection)
    is no session's first login: the model keeps the share of such logins refused, and a
    synthesized session's later logins are refused with it."""
    from dataclasses import replace

    from tracereplay.replay.plan import PlannedRequest
    from tracereplay.replay.sources import _refuse_later_logins

    sessions = [reader_session(s, "client") for s in range(4)]
    sessions[0] = [*sessions[0], signin(0, "client", status=401)]
    sessions[1] = [*sessions[1], signin(1, "client", status=401)]
    sessions[2] = [*sessions[2], signin(2, "client")]
    df = trace(sessions)
    auth = find_auth(df, find_correlations(df))
    outcomes = _outcomes(df, auth, [])
    assert (outcomes.logins, outcomes.failed_logins) == (4, 0)  # first logins: all signed in
    assert (outcomes.later_logins, outcomes.later_failed_logins) == (3, 2)
    assert outcomes_from_json(outcomes_to_json(outcomes)) == outcomes
    assert outcomes_from_json({}).later_failed_share == 0.0  # older models: none refused

    login = PlannedRequest("POST /auth/login", "POST", "/auth/login")
    read = PlannedRequest("GET /items/", "GET", "/items/")
    walk = (login, read, login, read, login)
    refused = [
        [r.login_refused for r in _refuse_later_logins(walk, login.endpoint, 2 / 3,
                                                       np.random.default_rng([7, i]))]
        for i in range(300)
    ]  # fmt: skip
    assert all(not r[0] and not r[1] and not r[3] for r in refused)  # the first login: never
    later = [r[i] for r in refused for i in (2, 4)]
    assert 0.58 < sum(later) / len(later) < 0.75
    assert _refuse_later_logins(walk, login.endpoint, 0.0, np.random.default_rng(1)) == walk
    assert _refuse_later_logins((login, read), login.endpoint, 1.0, np.random.default_rng(1)) == (
        login, read,
    )  # fmt: skip
    assert replace(login, login_refused=True) != login
    # After a failed first login the next one is the corrected retry: never refused.
    retried = _refuse_later_logins(walk, login.endpoint, 1.0, np.random.default_rng(1), True)
    assert [r.login_refused for r in retried] == [False, False, False, False, True]


def test_a_first_login_fails_as_often_as_the_sessions_that_did_the_same_next_failed() -> None:
    """Sessions whose first login failed signed in again right after; those that went on
    had signed in: a synthesized session fails its first login by what it does next."""
    sessions = [reader_session(s, "client") for s in range(6)]
    for s in (0, 1):  # a mistyped password, then the right one
        sessions[s] = [signin(s, "client", status=401), *sessions[s]]
    df = trace(sessions)
    auth = find_auth(df, find_correlations(df))
    login, read = auth.login_endpoint, "GET /items/"
    behaviors = [chain("b", 1.0, [login, read])]
    outcomes = _outcomes(df, auth, behaviors)
    assert outcomes.after_first_login == {"login": (2, 2), "other": (4, 0)}
    assert outcomes_from_json(outcomes_to_json(outcomes)) == outcomes
    assert outcomes.failed_odds("login") == 3.0 and outcomes.failed_odds("other") == 0.0
    assert outcomes.failed_odds("end") == 1.0  # never seen: the behavior's share as it is
    rng = np.random.default_rng(3)
    again = [draw_outcome(outcomes, behaviors, [login, login, read], login, rng)[1]
             for _ in range(200)]  # fmt: skip
    on = [draw_outcome(outcomes, behaviors, [login, read], login, rng)[1] for _ in range(200)]
    assert all(again) and not any(on)  # before: a third of each, unrelated to what follows
    older = outcomes_from_json({**outcomes_to_json(outcomes), "after_first_login": None})
    assert older.failed_odds("other") == 1.0
