"""The behaviors (`behaviors.fit_behaviors`) made from key partitions (issue 15), to the bit:
each pass reads one partition's requests at a time; what is held across them is sessions-
sized (and up to CACHE_BYTES of partitions); the pauses' medians and quantiles come from
values spilled to disk.

Sessions never cross partitions, so every per-session value (tempo, sum of pauses, feature
row, nearest centre) is made from one partition's rows with the fit's own functions, and
scattered to the session's global position. The passes: (a) the sessions' ids, the
endpoints used (the fit's labels), the transitions seen (its columns: coded by the names
until the labels are known) and the positive pauses spilled by transition (their medians:
the tempo's reference); each session's length, sum of pauses, first step and END column;
(b) each session's tempo and the k-means sample's feature rows (the tempo column,
standardised over every session, filled after); the K sweep on the sample as
`choose_clusters`; (c) each session's nearest centres (one pass per `_Assignments` ask);
(d) the chains' counts and every pause / tempo spilled by (behavior, transition) and trace,
the rare cells' few values held; their quantiles from one `answer`. The chains and session
tables are then `_Moves.chain` and `SessionTable.fit` over sessions-sized arrays. Passes
(b) to (d) read a partition again unless it was kept (`_Locals`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np

from .behavior_paths import (
    END,
    TEMPO_SHRINK,
    Pairs,
    SessionPaths,
    count_per_session,
    group_sums,
)
from .behaviors import (
    _NO_THINK,
    CLUSTER_SAMPLE_SESSIONS,
    MAX_BEHAVIORS,
    MIN_THINK_SAMPLES,
    QUANTILE_POINTS,
    Behavior,
    SessionFeatures,
    ThinkTime,
    _Moves,
    _tempo_feature,
    chosen_clusters,
    nearest_each,
    sig,
)
from .in_order import in_order
from .partition_behavior_inputs import (
    AHEAD,
    Columns,
    PartitionRequests,
    SessionArrays,
    TraceSessions,
    pass_a,
    session_bounds,
)
from .session_shape import Censoring, SessionTable
from .spilled_quantiles import Ask, Chunk, SpilledValues

__all__ = ["CACHE_BYTES", "partition_behaviors"]

CACHE_BYTES = 32 << 20
"""The bytes of partitions' requests (`_Local`: ~10 B a request) kept between passes."""
T = TypeVar("T")


@dataclass(frozen=True)
class _Local:
    """One partition's sessions as the fit's `SessionPaths` (its labels, its requests in
    session-id order) and `Pairs` (the trace's columns), each session's global position."""

    paths: SessionPaths
    pairs: Pairs
    where: np.ndarray
    """Per local session, its global position."""

    @classmethod
    def of(cls, part: PartitionRequests, trace: TraceSessions, p: int, columns: Columns) -> _Local:
        """Partition `p`'s (`part`), its sessions as pass (a) found them."""
        shape = trace.shapes[p]
        # Rows given session by session (ids ascending: a partition made by the model's
        # sessions) are read as they are; else sorted by id, each session's kept in order.
        session = np.asarray(part.session)
        order = slice(None) if shape.ordered else np.argsort(session, kind="stable")
        session = session[order]
        bounds = session_bounds(session)
        paths = SessionPaths(
            labels=trace.labels,
            step=trace.remap[np.asarray(part.endpoint)[order]],
            think_s=np.asarray(part.think_s, dtype=float)[order],
            length=np.diff(bounds),
        )
        width = len(trace.labels)
        pair = paths.previous().astype(np.int64) * width + paths.step
        last = paths.first + paths.length - 1
        end_pair = paths.step[last].astype(np.int64) * width + paths.code(END)
        where = session[bounds[:-1]] if shape.where is None else shape.where
        return cls(paths, Pairs(columns.codes, columns(pair), columns(end_pair)), where)

    def nbytes(self) -> int:
        """The bytes of its arrays, with the sessions' bounds and ends its paths make."""
        paths, pairs = self.paths, self.pairs
        arrays = [paths.step, paths.think_s, pairs.column, pairs.end_column, self.where]
        return sum(a.nbytes for a in arrays) + 3 * paths.length.nbytes

    def within(self) -> np.ndarray:
        """Per request, whether its think is a pause (`Pauses.of`'s)."""
        within: np.ndarray = np.isfinite(self.paths.think_s)
        within[self.paths.first] = False
        return within


