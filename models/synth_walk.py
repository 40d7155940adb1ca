"""The structure of synthetic sessions, a chunk at a time as numpy arrays: each session's
behavior and (length, tempo, sum of pauses) row, its walk and its pauses.

Every number comes from counters.py, keyed by (seed, session index), and every operation
on a session's numbers is elementwise or runs along that session's own row (`cumsum`
along an axis adds in order), so a session comes out the same in a chunk of thousands as
drawn alone. The walk goes step by step over every session of the chunk still walking,
each behavior's chain as dense arrays padded to the largest: conditioned on the drawn
length (session_shape.py's backward tables), or, for a behavior without a shape table
(an older model), until END as the chain says. The pauses are drawn at each step,
PAUSE_CANDIDATES per transition, and the candidate whose sum is nearest the drawn sum
(in ratio) is kept and scaled to it, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import counters
from .behaviors import QUANTILE_POINTS, Behavior
from .session_shape import ConditionedChain
from .strata import JointShapes, stratified_uniforms

MAX_SESSION_LENGTH = 1000
PAUSE_CANDIDATES = 4
"""Sets of pauses drawn per session; the one whose sum is nearest the drawn total is kept."""
_POINTS = len(QUANTILE_POINTS) - 1
TABLE_FLOATS = 1 << 23
"""Largest table of every step's cumulative weights kept (64 MiB): beyond it (hundreds of
endpoints, sessions of hundreds of requests) the weights are multiplied at each step."""


@dataclass(frozen=True)
class Walked:
    """The rows of a chunk of sessions, session after session, each in order."""

    session: np.ndarray
    """Per row, its session's position in the chunk."""
    endpoint: np.ndarray
    """Per row, its endpoint's code (the model's order of endpoints)."""
    step: np.ndarray
    """Per row, its place in its session (0 first)."""
    think_s: np.ndarray
    """Per row, the pause before it (0 for a session's first)."""
    t_s: np.ndarray
    """Per row, its start (s after the model's start)."""
    lengths: np.ndarray
    """Per session, its requests."""


