"""A learned selection condition (models/id_select.py): which item of a list real sessions
chose for an id place, by a field of the chosen object, learned from the trace."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.models.test_correlations import ex, trace, uid
from tests.models.test_ids_outcomes import learned, signin
from tracereplay.models.correlations import Location, find_auth, find_correlations, walk_sessions
from tracereplay.models.id_model import IdModel, ids_from_json, ids_to_json
from tracereplay.models.id_select import (
    SELECT_MAX_P,
    BinomialTest,
    Selection,
    Tails,
    binomial_tails,
    describe,
)
from tracereplay.models.ids import learn_ids

SYNC = "POST /items/{id}/sync"
READ = "GET /items/{id}"
SLOT = Location("path", "id")


def items(s: int, field: str, values: list[Any]) -> list[dict[str, Any]]:
    """A list answer of session `s`: its own ids (a shared list would be constants)."""
    return [
        {"id": uid(100 * s + k), "name": f"Item {s} {k}", field: v} for k, v in enumerate(values)
    ]


def session(
    s: int,
    pick: int,
    *,
    read: int | None = None,
    field: str = "ready",
    values: list[Any] | None = None,
) -> Any:
    """Lists six items (three ready), reads the `read`-th (default `pick`), syncs the
    `pick`-th."""
    listed = items(s, field, values or [True, False, True, False, True, False])
    tok = f"tok-{s}-" + "a" * 24
    chosen, seen = listed[pick], listed[pick if read is None else read]
    return [
        signin(s),
        ex("GET", "/items/", token=tok, resp={"data": {"items": listed}}),
        ex("GET", f"/items/{seen['id']}", token=tok, resp={"data": seen}),
        ex("POST", f"/items/{chosen['id']}/sync", token=tok, resp={"data": {"synced": 1}}),
    ]  # fmt: skip


def selection(sessions: list[Any], endpoint: str = SYNC) -> Selection | None:
    _, _, ids = learned(sessions)
    return ids.selection(endpoint, SLOT)


def test_sessions_that_sync_only_ready_items_learn_ready_true() -> None:
    # Each session reads any item, then syncs a ready one (0, 2 or 4).
    sessions = [session(s, pick=2 * (s % 3), read=s % 6) for s in range(8)]
    found = selection(sessions)
    assert found == Selection("ready", True, 1.0, 0.5, 8)
    assert found.met_by({"ready": True, "name": "x"})
    assert not found.met_by({"ready": False}) and not found.met_by({}) and not found.met_by(None)
    assert not found.met_by({"ready": 1})  # a number is no boolean
    assert selection(sessions, READ) is None  # the reads chose any item


def test_no_condition_where_sessions_chose_any_item() -> None:
    assert selection([session(s, pick=s % 6) for s in range(12)]) is None


def test_no_condition_from_too_few_sessions() -> None:
    assert selection([session(s, pick=0) for s in range(4)]) is None


def test_no_condition_where_every_item_has_the_value() -> None:
    every = [True] * 6
    assert selection([session(s, pick=s % 6, values=every) for s in range(8)]) is None


def test_an_enum_value_and_not_a_name() -> None:
    states = ["active", "paused", "draft", "active", "paused", "draft"]
    found = selection(
        [session(s, pick=3 * (s % 2), field="state", values=states) for s in range(8)]
    )
    assert found is not None and (found.field, found.value) == ("state", "active")
    assert found.among == round(2 / 6, 4)


def test_a_selection_round_trips_through_the_model_file() -> None:
    _, _, ids = learned([session(s, pick=2 * (s % 3)) for s in range(8)])
    again = ids_from_json(ids_to_json(ids))
    assert again.selection(SYNC, SLOT) == ids.selection(SYNC, SLOT) is not None
    assert READ in again.describers and "GET /items/" in again.describers
    assert again.id_keys == ("id",)
    old = ids_to_json(ids)
    for target in old["targets"]:
        target.pop("select", None)  # an older model: any item
    assert ids_from_json(old).selection(SYNC, SLOT) is None
    assert ids_from_json(old).describers == frozenset()


def test_describe_takes_every_object_with_an_id() -> None:
    doc = {"data": {"items": [{"id": "a", "ok": True, "n": 3, "note": "x" * 99}, {"id": "b"}]}}
    assert describe(doc, ["id"]) == {"a": {"ok": True}, "b": {}}
    assert describe(None, ["id"]) == {} and describe([1, "x"], ["id"]) == {}


def test_a_share_random_picks_would_give_is_no_condition_until_enough_sessions_show_it() -> None:
    """Five of six items ready: eight sessions that all synced a ready one could have picked
    at random (0.83 ** 8 = 0.23); thirty could not (0.004)."""
    mostly = [True, True, True, True, True, False]
    assert selection([session(s, pick=s % 5, values=mostly) for s in range(8)]) is None
    found = selection([session(s, pick=s % 5, values=mostly) for s in range(30)])
    assert found is not None and (found.field, found.value, found.sessions) == ("ready", True, 30)


def test_a_list_answer_that_repeats_counts_each_time() -> None:
    """The same answer body read twice is two answers: the items' share weighs it twice
    (learn_selections describes each distinct answer once and counts how often it came)."""

    def twice(s: int) -> Any:
        first, *rest = session(s, pick=2 * (s % 3), read=s % 6)
        tok = f"tok-{s}-" + "a" * 24
        others = items(s + 50, "ready", [False] * 4)  # other items, none ready
        return [
            first,
            rest[0],
            rest[0],  # the same list, the same body, again
            ex("GET", "/items/", token=tok, resp={"data": {"items": others}}),
            *rest[1:],
        ]

    found = selection([twice(s) for s in range(8)])
    # 3 of 6 listed items ready, twice, and 0 of 4: 6 of 16 (once each: 3 of 10).
    assert found == Selection("ready", True, 1.0, round(6 / 16, 4), 8)


def _ids_with(sessions: list[Any], tails: Tails) -> IdModel:
    df = trace(sessions)
    walk = walk_sessions(df)
    auth = find_auth(df, find_correlations(df, walk=walk), walk=walk)
    return learn_ids(walk, auth, df["endpoint"].unique().tolist(), tails)


def test_every_targets_candidates_are_tested_at_once_and_the_tests_decide() -> None:
    """`learn_selections` asks its tails once, with every target's candidates (the model
    has its child answer: models/forked.py `Pending.ask`); scipy's tails learn what the
    model learns, and the chances given decide: none is no condition where all are."""
    sessions = [session(s, pick=2 * (s % 3), read=s % 6) for s in range(8)]
    asked: list[list[BinomialTest]] = []

    def tails(chance: float | None) -> Tails:
        def answer(tests: Sequence[BinomialTest]) -> list[float]:
            asked.append(list(tests))
            return binomial_tails(tests) if chance is None else [chance] * len(tests)

        return answer

    by_scipy = _ids_with(sessions, tails(None))
    assert asked == [[(8, 8, 0.5)]]  # ready: all 8 chosen, half the listed items
    assert binomial_tails([(8, 8, 0.5)]) == [0.5**8]  # (all 8 of 8 by chance at 0.5)
    assert ids_to_json(by_scipy) == ids_to_json(_ids_with(sessions, binomial_tails))
    assert by_scipy.selection(SYNC, SLOT) == Selection("ready", True, 1.0, 0.5, 8)
    assert _ids_with(sessions, tails(SELECT_MAX_P)).selection(SYNC, SLOT) is not None
    assert _ids_with(sessions, tails(SELECT_MAX_P * 1.01)).selection(SYNC, SLOT) is None
    asked.clear()  # sessions that chose any item: nothing to test, nothing asked
    assert (
        _ids_with([session(s, pick=s % 6) for s in range(12)], tails(0.0)).selection(SYNC, SLOT)
        is None
    )
    assert asked == []