class _Locals:
    """Each partition's `_Local` for the passes after (a), in partition order: derived from
    its rows read again, or kept from the pass before while those kept fit in `budget`
    bytes (passes (b), (c) and (d) each read every partition: a kept one is read once). A
    fixed budget: what is held stays flat in rows (at real10M P=32 a partition's is ~4 MB).
    A pass's own work of each partition (`each`) is made on threads, `AHEAD` partitions
    beside the one the pass holds: the pass gives its results on in partition order, so
    what it adds up, spills or keeps is the same as one partition after the other (the
    behaviors' child, real10M: its passes (c) and (d) run while the parent waits for it,
    on a core that would idle)."""

    def __init__(
        self,
        parts: Sequence[PartitionRequests],
        trace: TraceSessions,
        columns: Columns,
        budget: int,
    ) -> None:
        self.parts, self.trace, self.columns = parts, trace, columns
        self.budget, self.used = budget, 0
        self.kept: dict[int, _Local] = {}

    def each(
        self, work: Callable[[_Local], T], *, last: bool = False
    ) -> Iterator[tuple[_Local, T]]:
        """Each partition's `_Local` and `work` of it, in partition order, up to `AHEAD`
        partitions made on threads beside the one given. A partition made anew is kept
        (decided here, in order) while the budget allows; with `last` (the last pass),
        none is kept and a kept one is let go once given."""

        def made(p: int) -> tuple[_Local, bool, T]:
            local = self.kept.pop(p, None) if last else self.kept.get(p)
            fresh = local is None
            if local is None:
                local = _Local.of(self.parts[p], self.trace, p, self.columns)
            return local, fresh, work(local)

        for p, (local, fresh, found) in enumerate(
            in_order(made, range(len(self.parts)), AHEAD, "behaviors")
        ):
            if fresh and not last:
                size = local.nbytes()
                if self.used + size <= self.budget:
                    self.kept[p] = local
                    self.used += size
            yield local, found
            del local, found


def partition_behaviors(
    parts: Sequence[PartitionRequests],
    names: Sequence[str],
    seed: int = 0,
    max_behaviors: int = MAX_BEHAVIORS,
    sample: int = CLUSTER_SAMPLE_SESSIONS,
    censored: Censoring | None = None,
    directory: Path | None = None,
    cache_bytes: int = CACHE_BYTES,
) -> list[Behavior]:
    """`fit_behaviors` of the frame whose sessions `parts` hold (`names`: the endpoints'
    names by code), to the bit; `censored` by global position, as the fit's. Values are
    spilled under `directory` (default: the system's temp dir), removed on return;
    up to `cache_bytes` of partitions' requests kept between passes (`_Locals`)."""
    with SpilledValues(directory) as spilled:
        trace, columns, median, made = pass_a(parts, names, spilled)
    n = len(trace.ids)
    if not n:
        return []
    index = (
        np.arange(n)
        if n <= sample
        else np.sort(np.random.default_rng(seed).choice(n, sample, False))
    )
    locals_ = _Locals(parts, trace, columns, cache_bytes)
    _tempos(locals_, columns, median, made, index)
    column = _tempo_feature(made.tempo)[:, 0]
    made.points[:, -1] = column[index] + 0.0  # (-0.0 is left out of a CSR row: 0.0)

    assign = partial(_nearest, locals_, column)
    labels = chosen_clusters(made.points, n, assign, seed, max_behaviors)
    no = np.zeros(n, dtype=bool)
    at_start = censored.start if censored is not None else no
    at_end = censored.end if censored is not None else no
    with SpilledValues(directory) as spilled:
        moves = _moves(locals_, trace, columns, made, labels, at_start, at_end, spilled)
    sizes = np.bincount(labels)
    order = sorted(np.flatnonzero(sizes).tolist(), key=lambda k: (-int(sizes[k]), k))
    behaviors = []
    for rank, label in enumerate(order):
        at = np.flatnonzero(labels == label)
        chain = moves.chain(f"b{rank + 1}", label, made.length[at], n, made.tempo[at])
        table = SessionTable.fit(
            made.length[at], made.tempo[at], at_start[at] | at_end[at], seed, made.pause_sums[at]
        )
        behaviors.append(replace(chain, shape=table))
    return behaviors


def _tempos(
    locals_: _Locals,
    columns: Columns,
    median: np.ndarray,
    made: SessionArrays,
    index: np.ndarray,
) -> None:
    """Pass (b): per session its tempo (`Pauses.of`'s, the trace's `median` given), and
    the feature rows of the sample `index` (global positions, ascending) with the tempo
    column left 0, into `made`."""
    made.tempo = np.full(len(locals_.trace.ids), np.nan)
    made.points = np.zeros((len(index), len(columns.codes) + 1))
    sampled = np.zeros(len(made.tempo), dtype=bool)
    sampled[index] = True

    def of(local: _Local) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The partition's tempos, its sampled sessions and their feature rows."""
        paths, pairs, where = local.paths, local.pairs, local.where
        think, within = paths.think_s, local.within()
        pause, column = think[within], pairs.column[within]
        positive = pause > 0
        ratio = median[column[positive]]
        np.divide(pause[positive], ratio, out=ratio)
        with np.errstate(invalid="ignore"):
            n_logs = count_per_session(within & (think > 0), paths)
        sums = group_sums(np.log(ratio, out=ratio), n_logs)
        has = n_logs > 0
        tempo = np.full(len(paths.length), np.nan)
        tempo[has] = np.exp(sums[has] / (n_logs[has] + TEMPO_SHRINK))
        chosen = np.flatnonzero(sampled[where])
        if not len(chosen):
            return tempo, chosen, None
        rows = SessionFeatures(paths, pairs, np.zeros(len(paths.length))).take(chosen)
        return tempo, chosen, rows.toarray()

    for local, (tempo, chosen, rows) in locals_.each(of):
        made.tempo[local.where] = tempo
        if rows is not None:
            made.points[np.searchsorted(index, local.where[chosen])] = rows