class WalkTables:
    """A model's behaviors as the arrays the chunked walk reads."""

    def __init__(
        self, behaviors: Sequence[Behavior], shares: np.ndarray, codes: dict[str, int]
    ) -> None:
        self.joint = JointShapes(behaviors, shares)
        chains = [ConditionedChain(b.entry, b.transitions) for b in behaviors]
        width = self.width = max([len(c.names) for c in chains] + [1])
        count = len(behaviors)
        # Column `width` of a row of weights is END (drawn only by a walk without length).
        self.entry = np.zeros((count, width + 1))
        self.move = np.zeros((count, width + 1, width + 1))
        self.code = np.zeros((count, width), dtype=np.int64)
        self.think_id = np.full((count, width + 1, width), -1, dtype=np.int64)
        quantiles: list[tuple[float, ...]] = []
        for b, (behavior, chain) in enumerate(zip(behaviors, chains, strict=True)):
            n = len(chain.names)
            self.entry[b, :n] = chain.entry
            self.move[b, :n, :n] = chain.move
            self.move[b, :n, width] = chain.end
            self.code[b, :n] = [codes[name] for name in chain.names]
            at = {name: i for i, name in enumerate(chain.names)}
            for a, tos in behavior.think.items():
                for to, think in tos.items():
                    if a in at and to in at:
                        self.think_id[b, at[a], at[to]] = len(quantiles)
                        quantiles.append(think.quantiles_s)
        self.quantiles = np.array(quantiles or [(0.0,) * len(QUANTILE_POINTS)], dtype=float)
        self.tempo = np.array([b.tempo.quantiles_s for b in behaviors], dtype=float)
        # Per (behavior, row) entry of the joint table: what a session picking it draws.
        entries = self.joint.entries
        self.e_behavior = np.array([b for b, _ in entries], dtype=np.int64)
        self.e_length = np.zeros(len(entries), dtype=np.int64)  # 0: walk until END
        self.e_tempo = np.full(len(entries), np.nan)  # NaN: drawn from the tempo quantiles
        self.e_total = np.full(len(entries), np.nan)  # NaN: no sum of pauses to scale to
        for i, (b, row) in enumerate(entries):
            shape = behaviors[b].shape
            if shape is None or row is None:
                continue
            length, tempo, total = shape.row(row)
            feasible = _feasible(chains[b], length)
            if total is not None and feasible != length:  # the nearest feasible length
                total = total * (feasible - 1) / (length - 1) if length > 1 else None
            self.e_length[i], self.e_tempo[i] = feasible, tempo
            self.e_total[i] = np.nan if total is None else total
        longest = int(self.e_length.max(initial=0))
        # Backward tables b_k (session_shape.py), k < the longest drawn length, per behavior.
        self.backward = np.zeros((count, max(longest, 1), width + 1))
        for b, chain in enumerate(chains):
            for k in range(longest):
                self.backward[b, k, : len(chain.names)] = chain.b(k)
        # Every row of weights a step may read, summed along: [behavior, from (`width`: the
        # entry), requests left - 1 (the last: a walk until END), to]. The same products
        # and sums as at each step, so the same draws; made once when small enough.
        self.cdfs: np.ndarray | None = None
        depth = self.backward.shape[1]
        if count * (width + 1) ** 2 * (depth + 1) <= TABLE_FLOATS:
            rows = np.concatenate([self.move[:, :width], self.entry[:, None]], axis=1)
            factors = np.concatenate([self.backward, np.ones((count, 1, width + 1))], axis=1)
            self.cdfs = np.cumsum(rows[:, :, None, :] * factors[:, None, :, :], axis=3)
        # The table's rows laid end to end, for `_search`: only when every row rises, so
        # that a binary search counts what `cdf <= at` counts (a NaN would not).
        self.flat: np.ndarray | None = None
        if self.cdfs is not None and (np.diff(self.cdfs, axis=3) >= 0).all():
            self.flat = np.ascontiguousarray(self.cdfs).ravel()

    def draw(self, seed: int, index: np.ndarray, starts_s: np.ndarray) -> Walked:
        """Sessions `index` (any order, any subset) starting at `starts_s`."""
        index = np.asarray(index, dtype=np.int64)
        n = len(index)
        pick = self.joint.picks(stratified_uniforms(seed, index))
        behavior, length = self.e_behavior[pick], self.e_length[pick]
        tempo, total = self.e_tempo[pick], self.e_total[pick]
        loose = length == 0
        if loose.any():
            u = counters.uniforms(counters.session_keys(seed, counters.STRATUM, index[loose]), 1)
            tempo[loose] = _interpolate(self.tempo, behavior[loose], u[:, None])[:, 0]
        steps, sums, lengths = self._walk(seed, index, behavior, length, tempo)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = sums / total[:, None]
            off = np.nan_to_num(np.maximum(ratio, 1.0 / ratio), nan=np.inf)
        scaled = ~np.isnan(total)
        best = np.where(scaled, np.argmin(off, axis=1), 0)
        kept = sums[np.arange(n), best]
        factor = np.ones(n)
        positive = scaled & (kept > 0)
        factor[positive] = total[positive] / kept[positive]
        even = scaled & ~(kept > 0) & (lengths > 1)  # every pause 0: the sum spread evenly
        spread = np.zeros(n)
        spread[even] = total[even] / (lengths[even] - 1)
        return _rows(steps, best, factor, even, spread, lengths, starts_s)

    def _walk(
        self,
        seed: int,
        index: np.ndarray,
        behavior: np.ndarray,
        length: np.ndarray,
        tempo: np.ndarray,
    ) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
        """Per step, (sessions still walking, their endpoint codes, their candidate
        pauses); per session the candidates' sums and its length."""
        n, width, size = len(index), self.width, PAUSE_CANDIDATES
        walk_keys = counters.session_keys(seed, counters.WALK, index)
        pause_keys = counters.session_keys(seed, counters.PAUSE, index)
        candidates = np.arange(size, dtype=np.uint64)
        sums, lengths = np.zeros((n, size)), np.zeros(n, dtype=np.int64)
        steps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        active, current = np.arange(n), np.zeros(n, dtype=np.int64)
        step = 0
        while len(active):
            b = behavior[active]
            held = length[active] > 0
            u = counters.uniforms(walk_keys[active], step)
            if self.flat is not None:
                depth = self.backward.shape[1] + 1
                left = np.where(held, length[active] - step - 1, depth - 1)
                row = (b * (width + 1) + (current if step else width)) * depth + left
                chosen, whole = _search(self.flat, row * (width + 1), width + 1, u)
            else:
                weights = self.entry[b] if step == 0 else self.move[b, current]
                if held.any():  # conditioned on the length: × b_(r-1), r requests left
                    weights[held] *= self.backward[b[held], length[active][held] - step - 1]
                cdf = np.cumsum(weights, axis=1)
                whole = cdf[:, -1]
                chosen = (cdf <= _below(u, whole)[:, None]).sum(axis=1)
            going = (chosen < width) & (whole > 0)
            if step >= MAX_SESSION_LENGTH:
                going[:] = False
            active, b, chosen = active[going], b[going], chosen[going]
            pauses = np.zeros((len(active), size))
            if step > 0:
                think = self.think_id[b, current[going], chosen]
                paused = think >= 0
                u = counters.uniforms(pause_keys[active][paused, None], step * size + candidates)
                drawn = _interpolate(self.quantiles, think[paused], u)
                pauses[paused] = tempo[active][paused, None] * drawn
                sums[active] += pauses
            steps.append((active, self.code[b, chosen], pauses))
            lengths[active] += 1
            walking = (length[active] == 0) | (lengths[active] < length[active])
            active, current = active[walking], chosen[walking]
            step += 1
        return steps, sums, lengths


