"""Live ids of a replayed session: which of the ids the target handed out a request takes,
which objects the session created, and what other sessions of the run created (so a read
never lands on an object another session may delete any moment).

No I/O here; replay/correlate.py calls it. How a request's id is chosen, first hit wins:

1. *Trace replays*: the captured value's live counterpart. Each captured answer's values
   at the places later requests read are planned beside it (`PlannedRequest.yields`);
   the live answer's values at the same places map captured → live (`RunObjects.align`).
   A list holds objects that were there before the run and objects sessions created; the
   target orders both by fields the capture anonymized (a name), so created ones sit
   elsewhere in the live list than in the captured one. So an object the capture created
   maps to the live object its replayed create made, and the objects that were there
   before map in order, only where the captured and the live answer hold as many of them
   (else that answer maps nothing). What a session's own answers map comes first, then
   what the answers of its account's sessions mapped most often (the same object for
   every session that can see it: another account's counterpart may be one it cannot,
   a 403, when the replay gives a session another account than the capture's). So a
   session takes the same item of a list as the real user did, and the id of its own
   create where the real session used the id of its create.
2. The rules' most recent source answer; a list is kept whole and one item is chosen
   seeded-random (the session's own generator), kept for the session until that source
   answers again (a person picks an item and works on it); never an object another
   session of the run created, when anything else is there.
3. The session's credential's pool: what the discovery phase found for that account and
   what other sessions signed in as it saw (never another account's: a client account
   asking for another client's id is a 403 the real traffic did not have).

For a protected request (replay/ownership.py) an id the session does not own is replaced
by the most recent id it created at a producer of that place, if it has one.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tracereplay.models.correlations import Location

from .rewrite import Scalar

Key = tuple[str, Location]  # (source endpoint, where its answer holds the value)
POOL_KEEP = 256
FIELDS_KEEP = 1 << 16
"""Objects whose fields a process keeps (for learned selections), the latest seen."""
MEMO_KEEP = 4096


@dataclass(frozen=True)
class CreatedObject:
    """One object a replayed session created (the record cleanup reads)."""

    id: str
    endpoint: str
    """The create endpoint."""
    session: int
    credential: int | None
    """Index of the account in --credentials (never the account itself)."""
    delete: str | None
    """The learned DELETE endpoint and its path parameter."""
    param: str | None


class RunObjects:
    """The objects this process's sessions created, and which are deleted; `sink` gets
    each event (the run folder's record) as it happens."""

    def __init__(
        self,
        sink: Callable[[dict[str, Any]], None] | None = None,
        selection: dict[str, dict[str, int]] | None = None,
    ) -> None:
        self._owner: dict[str, int] = {}
        # endpoint → how its learned selections went (met, switched, fallback): the
        # worker's safety log's, when given
        self.selection = {} if selection is None else selection
        self._deleted: set[str] = set()
        self._withheld: dict[str, set[str]] = {}  # object → its state changes not sent
        self._created_from: dict[str, list[str]] = {}  # captured created id → live ones
        # (account, captured id) → votes for its live counterpart
        self._counterparts: dict[tuple[int | None, str], Counter[Scalar]] = {}
        self._sink = sink

    def withhold(self, change: str, objects: Sequence[str]) -> None:
        """A state change (`change`, an endpoint) of `objects` was not sent."""
        for obj in objects:
            self._withheld.setdefault(obj, set()).add(change)

    def changed(self, change: str, objects: Sequence[str]) -> None:
        """A state change of `objects` went through after all."""
        for obj in objects:
            self._withheld.get(obj, set()).discard(change)

    def withheld(self, changes: set[str]) -> set[str]:
        """Objects one of whose `changes` was withheld (and not made since)."""
        if not changes:
            return set()
        return {obj for obj, held in self._withheld.items() if held & changes}

    def align(
        self, captured: Sequence[str], values: Sequence[Scalar], credential: int | None
    ) -> list[tuple[str, Scalar]]:
        """(captured, live) pairs of one answer (see the module doc): objects the capture
        created → what their replayed creates made; the others in order, where both sides
        hold as many (their pairs count for every session of the account `credential`)."""
        if not captured:
            return []  # a model replay's answers: nothing captured to map
        live = {str(v): v for v in values}
        pairs = []
        for old in captured:
            made = next((m for m in self._created_from.get(old, ()) if m in live), None)
            if made is not None:
                pairs.append((old, live[made]))
        before = [old for old in captured if old not in self._created_from]
        there = [v for v in values if str(v) not in self._owner]
        if len(before) == len(there):
            for old, new in zip(before, there, strict=True):
                pairs.append((old, new))
                self._counterparts.setdefault((credential, old), Counter())[new] += 1
        return pairs

    def counterpart(self, captured: str, credential: int | None) -> Scalar | None:
        """The live object the answers of the account's sessions mapped `captured` to most
        often (per account: another account's may be an object this one cannot see)."""
        votes = self._counterparts.get((credential, captured))
        return None if not votes else min(votes, key=lambda v: (-votes[v], str(v)))

    def created(self, obj: CreatedObject, captured: str | None = None) -> None:
        """`captured`: the id the capture's answer to the same create held (trace)."""
        if captured is not None:
            made = self._created_from.setdefault(captured, [])
            made += [] if obj.id in made else [obj.id]
        self._owner[obj.id] = obj.session
        self._deleted.discard(obj.id)
        if self._sink is not None:
            self._sink({"event": "created", **obj.__dict__})

    def deleted(self, value: str, session: int) -> None:
        if value in self._owner and value not in self._deleted:
            self._deleted.add(value)
            if self._sink is not None:
                self._sink({"event": "deleted", "id": value, "session": session})

    def selected(self, endpoint: str, outcome: str) -> None:
        """Count how a request's learned selection went (`met`, `switched`, `fallback`)."""
        counts = self.selection.setdefault(endpoint, {})
        counts[outcome] = counts.get(outcome, 0) + 1

    def gone(self, value: object) -> bool:
        """A session of the run deleted it."""
        return str(value) in self._deleted

    def foreign_to(self, session: int, value: object) -> bool:
        """Created by another session of the run, or deleted: not for `session` to pick."""
        text = str(value)
        owner = self._owner.get(text)
        return text in self._deleted or (owner is not None and owner != session)


class CredentialPools:
    """Per account (its --credentials index, or None), the ids seen at each source, most
    recent last: filled by the discovery phase and by the sessions signed in as it."""

    def __init__(self) -> None:
        self._pools: dict[tuple[int | None, Key], deque[Scalar]] = {}
        self._fields: dict[str, dict[str, bool | str]] = {}  # object id → latest fields
        self.memo: dict[object, Any] = {}  # derived facts (replay/evidence.py), bounded

    def describe(self, described: dict[str, dict[str, bool | str]]) -> None:
        """What an answer showed of objects (id → fields; models/id_select.describe),
        over what earlier answers showed: an object's state is the same for every
        account, and the discovery phase's answers count too."""
        for ident, fields in described.items():
            known = self._fields.pop(ident, None)  # re-inserted: the latest seen last
            self._fields[ident] = fields if known is None else known | fields
        while len(self._fields) > FIELDS_KEEP:
            del self._fields[next(iter(self._fields))]  # the object seen longest ago

    def remember(self, key: object, value: Any) -> None:
        if len(self.memo) >= MEMO_KEEP:
            self.memo.clear()
        self.memo[key] = value

    def fields(self, value: object) -> dict[str, bool | str] | None:
        return self._fields.get(str(value))

    def add(self, credential: int | None, key: Key, values: Sequence[Scalar]) -> None:
        pool = self._pools.setdefault((credential, key), deque(maxlen=POOL_KEEP))
        for value in values:
            if value in pool:
                pool.remove(value)
            pool.append(value)

    def values(self, credential: int | None, keys: Sequence[Key]) -> list[Scalar]:
        out: list[Scalar] = []
        for key in keys:
            out += [v for v in self._pools.get((credential, key), ()) if v not in out]
        return out

    def values_of_all(self, keys: Sequence[Key]) -> list[Scalar]:
        """What any account's pool holds at `keys` (each value once)."""
        wanted = set(keys)
        out: dict[Scalar, None] = {}
        for (_, key), pool in self._pools.items():
            if key in wanted:
                out.update(dict.fromkeys(pool))
        return list(out)

    def size(self) -> int:
        return sum(len(p) for p in self._pools.values())


class SessionIds:
    """Id state of one session (see the module doc)."""

    def __init__(
        self,
        session: int,
        rng: random.Random | str,
        run: RunObjects,
        pools: CredentialPools,
        credential: int | None,
    ) -> None:
        """`rng`: the session's generator, or the seed to make it from when first asked
        (most sessions never choose: seeding one took ~7 us of every session's start)."""
        self.session = session
        self._rng = rng
        self.run = run
        self.pools = pools
        self.credential = credential
        self.mapped: dict[str, Scalar] = {}
        self.owned: dict[str, str] = {}  # id → the create endpoint, in creation order
        self._chosen: dict[Key, Scalar] = {}

    @property
    def rng(self) -> random.Random:
        rng = self._rng
        if isinstance(rng, str):
            rng = self._rng = random.Random(rng)
        return rng

    # ---- answers ------------------------------------------------------------------------

    def answered(self, key: Key, values: Sequence[Scalar], captured: Sequence[str]) -> None:
        """A source answered `values` (all of a list); `captured`: what the real answer held
        there, in order (trace replays), so the captured values map to the live ones."""
        self._chosen.pop(key, None)
        for old, new in self.run.align(captured, values, self.credential):
            self.mapped[old] = new
        self.pools.add(self.credential, key, [v for v in values if not self.foreign(v)])

    def created(self, obj: CreatedObject, captured: str | None = None) -> None:
        self.owned[obj.id] = obj.endpoint
        self.run.created(obj, captured)

    def counterpart(self, captured: str) -> Scalar | None:
        """The live counterpart of a captured value: this session's answers', else its
        account's sessions' (trace replays; None when no answer mapped it)."""
        live = self.mapped.get(captured)
        return self.run.counterpart(captured, self.credential) if live is None else live

    def deleted(self, value: str) -> None:
        if self.owned.pop(value, None) is not None:
            self.run.deleted(value, self.session)

    # ---- choices ------------------------------------------------------------------------

    def choose(self, key: Key, values: Sequence[Scalar]) -> Scalar | None:
        """One of a source's live `values`: the one chosen before (until it answers again),
        else a seeded-random one not made by another session (any, if none is left)."""
        if not values:
            return None
        if len(values) == 1:
            return values[0]
        kept = self._chosen.get(key)
        if kept is not None and kept in values and not self.run.gone(kept):
            return kept
        fair = [v for v in values if not self.foreign(v)] or list(values)
        choice = fair[self.rng.randrange(len(fair))]
        self._chosen[key] = choice
        return choice

    def from_pool(self, keys: Sequence[Key]) -> Scalar | None:
        """A value the session's account saw at one of `keys` (discovery included)."""
        values = [v for v in self.pools.values(self.credential, keys) if not self.foreign(v)]
        return values[self.rng.randrange(len(values))] if values else None

    def owned_from(self, creates: set[str]) -> str | None:
        """The most recent id this session created at one of the `creates` endpoints."""
        return next((i for i, e in reversed(self.owned.items()) if e in creates), None)

    def foreign(self, value: object) -> bool:
        """Created by another session of the run, or deleted."""
        return self.run.foreign_to(self.session, value)
