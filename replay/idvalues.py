"""The id side of one replayed session's correlation: which live id each id place of its
requests takes, and what its answers say it created or deleted. replay/correlate.py owns
the session's state and calls it; no I/O here.

- Which of the live ids a path, query or body place takes (the captured one's live
  counterpart, a sticky seeded choice from a list, the account's pool, a pool of ids of
  the same name) is replay/liveids.py's order; the model's id producers are sources of
  the places they feed, beside the correlation rules.
- A protected request (replay/ownership.py) gets an id its session created where it can.
- Answers of the model's creates record the objects the session made; a DELETE that went
  records the object gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from tracereplay.models.correlations import Location
from tracereplay.models.id_model import IdModel
from tracereplay.models.templating import path_template

from .evidence import Saw, can_match, meets, telling_fields
from .liveids import CreatedObject, CredentialPools, Key, SessionIds
from .ownership import object_ids
from .plan import PlannedRequest, PlannedSession
from .rewrite import PreparedRequest, Response, Scalar, planned_value

ID_TARGETS = ("path", "query", "json", "form")
_GENERIC_ID_NAMES = frozenset({"id", "ids", "pk", "uuid", "key"})
"""Names too generic to say two places hold ids of the same kind of object."""


def creates_for(model: IdModel, endpoint: str, target: Location) -> set[str]:
    """The learned creates whose objects `endpoint`'s id place `target` names: creates
    that produce the place, and creates whose learned DELETE is this endpoint or names
    its object by the same path and parameter (`PUT /a/{p}` beside `DELETE /a/{p}`)."""
    out = {p.endpoint for p in model.producers(endpoint, target) if p.kind == "create"}
    path = path_template(endpoint)
    for c in model.creations:
        if c.delete is None or c.param != target.key:
            continue
        if c.delete == endpoint or (target.where == "path" and path_template(c.delete) == path):
            out.add(c.endpoint)
    return out


@dataclass(frozen=True)
class Seen:
    """A live value a session's answer held at a source."""

    order: int  # observation count: the largest is the most recent
    value: Scalar | tuple[Scalar, ...]  # a tuple: every item of a list answer
    set_cookie: bool  # the HTTP client's cookie jar holds it too
    fallback: bool = False  # the credential where no rule says so (auth.used_as)


