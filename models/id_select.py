"""Which item of a list real sessions chose for an id place: a selection condition.

A person does not sync any client of the list: they sync one whose page said the n8n
connection is configured. For an id place fed by a list producer, the condition is one
field of the chosen object (a boolean, or a string of a small set) that holds one value
in at least SELECT_MIN_CHOSEN_SHARE of the choices (a session's object, once) and clearly
less often among all the items the list answers held: that many chosen objects with the
value would come from random picks of the listed items with a chance of at most
SELECT_MAX_P (scipy's binomial test, every target's at once: `binomial_tails`, which the
model asks its child for, where scipy is imported already). The chosen object's fields
are the latest ones an answer of its session showed for it before the use (a list item,
a read, the answer to a change): the object as the person saw it when they chose.

Learned from the trace by `learn_selections` (models/ids.py stores it on the id target);
`describe` is shared with the replay, which keeps the fields it learns the same way and
picks a live id that meets the condition where the one it would take does not.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .correlations import Location, Walk, answered_ok

SELECT_MIN_CHOSEN_SHARE = 0.95
"""Share of the uses whose chosen object had the value."""
SELECT_MAX_P = 0.01
"""... and a random pick of the listed items would give as many with at most this chance
(one-sided binomial test at the items' share)."""
SELECT_MIN_SESSIONS = 5
"""Sessions whose use had a described object, to learn a condition at all."""
ENUM_MAX_VALUES = 8
"""A string field with more distinct values among the items is no condition (a name)."""
_MAX_TEXT = 40
_MAX_DEPTH = 6

FieldValue = bool | str
Fields = dict[str, FieldValue]
BinomialTest = tuple[int, int, float]
"""(k, n, p): k of n chosen objects had the value, which a random pick has at p."""
Tails = Callable[[Sequence[BinomialTest]], list[float]]
"""The chance of each test's k or more (`binomial_tails`, here or in the model's child)."""


def binomial_tails(tests: Sequence[BinomialTest]) -> list[float]:
    """Per (k, n, p), the one-sided binomial test's p-value: the chance of k or more
    successes in n draws at p (scipy.stats, imported where a model is built, never by
    synthesize)."""
    from scipy.stats import binomtest

    return [float(binomtest(k, n, p, alternative="greater").pvalue) for k, n, p in tests]


@dataclass(frozen=True)
class Selection:
    """Requests of a target chose an object whose `field` was `value`: `chosen` share of
    the `sessions`' described uses, `among` share of the lists' items."""

    field: str
    value: FieldValue
    chosen: float
    among: float
    sessions: int

    def met_by(self, fields: Mapping[str, object] | None) -> bool:
        """Whether an object with these fields meets it (unknown: no)."""
        if not fields or self.field not in fields:
            return False
        seen = fields[self.field]
        return type(seen) is type(self.value) and seen == self.value

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "value": self.value,
            "chosen": self.chosen,
            "among": self.among,
            "sessions": self.sessions,
        }

    @staticmethod
    def from_json(data: Any) -> Selection:
        value = data["value"]
        if not isinstance(value, bool | str):
            raise ValueError(f"selection value {value!r}")
        return Selection(
            str(data["field"]), value, float(data["chosen"]), float(data["among"]),
            int(data["sessions"]),
        )  # fmt: skip


def parse_json(body: object) -> object:
    """A JSON body (bytes or text) parsed, None when it is not JSON."""
    if not isinstance(body, bytes | bytearray | str):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def describe(doc: object, id_keys: Iterable[str]) -> dict[str, dict[str, FieldValue]]:
    """Every object of a JSON answer that has one of `id_keys` (`id`): its id as text →
    its boolean and short string fields (the later of two descriptions of one id wins)."""
    keys = tuple(id_keys)
    # Each id's last object, in the order the ids first come, and only those described:
    # an answer repeats an id in many objects (each execution names its client; cap20's
    # walk: 59 k objects' fields made for 7 k kept, 0.27 -> 0.13 s).
    last: dict[str, dict[str, Any]] = {}
    for obj in _objects(doc):
        for k in keys:
            if k in obj:
                ident = obj[k]
                if ident is not None and not isinstance(ident, bool | dict | list):
                    last[str(ident)] = obj
                break
    return {ident: object_fields(obj, keys) for ident, obj in last.items()}


def object_fields(obj: Mapping[str, object], id_keys: tuple[str, ...]) -> dict[str, FieldValue]:
    """An object's boolean and short string fields, its id left out."""
    return {
        k: v
        for k, v in obj.items()
        if k not in id_keys
        and (isinstance(v, bool) or (isinstance(v, str) and len(v) <= _MAX_TEXT))
    }


def _listed_pairs(items: Iterable[dict[str, Any]], id_key: str) -> tuple[tuple[str, Any], ...]:
    """The (field, value) pairs of `object_fields(item, (id_key,))` of every item, one
    after the other (of parsed JSON: exact bools and strings, told by their type)."""
    return tuple(
        [
            (k, v)
            for item in items
            for k, v in item.items()
            if k != id_key and ((kind := type(v)) is bool or (kind is str and len(v) <= _MAX_TEXT))
        ]
    )