def _rows(
    steps: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    best: np.ndarray,
    factor: np.ndarray,
    even: np.ndarray,
    spread: np.ndarray,
    lengths: np.ndarray,
    starts_s: np.ndarray,
) -> Walked:
    """The steps laid out as rows, session after session; times added step by step."""
    first_row = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    rows = int(lengths.sum())
    endpoint, step_of = np.empty(rows, dtype=np.int64), np.empty(rows, dtype=np.int64)
    think, t_row = np.zeros(rows), np.empty(rows)
    t = np.asarray(starts_s, dtype=float).copy()
    for step, (active, codes, pauses) in enumerate(steps):
        at = first_row[active] + step
        endpoint[at], step_of[at] = codes, step
        if step > 0:
            pause = pauses[np.arange(len(active)), best[active]] * factor[active]
            pause = np.where(even[active], spread[active], pause)
            think[at] = pause
            t[active] += pause
        t_row[at] = t[active]
    session = np.repeat(np.arange(len(lengths)), lengths)
    return Walked(session, endpoint, step_of, think, t_row, lengths)


def _below(u: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """Where draw `u` falls in [0, whole): u · whole may round up to the whole, past the
    last weighted column."""
    at = u * whole
    return np.asarray(np.where(at >= whole, np.nextafter(whole, -np.inf), at))


def _search(
    flat: np.ndarray, start: np.ndarray, n: int, u: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(columns, wholes): per row of `n` rising cumulative weights at `start` in `flat`,
    how many are <= its draw (what `(cdf <= at).sum(axis=1)` counts), by a binary search
    reading ~log2(n) values a row instead of gathering the whole row."""
    whole = flat[start + n - 1]
    at = _below(u, whole)
    found = np.zeros(len(start), dtype=np.int64)
    step = 1 << (n.bit_length() - 1)
    while step:
        candidate = found + step
        ok = (candidate <= n) & (flat[start + np.minimum(candidate, n) - 1] <= at)
        found = np.where(ok, candidate, found)
        step >>= 1
    return found, whole


def _interpolate(table: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws, linear between stored quantiles (QUANTILE_POINTS evenly spaced):
    row `rows[i]` of `table` at each of row i of `u`. Only the two quantiles around each
    draw are read (not whole rows: gathering them was a quarter of the walk)."""
    at = u * _POINTS
    low = np.minimum(at.astype(np.int64), _POINTS - 1)
    place = (np.asarray(rows, dtype=np.int64) * table.shape[1])[:, None] + low
    flat = np.ascontiguousarray(table).ravel()
    below, above = flat[place], flat[place + 1]
    return np.asarray(below + (at - low) * (above - below))


def _feasible(chain: ConditionedChain, length: int) -> int:
    """`length` (at most MAX_SESSION_LENGTH) when the chain can end after exactly that
    many requests, else the nearest length it can (shorter first); 1 when none can."""
    length = min(length, MAX_SESSION_LENGTH)
    for step in range(MAX_SESSION_LENGTH):
        for candidate in (length - step, length + step):
            if 1 <= candidate <= MAX_SESSION_LENGTH and chain.feasible(candidate):
                return candidate
    return 1