class IdValues:
    """The ids one session's requests send (see the module doc)."""

    def __init__(
        self,
        model: IdModel,
        ids: SessionIds,
        targets: dict[str, dict[Location, list[Key]]],
        sources: dict[str, set[Location]],
        evidence: Sequence[Saw] = (),
    ) -> None:
        """Adds the model's id producers to the session's rule `targets` and `sources`;
        `evidence`: what the real session saw of the objects it used (trace replays)."""
        self.model = model
        self.ids = ids
        self.evidence = {s.value: s.fields for s in evidence if s.value}
        # Live ids the request being prepared takes that already meet its selection or
        # look as the real session saw its object (the caller empties it per request): a
        # state change the run withheld made no difference to them.
        self.as_seen: set[str] = set()
        self.pooled: set[Key] = set()  # id sources: their values go to the account's pool
        self._kin: dict[str, list[Key]] = {}  # id name → every source of ids of that name
        for target in model.targets:
            by_target = targets.setdefault(target.endpoint, {})
            for producer in target.producers:
                key = (producer.endpoint, producer.source)
                if key not in by_target.setdefault(target.target, []):
                    by_target[target.target].append(key)
                sources.setdefault(producer.endpoint, set()).add(producer.source)
                self.pooled.add(key)
                if target.target.key.lower() not in _GENERIC_ID_NAMES:
                    kin = self._kin.setdefault(target.target.key, [])
                    kin += [key] if key not in kin else []

    def value(
        self,
        request: PlannedRequest,
        target: Location,
        keys: list[Key],
        is_id: bool,
        values: Mapping[Key, Seen],
    ) -> Seen | None:
        """The live value for one target, from the session's latest `values` at its
        sources `keys` (see replay/liveids.py for the order), then held to the place's
        learned selection (`selected`)."""
        seen = self._value(request, target, keys, is_id, values)
        if not is_id or target.where not in ID_TARGETS:
            return seen
        select = self.model.selection(request.endpoint, target)
        if select is not None:
            return self.selected(request.endpoint, select.met_by, seen, keys, values)
        planned = planned_value(request, target) if self.evidence else None
        fields = self.evidence.get(planned) if planned is not None else None
        if planned is None or fields is None or seen is None or isinstance(seen.value, tuple):
            return seen
        # What the real session saw of the object it named here: its live counterpart
        # should look the same where the fields tell objects apart (replay/evidence.py).
        producers = [(p.endpoint, p.source) for p in self.model.producers(request.endpoint, target)]
        telling = telling_fields(self.ids.pools, producers, fields)
        if not telling:
            return seen
        chosen = self.selected(
            request.endpoint, lambda live: meets(live, telling), seen, keys, values
        )
        if chosen is None or isinstance(chosen.value, tuple):
            return chosen
        if chosen.value != seen.value:
            self.ids.mapped[planned] = chosen.value  # the session's counterpart from now on
        return chosen

    def selected(
        self,
        endpoint: str,
        select: Callable[[Mapping[str, object] | None], bool],
        seen: Seen | None,
        keys: list[Key],
        values: Mapping[Key, Seen],
    ) -> Seen | None:
        """The id a request with a learned selection (models/id_select.py `met_by`, or the
        trace's evidence) sends: the one it would take where what the answers showed of
        that object meets the selection;
        else a seeded-random live id of the session's answers or its account's pool at
        the same sources that meets it (`switched`); else the one it would take
        (`fallback`). A value whose state change the run withheld stays, so that the
        action that follows the change is withheld too (replay/ownership.py), unless it
        meets the selection already: the object is as the real ones were (`as_seen`)."""
        run, pools = self.ids.run, self.ids.pools
        value = None if seen is None or isinstance(seen.value, tuple) else seen.value
        if value is not None and select(pools.fields(value)):
            run.selected(endpoint, "met")
            self.as_seen.add(str(value))
            return seen
        if value is not None and str(value) in run.withheld(self.model.changes_before(endpoint)):
            return seen
        offered: list[Scalar] = []
        for key in keys:
            held = values[key].value if key in values else ()
            offered += list(held) if isinstance(held, tuple) else [held]
        offered += self.ids.pools.values(self.ids.credential, keys)
        fit = [
            v for v in dict.fromkeys(offered) if select(pools.fields(v)) and not self.ids.foreign(v)
        ]
        if not fit:
            run.selected(endpoint, "fallback")
            return seen
        run.selected(endpoint, "switched")
        choice = fit[self.ids.rng.randrange(len(fit))]
        self.as_seen.add(str(choice))
        return Seen(-1, choice, False)

    def _value(
        self,
        request: PlannedRequest,
        target: Location,
        keys: list[Key],
        is_id: bool,
        values: Mapping[Key, Seen],
    ) -> Seen | None:
        if target.where in ID_TARGETS:
            planned = planned_value(request, target)
            live = None if planned is None else self.ids.counterpart(planned)
            if live is not None:
                return Seen(-1, live, False)
        # An object a session of the run deleted is no live id any more (a create's answer
        # stays a source's latest value after the session deleted what it made).
        seen = [
            (values[key], key)
            for key in keys
            if key in values
            and (isinstance(values[key].value, tuple) or not self.ids.run.gone(values[key].value))
        ]
        if seen:
            latest, key = max(seen, key=lambda s: s[0].order)
            if not isinstance(latest.value, tuple):
                return latest
            chosen = self.ids.choose(key, latest.value)
            return None if chosen is None else replace(latest, value=chosen)
        if is_id and target.where in ID_TARGETS:
            # The account's pool at this place's own sources, else at any source of ids of
            # the same name (`client_id` from the clients list where the trace was too
            # short to learn that source here): a live id, never a made-up one (a 404).
            pooled = self.ids.from_pool(keys)
            if pooled is None:
                pooled = self.ids.from_pool(self._kin.get(target.key, []))
            if pooled is not None:
                return Seen(-1, pooled, False)
        return None

    def owned_value(self, endpoint: str, target: Location, value: Seen | None) -> Seen | None:
        """For a protected request: an id this session created, where it has one that a
        create producing this place made (else the value stays, and ownership skips)."""
        if value is not None and str(value.value) in self.ids.owned:
            return value
        mine = self.ids.owned_from(creates_for(self.model, endpoint, target))
        return value if mine is None else Seen(-1, mine, False)

    def record(
        self, request: PlannedRequest, response: Response, sent: PreparedRequest | None
    ) -> None:
        """What a 2xx answer says the session made (a create) or removed (a DELETE)."""
        creation = self.model.creation(request.endpoint)
        if creation is not None:
            value = response.value_at(creation.source)
            if value is not None:
                captured = dict(request.yields).get(creation.source, ())
                self.ids.created(
                    CreatedObject(
                        str(value),
                        request.endpoint,
                        self.ids.session,
                        self.ids.credential,
                        creation.delete,
                        creation.param,
                    ),
                    captured[0] if len(captured) == 1 else None,
                )
        if request.method.upper() == "DELETE" and sent is not None:
            named = object_ids(request.endpoint, sent.path, sent.query, ())
            for value in named or ():
                self.ids.deleted(value)


def can_select(
    model: IdModel, pools: CredentialPools, endpoints: Iterable[str]
) -> Callable[[int], bool] | None:
    """For a session that sends `endpoints`: whether an account (its --credentials index)
    saw, at the sources of every id place with a learned selection among them, an object
    that meets it (None when no place has one). The discovery phase filled the pools, so
    a session whose real user synced a configured client of their own gets an account
    whose client is configured, where the role allows one (replay/credentials.py)."""
    if not model.selections:  # most models: nothing to build per session
        return None
    sent = set(endpoints)
    needs = [
        (select, [(p.endpoint, p.source) for p in model.producers(*key)])
        for key, select in model.selections.items()
        if key[0] in sent
    ]
    if not needs:
        return None

    def fits(credential: int) -> bool:
        return all(
            any(select.met_by(pools.fields(v)) for v in pools.values(credential, keys))
            for select, keys in needs
        )

    return fits


def account_preference(
    model: IdModel, pools: CredentialPools, session: PlannedSession
) -> Callable[[int], float] | None:
    """How much each account (its --credentials index) suits `session`, for
    `credentials.assign_account(prefer=)`: an account that can see an object its learned
    selections need (`can_select`) first, then the evidence of what its real session saw
    (replay/evidence.py `can_match`, trace replays); None when neither applies."""
    select = can_select(model, pools, (r.endpoint for r in session.requests))
    match = can_match(model, pools, session.saw)
    if select is None or match is None:
        return select if match is None else match
    weight = 1 + sum(len(s.fields) for s in session.saw)  # above any evidence score

    def both(credential: int) -> float:
        return weight * select(credential) + match(credential)

    return both