def items_at(doc: object, source: Location) -> list[dict[str, Any]]:
    """The objects that hold a list source's values (`/data/items/*/id` → each item)."""
    parts = source.key.split("/")[1:-1]
    return [o for o in nodes_at(doc, parts) if isinstance(o, dict)]


def id_key(source: Location) -> str:
    """The field an answer's objects hold their id in (`/data/items/*/id` → `id`)."""
    return source.key.rsplit("/", 1)[-1]


def learn_selections(
    walk: Walk,
    targets: Mapping[tuple[str, Location], Iterable[tuple[str, Location, str]]],
    describers: Iterable[str],
    tails: Tails = binomial_tails,
) -> dict[tuple[str, Location], Selection]:
    """A condition per target (endpoint, place) whose producers (endpoint, source, kind)
    include a list; objects are described by the answers of the producers, of the
    `describers` (state changes whose answer shows the object) and of the GETs that name
    an object in their path. `tails` tests every target's candidates at once (asked only
    when some value is chosen often enough to test)."""
    lists = {
        key: found
        for key, producers in targets.items()
        if (found := [(e, s) for e, s, kind in producers if kind == "list" and s.where == "json"])
    }
    if not lists:
        return {}
    reading = set(describers) | {e for key in lists for e, _, _ in targets[key]}
    reading |= {e for e, target in targets if e.startswith("GET ") and target.where == "path"}
    tally = _Tally(lists)
    uses: defaultdict[int, set[tuple[tuple[str, Location], str]]] = defaultdict(set)
    for use in walk.uses:
        if (use.target_endpoint, use.target) in lists:
            uses[use.seq].add(((use.target_endpoint, use.target), use.value))
    current: object = None
    for row in walk.rows:
        if row["session_id"] != current:
            current, tally.seen = row["session_id"], {}
        for key, value in uses.get(int(row["seq"]), ()):
            tally.use(key, int(row["session_id"]), value)
        endpoint = str(row["endpoint"])
        if endpoint in reading and answered_ok(row["status"]):
            tally.answer(endpoint, row["resp_body"])
    candidates = {
        key: _candidates(described, *tally.counts(key)) for key, described in tally.chosen.items()
    }
    tests = [c.test for listed in candidates.values() for c in listed]
    chances = iter(tails(tests) if tests else [])
    out = {}
    for key, listed in candidates.items():
        condition = _condition([(next(chances), c) for c in listed])
        if condition is not None:
            out[key] = condition
    return out


Body = bytes | str | None


class _Tally:
    """One walk's counts: per target, the fields of the objects its uses chose (as the
    session's answers last showed them) and of every item its list producers listed.
    Answers repeat (a list read again, another session of the same account): each
    distinct (endpoint, body) is parsed and described once, and counted."""

    def __init__(self, lists: Mapping[tuple[str, Location], list[tuple[str, Location]]]) -> None:
        self.lists = lists
        self.keys = sorted({id_key(src) for found in lists.values() for _, src in found})
        self.listing: defaultdict[str, set[Location]] = defaultdict(set)
        for found in lists.values():
            for endpoint, src in found:
                self.listing[endpoint].add(src)
        self.seen: dict[str, dict[str, FieldValue]] = {}  # the session's: id → fields
        # per target, (session, object) → the object's fields when the session chose it
        self.chosen: defaultdict[tuple[str, Location], dict[tuple[int, str], Fields]]
        self.chosen = defaultdict(dict)
        self.answers: Counter[tuple[str, Body]] = Counter()
        # per distinct answer: its objects described, and per list source of its endpoint
        # the (field, value) pairs of the items it listed, all one after the other
        self.described: dict[tuple[str, Body], dict[str, Fields]] = {}
        self.listed: dict[tuple[str, Body, Location], tuple[tuple[str, FieldValue], ...]] = {}
        self.by_producer: dict[
            tuple[str, Location], tuple[Counter[str], Counter[tuple[str, FieldValue]]]
        ] = {}
        self.by_endpoint: defaultdict[str, list[tuple[Body, int]]] | None = None

    def use(self, key: tuple[str, Location], session: int, value: str) -> None:
        if value in self.seen:
            self.chosen[key].setdefault((session, value), self.seen[value])

    def answer(self, endpoint: str, body: object) -> None:
        text = bytes(body) if isinstance(body, bytearray) else body
        answer = (endpoint, text if isinstance(text, bytes | str) else None)
        described = self.described.get(answer)
        if described is None:
            doc = parse_json(answer[1])
            described = self.described[answer] = describe(doc, self.keys)
            for src in self.listing.get(endpoint, ()):
                self.listed[(*answer, src)] = _listed_pairs(items_at(doc, src), id_key(src))
        self.answers[answer] += 1
        for ident, fields in described.items():
            self.seen[ident] = self.seen.get(ident, {}) | fields

    def counts(
        self, key: tuple[str, Location]
    ) -> tuple[Counter[str], Counter[tuple[str, FieldValue]]]:
        """Over the items the target's list producers listed: how many had each field, and
        each (field, value)."""
        having: Counter[str] = Counter()
        among: Counter[tuple[str, FieldValue]] = Counter()
        for producer in dict.fromkeys(self.lists[key]):  # each once, as listed
            fields, pairs = self._producer_counts(producer)
            having.update(fields)
            among.update(pairs)
        return having, among

    def _answered(self, endpoint: str) -> list[tuple[Body, int]]:
        """The distinct answers of `endpoint` and how often each came, in the order they
        first came (grouped once: each producer read them all, cap20's 98 scans of 2.7 k)."""
        if self.by_endpoint is None:
            self.by_endpoint = defaultdict(list)
            for (answered, body), times in self.answers.items():
                self.by_endpoint[answered].append((body, times))
        return self.by_endpoint.get(endpoint, [])

    def _producer_counts(
        self, producer: tuple[str, Location]
    ) -> tuple[Counter[str], Counter[tuple[str, FieldValue]]]:
        """The fields and (field, value) pairs of every item one list producer listed
        (computed once: targets share their producers)."""
        if producer not in self.by_producer:
            endpoint, src = producer
            # Counted in C (`Counter.update` of an iterable), an answer that came once; one
            # that came more often counted once, its counts times as many (stretchcap_x100's
            # answers came 100 times each: 0.9 s counting them over); the fields' counts
            # from the pairs' (cap20: 0.065 -> 0.01 s).
            among: Counter[tuple[str, FieldValue]] = Counter()
            for body, times in self._answered(endpoint):
                pairs = self.listed[(endpoint, body, src)]
                if times == 1:
                    among.update(pairs)
                else:
                    for pair, n in Counter(pairs).items():
                        among[pair] += n * times
            having: Counter[str] = Counter()
            for (name, _), n in among.items():
                having[name] += n
            self.by_producer[producer] = having, among
        return self.by_producer[producer]


