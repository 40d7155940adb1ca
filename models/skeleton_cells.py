"""The endpoints of a scan's rows without the distinct paths (issue 15, the partitioned
model): each batch's distinct (method, path) pairs cut to path skeletons in the batch (the
package's shape rules, a function of each path alone), and only what the templater's fit
and the names' order need kept across batches (`SkeletonCells`). A row's code is its cell
(raw method, skeleton); after the scan, `fit` gives the model's templater, its endpoint
names in the model's order and each cell's endpoint (`templating.request_endpoints`' to
the bit: tests/models/test_key_partitions.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .shapes import cut_paths, skeleton_codes, split_skeleton_codes
from .templating import Templater

__all__ = ["BatchCells", "BatchPairs", "Segments", "SkeletonCells"]


@dataclass(frozen=True)
class BatchCells:
    """A batch's cells: each row's, and each distinct (method, path) pair's cell and
    path (its index into the batch's path dictionary; its length: a null path)."""

    row: np.ndarray
    pair_cell: np.ndarray
    pair_path: np.ndarray
    segments: Segments
    """The pairs' distinct paths (in index order) cut and split (`ParamFacts.add_batch`)."""


@dataclass(frozen=True)
class Segments:
    """Paths cut (`shapes.cut_paths`) and split at "/", and all their segments as one
    dictionary: what both the skeletons and the parameter facts read of them, made once."""

    lists: pa.ListArray
    encoded: pa.DictionaryArray
    """`lists.flatten()`, dictionary-encoded."""

    @classmethod
    def of(cls, paths: pa.Array) -> Segments:
        """Of `paths` (strings, no nulls)."""
        lists = pc.split_pattern(cut_paths(paths), "/")
        return cls(lists, pc.dictionary_encode(lists.flatten()))

    def skeleton_codes(self) -> tuple[np.ndarray, list[tuple[str, ...]]]:
        """`shapes.skeleton_codes` of the paths (one pass, over these segments: the same
        codes and skeletons in the same order)."""
        return split_skeleton_codes(self.lists, self.encoded)


@dataclass(frozen=True)
class BatchPairs:
    """A batch's distinct (method, path) pairs and their paths' skeletons: what
    `SkeletonCells.add` numbers and counts, made from the batch alone (on a scan's threads,
    ahead of the batches being added)."""

    methods: pa.Array
    """The batch's method dictionary, a null after it."""
    row_pair: np.ndarray
    """Each row's pair."""
    counts: np.ndarray
    """Each pair's rows."""
    pair_method: np.ndarray
    pair_path: np.ndarray
    """Each pair's method (into `methods`) and path (into `texts`)."""
    used_paths: np.ndarray
    """Each of `texts`' index into the batch's path dictionary (its length: a null)."""
    texts: pa.Array
    """The pairs' distinct paths."""
    fit: tuple[np.ndarray, list[tuple[str, ...]]] | None
    """The fit's skeleton codes of `texts` (a null read as "None"), where one is null."""
    skeletons: tuple[np.ndarray, list[tuple[str, ...]]]
    """The skeleton codes of `texts` (a null templated as "/")."""
    segments: Segments

    @classmethod
    def of(
        cls, methods: pa.Array, paths: pa.Array, method: np.ndarray, path: np.ndarray
    ) -> BatchPairs:
        """Of a batch's rows' method and path indices into its dictionaries `methods` and
        `paths` (a null: one past the end)."""
        methods = pa.concat_arrays([methods.cast(pa.string()), pa.nulls(1, pa.string())])
        paths = pa.concat_arrays([paths.cast(pa.string()), pa.nulls(1, pa.string())])
        pairs, row_pair, counts = _distinct(method, path, len(methods), len(paths))
        pair_method, pair_path = pairs // len(paths), pairs % len(paths)
        used_paths, pair_path = np.unique(pair_path, return_inverse=True)
        texts = paths.take(pa.array(used_paths))
        # The fit reads a null as "None" and templates it as "/" (request_endpoints).
        fit = skeleton_codes(texts.fill_null("None")) if texts.null_count else None
        segments = Segments.of(texts.fill_null("/"))
        return cls(
            methods, row_pair, counts, pair_method, pair_path.ravel(), used_paths, texts, fit,
            segments.skeleton_codes(), segments,
        )  # fmt: skip


class SkeletonCells:
    """What the endpoints need, kept across batches: (METHOD, path skeleton) request
    counts (all `Templater.fit_skeletons` reads: it sums counts per skeleton and keeps the
    set of (method, skeleton)), and per cell (raw method, skeleton applied) the least path
    seen (where `request_endpoints` numbers the names: in order of first use over the
    sorted (method, path) pairs). A row spills its cell; nothing kept grows with paths
    unless skeletons do."""

    def __init__(self) -> None:
        self.skeleton_id: dict[tuple[str, ...], int] = {}
        self.method_id: dict[str | None, int] = {}
        """Raw methods (None: null) as read, numbered in order of first use."""
        self.fit_counts: dict[tuple[str, int], int] = {}
        self.cell_id: dict[tuple[int, int], int] = {}
        self.least_path: list[str | None] = []
        """Per cell, its least path (None: only null paths, which sort last)."""

    def _numbered(self, codes: np.ndarray, skeletons: list[tuple[str, ...]]) -> np.ndarray:
        """Skeleton `codes` (into `skeletons`) as the skeletons' numbers (new ones added)."""
        ids = self.skeleton_id
        number = np.array([ids.setdefault(k, len(ids)) for k in skeletons], np.int64)
        return np.asarray(number[codes])

    def add_batch(
        self, methods: pa.Array, paths: pa.Array, method: np.ndarray, path: np.ndarray
    ) -> np.ndarray:
        """Each row's cell, from its method and path indices into the batch dictionaries
        `methods` and `paths` (a null: one past the end)."""
        return self.add_pairs(methods, paths, method, path).row

    def add_pairs(
        self, methods: pa.Array, paths: pa.Array, method: np.ndarray, path: np.ndarray
    ) -> BatchCells:
        """`add_batch`'s cells, and the batch's distinct (method, path) pairs' cells and
        paths: what a row's cell and path tell, read once a pair (`ParamFacts.add_batch`
        of the pairs is that of the rows: its facts hold no count of rows)."""
        return self.add(BatchPairs.of(methods, paths, method, path))

    def add(self, batch: BatchPairs) -> BatchCells:
        """`add_pairs` of the pairs `BatchPairs.of` made: numbered, counted and kept here,
        in the order batches are added."""
        methods, texts = batch.methods, batch.texts
        pair_method, pair_path = batch.pair_method, batch.pair_path
        # (the fit's skeletons numbered first where there are any: a null path's)
        fit = None if batch.fit is None else self._numbered(*batch.fit)
        applied = self._numbered(*batch.skeletons)
        fit = applied if fit is None else fit
        raw = methods.to_pylist()
        upper = ["NONE" if m is None else str(m).upper() for m in raw]
        raw_id = np.array([self.method_id.setdefault(m, len(self.method_id)) for m in raw])
        # Counts per (METHOD, fit skeleton): few per batch.
        upper_of, upper_code = np.unique(np.array(upper, dtype=object), return_inverse=True)
        key = upper_code.ravel()[pair_method] * (1 << 32) + fit[pair_path]
        keys, at = np.unique(key, return_inverse=True)
        sums = np.bincount(at.ravel(), weights=batch.counts, minlength=len(keys)).astype(np.int64)
        for k, n in zip(keys.tolist(), sums.tolist(), strict=True):
            entry = (str(upper_of[k >> 32]), k & 0xFFFFFFFF)
            self.fit_counts[entry] = self.fit_counts.get(entry, 0) + n
        # The cells (raw method, applied skeleton), each one's least path of the batch.
        key = raw_id[pair_method] * (1 << 32) + applied[pair_path]
        keys, at = np.unique(key, return_inverse=True)
        at = at.ravel()
        # (Arrow's min of strings: binary order, a null only when all are: `_path_before`'s;
        # hashed by cell, not a sort of the paths: real10M's scan 0.1 CPU s less)
        found = (
            pa.table({"cell": at, "path": texts.take(pa.array(pair_path))})
            .group_by("cell")
            .aggregate([("path", "min")])
        )
        least: list[str | None] = [None] * len(keys)
        for c, text in zip(found["cell"].to_pylist(), found["path_min"].to_pylist(), strict=True):
            least[c] = text
        cells = []
        for k, text in zip(keys.tolist(), least, strict=True):
            cell = self.cell_id.setdefault((k >> 32, k & 0xFFFFFFFF), len(self.cell_id))
            if cell == len(self.least_path):
                self.least_path.append(text)
            elif _path_before(text, self.least_path[cell]):
                self.least_path[cell] = text
            cells.append(cell)
        pair_cell = np.array(cells, np.int32)[at]
        return BatchCells(
            pair_cell[batch.row_pair], pair_cell, batch.used_paths[pair_path], batch.segments
        )

    def fit(self) -> tuple[Templater, list[str], np.ndarray]:
        """The templater, the endpoint names (as `request_endpoints` numbers them) and each
        cell's code into them."""
        methods = list(self.method_id)
        skeletons = list(self.skeleton_id)
        templater = Templater.fit_skeletons(
            (method, skeletons[k], n) for (method, k), n in self.fit_counts.items()
        )
        cells = list(self.cell_id)
        names_of_cell = [
            templater.skeleton_endpoint(
                "NONE" if methods[m] is None else str(methods[m]).upper(), skeletons[k]
            )
            for m, k in cells
        ]
        # A name's first use: its least (method, path) pair, methods and paths each in
        # sorted order with null last (the model's codes).
        rank: dict[str | None, int] = {
            m: i for i, m in enumerate(sorted(m for m in methods if m is not None))
        }
        rank[None] = len(rank)
        first: dict[str, tuple[int, bool, str]] = {}
        for (m, _), name, path in zip(cells, names_of_cell, self.least_path, strict=True):
            at = (rank[methods[m]], path is None, path or "")
            if name not in first or at < first[name]:
                first[name] = at
        names = sorted(first, key=first.__getitem__)
        kind = np.int16 if len(names) <= np.iinfo(np.int16).max else np.int32
        number = {name: i for i, name in enumerate(names)}
        endpoint_of = np.array([number[name] for name in names_of_cell], kind)
        return templater, names, endpoint_of

    def held(self) -> dict[str, int]:
        return {"skeletons": len(self.skeleton_id), "cells": len(self.cell_id)}


def _path_before(path: str | None, other: str | None) -> bool:
    """Whether `path` sorts before `other`, as the model's sorted paths have them: by
    code point (the binary order of UTF-8), a null last."""
    return path is not None and (other is None or path < other)


def _distinct(
    method: np.ndarray, path: np.ndarray, n_methods: int, n_paths: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The batch's distinct (method, path) index pairs as `method * n_paths + path`
    (sorted), each row's index into them and each pair's rows: counted in a table of every
    cell when it holds at most 4 cells a row (a row group's dictionaries are small), else
    by a sort."""
    pair = method.astype(np.int64) * n_paths + path
    cells = n_methods * n_paths
    if cells > 4 * len(pair):
        pairs, inverse, counts = np.unique(pair, return_inverse=True, return_counts=True)
        return pairs, inverse.ravel(), counts
    counts = np.bincount(pair, minlength=cells)
    pairs = np.flatnonzero(counts)
    index = np.zeros(cells, np.int64)
    index[pairs] = np.arange(len(pairs))
    return pairs, index[pair], counts[pairs]
