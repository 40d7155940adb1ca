"""What a replay says about itself (reports/RUN/summary.json, beside the replayed/ trace
compare reads): the load it offered and achieved, and the sessions it cut or skipped."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tracereplay.models.frame import run_positions

SUMMARY_NAME = "summary.json"
TIMING_NAME = "timing.parquet"
_KEY_PREFIX = "replay:"
FROM_SUMMARY = "summary.json achieved_scale"
FROM_RATES = "summary.json achieved_rps ÷ offered_rps × N"
FROM_THROUGHPUT = "throughput ratio: OTHER requests/s ÷ REAL requests/s"
CUT_LISTED = "listed in summary.json"
CUT_ESTIMATED = "estimated: the sessions that sent last, as many as summary.json cut"
SESSION_COUNTS = ("sessions_planned", "sessions_started", "sessions_completed")


def read_run_summary(other_path: Path) -> dict[str, Any] | None:
    """summary.json of the replay whose replayed/ trace is `other_path`; None for any other
    trace, or when the file is missing or unreadable (compare then says so)."""
    other_path = Path(other_path)
    if other_path.name != "replayed":
        return None
    path = other_path.parent / SUMMARY_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class Load:
    """Offered vs achieved N× and what happened to the planned sessions."""

    offered_scale: float
    achieved_scale: float | None
    source: str
    """Where achieved_scale comes from: FROM_SUMMARY, FROM_RATES or FROM_THROUGHPUT."""
    offered_rps: float | None
    achieved_rps: float | None
    real_rps: float | None
    sessions_planned: int | None
    sessions_started: int | None
    sessions_completed: int | None
    sessions_cut: int | None
    sessions_skipped: int | None
    """Planned sessions that never started."""
    requests_skipped: int | None
    """Requests the replay did not send (not the session's own object, no live credential)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


LOAD_COUNTS = (
    ("sessions_cut", "cut"),
    ("sessions_skipped", "never started"),
    ("requests_skipped", "requests skipped"),
)
"""The load's counts a report names, and the words it names them with."""


def achieved_load(
    summary: Mapping[str, Any] | None,
    scale: float,
    throughput_rps: tuple[float | None, float | None],
) -> Load:
    """Achieved N× from the run's own figures when it gives them, else the throughput
    ratio (labelled as such)."""
    s = summary or {}
    real_rps, other_rps = throughput_rps
    achieved, source = _number(s.get("achieved_scale")), FROM_SUMMARY
    offered_rps, achieved_rps = _number(s.get("offered_rps")), _number(s.get("achieved_rps"))
    if achieved is None and offered_rps and achieved_rps is not None:
        achieved, source = scale * achieved_rps / offered_rps, FROM_RATES
    if achieved is None:
        source = FROM_THROUGHPUT
        if real_rps and other_rps is not None:
            achieved = other_rps / real_rps
    counts = {k: _count(s.get(k)) for k in (*SESSION_COUNTS, "sessions_cut", "sessions_skipped")}
    skipped = s.get("skipped")  # {total, by_endpoint} since issue 10
    counts["requests_skipped"] = _count(
        skipped.get("total") if isinstance(skipped, Mapping) else skipped
    )
    return Load(
        offered_scale=scale,
        achieved_scale=achieved,
        source=source,
        offered_rps=offered_rps,
        achieved_rps=achieved_rps if achieved_rps is not None else other_rps,
        real_rps=real_rps,
        **counts,
    )


def cut_session_keys(
    other_s: pd.DataFrame, summary: Mapping[str, Any] | None
) -> tuple[tuple[str, ...], str | None]:
    """The session keys (the replayed trace's `session` values) of the sessions the replay
    cut, and how they were found: listed (summary.json `sessions_cut_keys`) or estimated
    (the `sessions_cut` sessions whose last request came last: a cut session was still
    running when the run ended). None: the run cut nothing, or nothing says it did."""
    s = summary or {}
    listed = s.get("sessions_cut_keys")
    if isinstance(listed, list):
        return tuple(sorted({str(k) for k in listed})), CUT_LISTED
    cut = _count(s.get("sessions_cut")) or 0
    if cut <= 0:
        return (), None
    last = other_s.groupby("session_key", sort=True)["t_s"].max()
    latest = last.sort_values(ascending=False, kind="stable").index[:cut]
    return tuple(sorted(str(k) for k in latest)), CUT_ESTIMATED


def session_ids_of(other_s: pd.DataFrame, keys: Iterable[str]) -> set[int]:
    """The session_id of the last session of each key (the one a cut interrupted; a key
    split at the inactivity timeout has earlier, finished sessions)."""
    wanted = set(keys)
    if not wanted:
        return set()
    rows = other_s.loc[other_s["session_key"].isin(wanted), ["session_key", "session_id"]]
    return {int(i) for i in rows.groupby("session_key")["session_id"].max()}


def pauses_over_skips(other_path: Path, other_s: pd.DataFrame) -> np.ndarray | None:
    """Per row of `other_s` (a replay's replayed/ trace, sessionized), whether the replay
    held back (skipped) a planned request of its session right before it: its pause then
    spans two planned pauses, not a think time of the real kind, and think-time figures
    leave it out (issue 10's safety rules skip 3-5 % of a sandbox capture's requests,
    which put the mean think 3-7 % high). Read from timing.parquet beside replayed/:
    `seq`, a request's place in its planned session, jumps there; session `replay:%08d`
    is timing's `session`. None when OTHER is not a replay's trace or timing is unreadable."""
    other_path = Path(other_path)
    if other_path.name != "replayed" or other_s.empty:
        return None
    try:
        timing = pq.read_table(
            other_path.parent / TIMING_NAME, columns=["session", "seq", "sent_s"]
        )
    except (OSError, pa.ArrowInvalid, KeyError):
        return None
    session = timing["session"].to_numpy().astype(np.int64)
    seq = timing["seq"].to_numpy().astype(np.int64)
    order = np.lexsort((timing["sent_s"].to_numpy(), session))
    session, seq = session[order], seq[order]
    marks = _after_jump(session, seq)
    keys = pd.Categorical(other_s["session_key"])
    numbers = np.array([_key_number(str(k)) for k in keys.categories], dtype=np.int64)
    row_session = np.where(keys.codes >= 0, numbers[keys.codes], -1)
    t = other_s["t_s"].to_numpy(float)
    order = np.lexsort((t, row_session))
    ranked = np.empty(len(order), np.int64)
    ranked[order] = run_positions(row_session[order])
    found = np.isin(row_session * (1 << 32) + ranked, marks) & (row_session >= 0)
    return found


def _after_jump(session: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """session * 2**32 + rank of each sent request whose planned predecessor was skipped
    (rows sorted by session, then sent time)."""
    ranks = run_positions(session)
    jump = np.r_[False, (np.diff(seq) > 1) & (session[1:] == session[:-1])]
    marks: np.ndarray = session[jump] * (1 << 32) + ranks[jump]
    return marks


def _key_number(key: str) -> int:
    number = key[len(_KEY_PREFIX) :] if key.startswith(_KEY_PREFIX) else ""
    return int(number) if number.isdigit() else -1


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _count(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None