class _Candidate(NamedTuple):
    """A field value chosen often enough to be tested: `k` of the `n` described uses
    chose it, a listed item had it at `base`."""

    field: str
    value: FieldValue
    k: int
    n: int
    base: float
    sessions: int

    @property
    def test(self) -> BinomialTest:
        return self.k, self.n, self.base


def _candidates(
    described: Mapping[tuple[int, str], Fields],
    having: Counter[str],
    among: Counter[tuple[str, FieldValue]],
) -> list[_Candidate]:
    """The field values of one target's chosen objects that could separate them from the
    lists' items (among the items that have the field): held by at least
    SELECT_MIN_CHOSEN_SHARE of the choices, of enough sessions, not a name."""
    sessions = len({s for s, _ in described})
    if sessions < SELECT_MIN_SESSIONS:
        return []
    distinct = Counter(f for f, _ in among)
    counts = Counter((f, v) for fields in described.values() for f, v in fields.items())
    found = []
    for (f, v), k in counts.items():
        if not having[f] or (isinstance(v, str) and distinct[f] > ENUM_MAX_VALUES):
            continue
        if k / len(described) < SELECT_MIN_CHOSEN_SHARE:
            continue
        found.append(_Candidate(f, v, k, len(described), among[(f, v)] / having[f], sessions))
    return found


def _condition(tested: Iterable[tuple[float, _Candidate]]) -> Selection | None:
    """Of one target's candidates and their chances, the least likely by chance, if it is
    at most SELECT_MAX_P."""
    best: tuple[float, str, Selection] | None = None
    for chance, c in tested:
        if chance > SELECT_MAX_P:
            continue
        found = Selection(c.field, c.value, round(c.k / c.n, 4), round(c.base, 4), c.sessions)
        if best is None or (-chance, c.field) > best[:2]:
            best = (-chance, c.field, found)
    return None if best is None else best[2]


def _objects(doc: object) -> list[dict[str, Any]]:
    """`json_objects(doc, 0)` as a list, made by one recursive call per container (the
    generators' chain cost a step per level for every object)."""
    out: list[dict[str, Any]] = []
    _collect(doc, 0, out)
    return out


def _collect(node: object, depth: int, out: list[dict[str, Any]]) -> None:
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, dict):
        out.append(node)
        for value in node.values():
            if isinstance(value, dict | list):
                _collect(value, depth + 1, out)
    elif isinstance(node, list):
        for value in node:
            if isinstance(value, dict | list):
                _collect(value, depth + 1, out)


def json_objects(node: object, depth: int) -> Iterator[dict[str, Any]]:
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, dict):
        yield node
        for value in node.values():
            if isinstance(value, dict | list):
                yield from json_objects(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            yield from json_objects(value, depth + 1)


def nodes_at(node: object, parts: list[str]) -> Iterator[object]:
    """Every node of a JSON document at a pointer's `parts`; `*` walks every array element
    (the replay reads its answers' values the same way, replay/rewrite.py)."""
    if not parts:
        yield node
        return
    head, rest = parts[0], parts[1:]
    if isinstance(node, dict) and head in node:
        yield from nodes_at(node[head], rest)
    elif isinstance(node, list) and head == "*":
        for item in node:
            yield from nodes_at(item, rest)
    elif isinstance(node, list) and head.isdigit() and int(head) < len(node):
        yield from nodes_at(node[int(head)], rest)
