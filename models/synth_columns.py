"""A chunk of walked sessions (synth_walk.py) as trace columns, built as Arrow arrays.

Path parameters get one fresh value per name per session (params.fresh_values, from the
session's counter numbers), the kind of the first endpoint of the session that uses the
name. Query strings and bodies come from per-endpoint pools: POOL_SIZE values rendered
with faker (payloads.py), POOL_BLOCK at a time as a request first picks an entry of the
block, each block from generators seeded by (seed, endpoint, block); a request picks its
entry by a counter number. Rendering one value costs 5-100 µs, far over a row's budget, so
the distinct query strings and bodies of an endpoint in one synthesis are bounded by the
pool: at most POOL_SIZE each. Faker's weighted picks (first names, last names: lists of
thousands) re-sum their weights on every call, 0.2 ms a name; `quick_faker` keeps the sums,
making the same draws (`_WeightedPicks`).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from faker import Faker

from tracereplay.trace import TRACE_SCHEMA

from . import counters
from .params import fresh_values
from .payloads import BodyModel, QueryModel
from .synth_arrow import numbers, scalar, strings, validity
from .synth_walk import Walked

POOL_SIZE = 1024
"""Query strings (and bodies) rendered per endpoint: the most distinct ones a synthesis has."""
POOL_BLOCK = 64
"""Pool entries rendered together, on first use (a short replay renders a few blocks)."""
_PARAM = re.compile(r"\{([^{}/]+)\}")
_ZERO = numbers(np.zeros(1, np.int32))[0]
_SYNTH, _EMPTY = scalar("synth:"), scalar("")
_CONTENT_TYPE = strings(["content-type"])


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str
    params: dict[str, dict[str, Any]]
    body: BodyModel | None
    query: QueryModel | None


def quick_faker() -> Faker:
    """A `Faker()` whose weighted picks (an OrderedDict of weights, with replacement) read
    cumulative weights summed once per dictionary instead of on every call: the same
    numbers drawn the same way (`random.choices`'s bisection of one `random()` each), so
    the same values (tests/models/test_synth_arrays.py)."""
    fake = Faker()
    sums: dict[int, tuple[OrderedDict[Any, float], tuple[Any, ...], list[float], float]] = {}
    for generator in fake.factories:
        for provider in generator.providers:
            provider.random_elements = _WeightedPicks(provider, sums)
    return fake


class _WeightedPicks:
    """`BaseProvider.random_elements` of one provider, for its weighted draws with
    replacement from an OrderedDict (faker's data: constants of its modules); any other
    call goes to faker's own."""

    def __init__(
        self,
        provider: Any,
        sums: dict[int, tuple[OrderedDict[Any, float], tuple[Any, ...], list[float], float]],
    ) -> None:
        self.own: Callable[..., Sequence[Any]] = provider.random_elements
        self.weighted = bool(provider.__use_weighting__)
        self.generator = provider.generator
        self.sums = sums

    def __call__(
        self,
        elements: Any = ("a", "b", "c"),
        length: int | None = None,
        unique: bool = False,
        use_weighting: bool | None = None,
    ) -> Sequence[Any]:
        weighted = self.weighted if use_weighting is None else use_weighting
        if unique or length is None or not weighted or not isinstance(elements, OrderedDict):
            return self.own(elements, length, unique, use_weighting)
        held = self.sums.get(id(elements))
        if held is None or held[0] is not elements:
            cumulative = list(itertools.accumulate(elements.values()))
            held = (elements, tuple(elements), cumulative, cumulative[-1] + 0.0)
            self.sums[id(elements)] = held
        _, keys, cumulative, total = held
        draw, last = self.generator.random.random, len(keys) - 1
        return [keys[bisect.bisect(cumulative, draw() * total, 0, last)] for _ in range(length)]


class _Pool:
    """One endpoint's query strings or bodies, rendered on first use: a block's entries in
    order, each block from generators seeded by (seed, endpoint, block), up to the last
    entry asked for so far; a block left part way keeps its generators' states, so what it
    renders later is what rendering it whole gives (the pool's cost follows what is drawn:
    a few sessions render a few entries, a large run every one)."""

    def __init__(self, name: str, model: BodyModel | QueryModel, seed: int, fake: Faker):
        self.name, self.model, self.seed, self.fake = name, model, seed, fake
        self.values: list[Any] = [None] * POOL_SIZE
        self.count = np.zeros(POOL_SIZE // POOL_BLOCK, dtype=np.int64)
        """Per block, its entries rendered (the first ones)."""
        self.paused: dict[int, tuple[Any, Any]] = {}
        """Per block rendered part way, the states of its two generators."""
        self.array: pa.Array | None = None

    @property
    def done(self) -> np.ndarray:
        """Per block, whether every entry is rendered."""
        done: np.ndarray = self.count == POOL_BLOCK
        return done

    def take(self, entries: np.ndarray) -> pa.Array:
        return self.rendered(entries).take(numbers(entries))

    def rendered(self, entries: np.ndarray) -> pa.Array:
        """The pool as an array (null where not rendered), after rendering `entries`."""
        entries = np.asarray(entries, dtype=np.int64)
        if len(entries) and not self.done.all():
            if entries.min() < 0 or entries.max() >= POOL_SIZE:
                raise IndexError(f"pool entries are 0..{POOL_SIZE - 1}")
            upto = np.zeros_like(self.count)
            np.maximum.at(upto, entries // POOL_BLOCK, entries % POOL_BLOCK + 1)
            for block in np.flatnonzero(upto > self.count).tolist():
                self._render(block, int(upto[block]))
        if self.array is None:
            if isinstance(self.model, BodyModel):
                self.array = strings(self.values, pa.binary())
            else:  # an empty query string is none
                self.array = strings([v or None for v in self.values])
        return self.array

    def _render(self, block: int, upto: int) -> None:
        """Block `block`'s entries up to `upto` (exclusive), after those already rendered."""
        have = int(self.count[block])
        rng = random.Random()
        if have:
            rng_state, fake_state = self.paused.pop(block)
            rng.setstate(rng_state)
            self.fake.random.setstate(fake_state)
        else:
            kind = "body" if isinstance(self.model, BodyModel) else "query"
            text = f"{self.seed}\0{self.name}\0{kind}\0{block}".encode()
            state = int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")
            rng.seed(state)
            self.fake.seed_instance(state)
        lo = block * POOL_BLOCK
        for entry in range(lo + have, lo + upto):
            self.values[entry] = self.model.render(rng, self.fake)
        if upto < POOL_BLOCK:
            self.paused[block] = (rng.getstate(), self.fake.random.getstate())
        self.count[block] = upto
        self.array = None

    def render_block(self, block: int) -> list[Any]:
        """Block `block` rendered whole: its values."""
        if self.count[block] < POOL_BLOCK:
            self._render(block, POOL_BLOCK)
        return self.values[block * POOL_BLOCK : (block + 1) * POOL_BLOCK]

    def put_block(self, block: int, values: list[Any]) -> None:
        """Take `render_block(block)` of the same pool rendered elsewhere."""
        self.values[block * POOL_BLOCK : (block + 1) * POOL_BLOCK] = values
        self.count[block] = POOL_BLOCK
        self.paused.pop(block, None)
        self.array = None

    def whole(self) -> pa.Array:
        """Every value (every block rendered first)."""
        return self.take(np.arange(POOL_SIZE))

    def adopt(self, array: pa.Array) -> None:
        """Take `whole()` of the same pool rendered elsewhere (a worker process's)."""
        self.array = array
        self.count[:] = POOL_BLOCK
        self.paused.clear()


class Columns:
    """Builds the columns of walked chunks of one model's endpoints (in code order)."""

    def __init__(self, names: list[str], endpoints: list[Endpoint], seed: int) -> None:
        self.seed = seed
        self.names = names
        self.endpoints = endpoints
        self.methods = sorted({e.method for e in endpoints})
        self.method_code = np.array([self.methods.index(e.method) for e in endpoints], np.int32)
        fake = quick_faker()
        self.queries = [
            _Pool(n, e.query, seed, fake) if e.query else None
            for n, e in zip(names, endpoints, strict=True)
        ]
        self.bodies = [
            _Pool(n, e.body, seed, fake) if e.body else None
            for n, e in zip(names, endpoints, strict=True)
        ]
        self._whole: dict[int, tuple[list[pa.Array | None], pa.Array]] = {}
        self.media = strings([e.body.media_type if e.body else "" for e in endpoints])
        # Per endpoint: the names it draws values for (all of its parameters when its
        # template has one, as before), and its template split at those it holds.
        self.uses = [list(e.params) if "{" in e.template else [] for e in endpoints]
        self.param_names = list(dict.fromkeys(p for used in self.uses for p in used))
        # Per name, its distinct specs and, per endpoint, which one it has (-1: none).
        self.specs: dict[str, tuple[list[dict[str, Any]], np.ndarray]] = {}
        for name in self.param_names:
            specs: list[dict[str, Any]] = []
            spec_of = np.full(len(endpoints), -1, dtype=np.int64)
            for e, (endpoint, used) in enumerate(zip(endpoints, self.uses, strict=True)):
                if name in used:
                    spec = endpoint.params[name]
                    if spec not in specs:
                        specs.append(spec)
                    spec_of[e] = specs.index(spec)
            self.specs[name] = (specs, spec_of)
        self.pieces: list[list[str]] = []
        self.slots: list[list[str]] = []
        for endpoint, used in zip(endpoints, self.uses, strict=True):
            parts = _PARAM.split(endpoint.template)
            literals, slots = [parts[0]], []
            for name, literal in zip(parts[1::2], parts[2::2], strict=True):
                if name in used:
                    literals.append(literal)
                    slots.append(name)
                else:  # not a parameter it knows: kept as written
                    literals[-1] += "{" + name + "}" + literal
            self.pieces.append(literals)
            self.slots.append(slots)

    def pools(self) -> list[_Pool]:
        return [p for p in (*self.queries, *self.bodies) if p is not None]

    def values(self, index: np.ndarray, walked: Walked) -> dict[str, tuple[np.ndarray, pa.Array]]:
        """Per parameter name, (the rows whose endpoint uses it, their values)."""
        keys = counters.session_keys(self.seed, counters.VALUES, index)
        out: dict[str, tuple[np.ndarray, pa.Array]] = {}
        for p, name in enumerate(self.param_names):
            users = np.array([name in used for used in self.uses])
            rows = np.flatnonzero(users[walked.endpoint])
            if not len(rows):
                continue
            session = walked.session[rows]
            first = np.concatenate([[True], session[1:] != session[:-1]])
            owner = np.cumsum(first) - 1  # per row, its session among those using the name
            specs, spec_of = self.specs[name]
            which = spec_of[walked.endpoint[rows[first]]]
            parts, order = [], []
            for k, spec in enumerate(specs):
                mine = np.flatnonzero(which == k)
                if len(mine):
                    parts.append(fresh_values(spec, keys[session[first][mine]],
                                              p * counters.VALUE_WORDS))  # fmt: skip
                    order.append(mine)
            by_session = pa.concat_arrays(parts).take(numbers(np.argsort(np.concatenate(order))))
            out[name] = (rows, by_session.take(numbers(owner)))
        return out

    def batch(self, index: np.ndarray, walked: Walked, start_us: int) -> pa.RecordBatch:
        """The chunk's rows in the trace schema."""
        rows = len(walked.endpoint)
        values = self.values(index, walked)
        code = walked.endpoint
        picks = counters.session_keys(self.seed, counters.PICKS, index)[walked.session]
        step2 = walked.step.astype(np.uint64) * np.uint64(2)
        query = self._from_pools(self.queries, code, picks, step2, rows, pa.string())
        body = self._from_pools(self.bodies, code, picks, step2 + np.uint64(1), rows, pa.binary())
        has_body = validity(body)
        sizes = pc.fill_null(pc.binary_length(body), _ZERO).cast(pa.int64())
        header_offsets = np.concatenate([[0], np.cumsum(has_body)]).astype(np.int32)
        media = self.media.take(numbers(code[has_body]))
        headers = pa.MapArray.from_arrays(
            numbers(header_offsets), _CONTENT_TYPE.take(numbers(np.zeros(len(media), int))), media
        )
        empty_maps = pa.MapArray.from_arrays(
            numbers(np.zeros(rows + 1, np.int32)),
            pa.nulls(0, pa.string()),
            pa.nulls(0, pa.string()),
        )
        session_keys = pc.binary_join_element_wise(
            _SYNTH, pc.utf8_lpad(numbers(index).cast(pa.string()), 8, "0"), _EMPTY
        ).take(numbers(walked.session))
        ts_us = start_us + np.round(walked.t_s * 1e6).astype(np.int64)
        zeros = numbers(np.zeros(rows, np.int64))
        columns = {
            "ts": numbers(ts_us, pa.timestamp("us", tz="UTC")),
            "session": session_keys,
            "client": session_keys,
            "method": pa.DictionaryArray.from_arrays(
                numbers(self.method_code[code]), strings(self.methods)
            ),
            "path": self.paths(code, values),
            "query": query,
            "req_headers": headers,
            "req_body": body,
            "req_body_size": sizes,
            "resp_headers": empty_maps,
            "resp_body_size": zeros,
        }
        arrays = [
            columns[f.name] if f.name in columns else pa.nulls(rows, f.type) for f in TRACE_SCHEMA
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=TRACE_SCHEMA)

    def paths(self, code: np.ndarray, values: dict[str, tuple[np.ndarray, pa.Array]]) -> pa.Array:
        """Each row's template with its session's values in place."""
        rows = len(code)
        width = max([len(s) for s in self.slots] + [0])
        literal = [
            strings([p[t] if t < len(p) else "" for p in self.pieces]) for t in range(width + 1)
        ]
        if width == 0:
            return literal[0].take(numbers(code))
        # Every value of the chunk in one array (an empty one last): slots take from it.
        names = list(values)
        offsets = np.cumsum([0] + [len(values[n][0]) for n in names])
        pool = pa.concat_arrays([values[n][1] for n in names] + [strings([""])])
        where = {}
        for n, lo in zip(names, offsets[:-1].tolist(), strict=True):
            at = np.full(rows, -1, dtype=np.int64)
            at[values[n][0]] = lo + np.arange(len(values[n][0]))
            where[n] = at
        parts = [literal[0].take(numbers(code))]
        for t in range(width):
            slot = np.full(rows, len(pool) - 1, dtype=np.int64)
            for n in names:
                holds = np.array([len(s) > t and s[t] == n for s in self.slots])[code]
                slot[holds] = where[n][holds]
            parts += [pool.take(numbers(slot)), literal[t + 1].take(numbers(code))]
        return pc.binary_join_element_wise(*parts, _EMPTY)

    def _from_pools(
        self,
        pools: list[_Pool | None],
        code: np.ndarray,
        keys: np.ndarray,
        k: np.ndarray,
        rows: int,
        type_: pa.DataType,
    ) -> pa.Array:
        """Per row, its endpoint's pool entry picked by its counter number (null without a
        pool): one take from every pool laid end to end."""
        entries = (counters.uniforms(keys, k) * POOL_SIZE).astype(np.int64)
        slot = np.array([-1 if p is None else i for i, p in enumerate(pools)], dtype=np.int64)
        pooled = slot[code] >= 0
        joined = self._joined(pools, type_)
        if joined is None:  # some block may be still to render
            wanted = np.sort(code[pooled] * POOL_SIZE + entries[pooled])
            # Distinct, as np.unique gives them (which imports numpy.ma: ~10 ms of a start).
            first = np.ones(len(wanted), dtype=bool)
            first[1:] = wanted[1:] != wanted[:-1]
            wanted = wanted[first]
            arrays = [pa.nulls(0, type_)]
            for e, pool in enumerate(pools):
                if pool is not None:
                    mine = wanted[(wanted >= e * POOL_SIZE) & (wanted < (e + 1) * POOL_SIZE)]
                    arrays.append(pool.rendered(mine - e * POOL_SIZE) if len(mine) else
                                  pa.nulls(POOL_SIZE, type_))  # fmt: skip
            joined = pa.concat_arrays(arrays)
        at = np.cumsum(slot >= 0) - 1  # each pooled endpoint's place, end to end
        where = np.where(pooled, at[code] * POOL_SIZE + entries, 0)
        return joined.take(numbers(where, valid=pooled))

    def _joined(self, pools: list[_Pool | None], type_: pa.DataType) -> pa.Array | None:
        """Every pool end to end once each is rendered whole (a large run's pools after
        its first chunks, or adopted): made once while they stay the same; else None."""
        present = [p for p in pools if p is not None]
        arrays = [p.array for p in present if p.done.all()]
        if len(arrays) < len(present) or any(a is None for a in arrays):
            return None
        held = self._whole.get(id(pools))
        if held is None or any(a is not b for a, b in zip(held[0], arrays, strict=True)):
            held = (arrays, pa.concat_arrays([pa.nulls(0, type_), *arrays]))
            self._whole[id(pools)] = held
        return held[1]