def _nearest(
    locals_: _Locals,
    column: np.ndarray,
    centres: dict[int, np.ndarray],
) -> dict[int, np.ndarray]:
    """Pass (c): `nearest_each` of every session (global order), each partition's rows
    made from its requests (a row is its own session's: the whole matrix's to the bit)."""
    n = len(locals_.trace.ids)
    # (a K's labels in 1 B a session, not 8: the sweep holds up to 5 K's at once)
    kind = np.int8 if max(len(c) for c in centres.values()) <= 127 else np.int64
    out = {key: np.empty(n, dtype=kind) for key in centres}

    def of(local: _Local) -> dict[int, np.ndarray]:
        return nearest_each(SessionFeatures(local.paths, local.pairs, column[local.where]), centres)

    for local, nearest in locals_.each(of):
        for key, found in nearest.items():
            out[key][local.where] = found
    return out


def _moves(
    locals_: _Locals,
    trace: TraceSessions,
    table: Columns,
    made: SessionArrays,
    labels: np.ndarray,
    at_start: np.ndarray,
    at_end: np.ndarray,
    spilled: SpilledValues,
) -> _Moves:
    """Pass (d): `_Moves.of`'s counts from each partition, every finite pause / tempo
    spilled by cell (behavior × columns + column) and also in the trace's group; the values
    of cells with fewer than MIN_THINK_SAMPLES pauses in a partition held (the rare cells'
    are among them); the quantiles of the frequent cells and of the trace from one answer."""
    width, columns, codes = len(trace.labels), len(table.codes), table.codes
    k = int(labels.max()) + 1
    cells = k * columns
    traced = cells  # (the group of every pause)
    fresh = np.bincount(labels, weights=~at_start, minlength=k) > 0
    entered = ~(at_start & fresh[labels])
    entries = np.bincount(
        labels[entered] * width + made.first_step[entered], minlength=k * width
    ).reshape(k, width)
    moved = np.bincount(labels * columns + made.end_column, minlength=cells)
    cut = np.flatnonzero(at_end)
    moved -= np.bincount(labels[cut] * columns + made.end_column[cut], minlength=cells)
    sizes = np.zeros(cells, dtype=np.int64)
    held_cells, held_values = [], []
    tempo = np.where(np.isnan(made.tempo), 1.0, made.tempo)

    def of(local: _Local) -> tuple[np.ndarray, Chunk, np.ndarray, np.ndarray, np.ndarray]:
        """The partition's moves by cell, its finite pauses / tempo by cell (a chunk to
        spill), their count by cell, and the cells and pauses of its cells with few."""
        paths, pairs, where = local.paths, local.pairs, local.where
        base = np.repeat(labels[where].astype(np.int64) * columns, paths.length)
        cell = base + pairs.column
        moves = np.bincount(cell, minlength=cells)
        within = local.within()
        cell = cell[within]
        scaled = paths.think_s[within] / np.repeat(tempo[where], paths.length)[within]
        finite = np.isfinite(scaled)
        cell, scaled = cell[finite], scaled[finite]
        here = np.bincount(cell, minlength=cells)
        few = (here > 0) & (here < MIN_THINK_SAMPLES)
        picked = np.flatnonzero(few[cell])
        return moves, Chunk.of(scaled, cell, also=traced), here, cell[picked], scaled[picked]

    for _, (moves, chunk, here, held_cell, held_value) in locals_.each(of, last=True):
        moved += moves
        spilled.put(chunk)
        sizes += here
        held_cells.append(held_cell)
        held_values.append(held_value)
    frequent = np.flatnonzero(sizes >= MIN_THINK_SAMPLES)
    rare = (sizes > 0) & (sizes < MIN_THINK_SAMPLES)
    cell = np.concatenate(held_cells)
    kept = rare[cell]
    points = QUANTILE_POINTS.tolist()
    # A cell with values asked beside the trace: `SpilledValues` fails on an ask whose
    # only wanted bin is of an `also` group (its search of the wanted bins reads the
    # lookup's sentinel: `_pass`' `lookups[0].wanted`, one value or one tie spilled).
    asked = frequent if len(frequent) else np.flatnonzero(sizes)[:1]
    by_cell, of_trace = spilled.answer(
        Ask.quantiles(points, asked.tolist()), Ask.quantiles(points, [traced])
    )
    trace_think = _NO_THINK
    if len(of_trace.groups):
        q = of_trace.values[0]
        trace_think = ThinkTime(
            tuple(sig(float(v), 4) for v in q), int(of_trace.counts[0]), "trace"
        )
    return _Moves(
        width=width,
        labels=trace.labels,
        pairs=codes,
        entries=entries,
        counts=moved.reshape(k, columns),
        sizes=sizes,
        quantiles={c: q for c, q in by_cell.as_dict().items() if sizes[c] >= MIN_THINK_SAMPLES},
        rare=(cell[kept], np.concatenate(held_values)[kept]),
        pauses=np.zeros(0),
        fresh=fresh,
        trace_think=trace_think,
    )
