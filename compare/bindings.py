"""What the SLO classes of the plan bind to on any target, learned from the real trace (or
read from its model file), never from one API's paths:

- `login`: the login endpoint the correlations found (its response yields the credential
  later requests send; models/correlations.py `find_auth`);
- `crud`: the endpoints of each resource seen both created and deleted with success: a
  `POST P` (or `POST P/`) and a `DELETE P/{param}` answered 2xx; the resource's CRUD
  endpoints are every method on `P`, `P/` and `P/{param}` (not the actions below an item,
  such as `P/{param}/sync`);
- `complex`: the slowest tenth (at least one) of the endpoints by the real trace's p95
  latency, among those with at least `MIN_TIMED` timed responses (all timed ones if none
  has that many), leaving out login, refresh and logout (slow password hashing is not a
  query).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tracereplay.errors import TraceReplayError
from tracereplay.models.correlations import AuthInfo
from tracereplay.models.session_sample import sampled_auth
from tracereplay.models.sessions import DEFAULT_SESSION_TIMEOUT_S
from tracereplay.trace import open_trace

from .measures import endpoint_codes

CLASSES = ("login", "crud", "complex")
MIN_TIMED = 5
SLOWEST_SHARE = 0.1
READ_THREADS = 2
"""Files of REAL whose sampled sessions' bodies are read at once (decoding needs no GIL)."""
_ITEM = re.compile(r"^(?P<collection>.*)/\{[^/{}]+\}$")


@dataclass(frozen=True)
class Learned:
    """The endpoints ("METHOD /template") each SLO class binds to."""

    login: str | None
    crud: tuple[str, ...]
    complex: tuple[str, ...]
    source: str
    """Where it was learned: "real trace" or a model file's path."""

    def endpoints(self, slo_class: str) -> tuple[str, ...]:
        if slo_class == "login":
            return (self.login,) if self.login else ()
        return {"crud": self.crud, "complex": self.complex}[slo_class]


@dataclass(frozen=True)
class _Endpoint:
    name: str
    succeeded: bool
    """Answered 2xx at least once."""
    p95_ms: float | None
    timed: int


def learned_from_trace(
    real: Path,
    real_s: pd.DataFrame,
    *,
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S,
    scan_rows: np.ndarray | None = None,
) -> Learned:
    """What REAL's model file says (`model_beside`), else learned from REAL: the auth flow
    as `tracereplay model` finds it (on its bounded, seeded sample of sessions, drawn from
    few of REAL's files: reading bodies of those only), the rest from `real_s` (its light
    columns). With `scan_rows`
    (each `real_s` row's scan position in REAL: `compare.read_compared(bind=True)`)
    the sample is drawn from `real_s`'s sessions, which are the model's (compare
    sessionizes as it does, compare/columns.py), else REAL's light columns are read and
    sessionized again."""
    beside = model_beside(real, open_trace(real).num_rows)
    if beside is not None:
        return beside
    from tracereplay.models.model import learned_auth, sessions_auth
    from tracereplay.models.source import ParquetSource

    if scan_rows is None:
        auth = learned_auth(real, session_timeout_s=session_timeout_s)
    else:
        ids = real_s["session_id"].to_numpy()
        source = ParquetSource.open(real, read_threads=READ_THREADS)
        auth = sessions_auth(source, ids, real_s["endpoint"], scan_rows)
    return learned_from_frame(real_s, auth)


def model_beside(real: Path, rows: int) -> Learned | None:
    """What REAL's own model file (traces/NAME.model.json) learned, when there is one of
    this trace (as many rows): reading it is much faster than finding the correlations
    again. None otherwise: compare then learns from REAL itself."""
    from tracereplay.models.model import default_model_path, load_model

    path = default_model_path(real)
    if not path.is_file():
        return None
    try:
        model = load_model(path)
    except TraceReplayError:
        return None
    if (model.get("provenance") or {}).get("rows") != rows:
        return None
    return learned_from_model(model, source=f"model {path}")


def learned_from_frame(real_s: pd.DataFrame, auth: AuthInfo | None = None) -> Learned:
    """From a sessionized real frame (endpoint, status, duration_ms) and REAL's `auth`
    flow; without one, the auth flow found in the frame (it then needs what correlations
    read: path, query, headers, bodies) on the seeded sample of its sessions the model
    reads (models/session_sample.py `sampled_auth`)."""
    if auth is None:
        auth = sampled_auth(real_s)
    return _learned(_endpoints(real_s), auth.login_endpoint, _auth_endpoints(auth), "real trace")


def _endpoints(real_s: pd.DataFrame) -> list[_Endpoint]:
    """Each endpoint REAL has, by name: answered 2xx, p95 and count of its timed requests;
    from endpoint codes (`measures.endpoint_codes`), one stable sort of them, no string per
    request (`np.quantile` depends on a sample's values only, not their order)."""
    codes, names = endpoint_codes(real_s)
    n = len(codes)
    known = codes >= 0  # a null endpoint is no endpoint (a groupby drops it)
    status = (
        pd.to_numeric(real_s["status"], errors="coerce").to_numpy(float)
        if "status" in real_s
        else np.full(n, np.nan)
    )
    present = np.bincount(codes[known], minlength=len(names))
    with np.errstate(invalid="ignore"):  # NaN (no response) is not a 2xx
        ok = np.bincount(codes[known & (status >= 200) & (status < 300)], minlength=len(names))
    del status
    duration = (
        pd.to_numeric(real_s["duration_ms"], errors="coerce").to_numpy(float)
        if "duration_ms" in real_s
        else np.full(n, np.nan)
    )
    timed = known & ~np.isnan(duration)
    codes, duration = codes[timed], duration[timed]
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=len(names)))
    groups = np.split(duration[order], bounds[:-1])
    endpoints = []
    for code in sorted(np.flatnonzero(present), key=lambda c: names[c]):
        sample = groups[code]
        endpoints.append(
            _Endpoint(
                names[code],
                bool(ok[code]),
                float(np.quantile(sample, 0.95)) if sample.size else None,
                int(sample.size),
            )
        )
    return endpoints


def _auth_endpoints(auth: AuthInfo) -> tuple[str | None, ...]:
    return (auth.login_endpoint, auth.refresh_endpoint, auth.logout_endpoint)


def learned_from_model(model: Mapping[str, Any], source: str = "model") -> Learned:
    """From a model file (`tracereplay model`): its auth, endpoint statuses and latencies.
    Gives what `learned_from_trace` gives on the trace the model was built from."""
    auth = model.get("auth") or {}
    endpoints = []
    for name, entry in sorted((model.get("endpoints") or {}).items()):
        shares = entry.get("status") or {}
        latency = entry.get("latency_ms") or {}
        endpoints.append(
            _Endpoint(
                str(name),
                any(200 <= int(code) < 300 and share > 0 for code, share in shares.items()),
                latency.get("p95"),
                # The model keeps latency quantiles, not the timed count: its request
                # count stands in (they differ only by unanswered requests).
                int(entry.get("count") or 0) if latency else 0,
            )
        )
    auth_endpoints = (auth.get("login"), auth.get("refresh"), auth.get("logout"))
    return _learned(endpoints, auth.get("login"), auth_endpoints, source)


def _learned(
    endpoints: list[_Endpoint], login: str | None, auth: Iterable[str | None], source: str
) -> Learned:
    return Learned(login, crud_endpoints(endpoints), _slowest(endpoints, set(auth)), source)


def crud_endpoints(endpoints: Iterable[_Endpoint]) -> tuple[str, ...]:
    """Every endpoint of the resources seen created and deleted (module docstring)."""
    by_name = {e.name: e for e in endpoints}
    paths: dict[str, set[str]] = {}
    for name in by_name:
        method, _, path = name.partition(" ")
        paths.setdefault(path, set()).add(method)
    resources: set[str] = set()
    for path, methods in paths.items():
        item = _ITEM.match(path)
        if not item or "DELETE" not in methods or not by_name[f"DELETE {path}"].succeeded:
            continue
        collection = item.group("collection")
        created = [f"POST {c}" for c in (collection, f"{collection}/")]
        if any(c in by_name and by_name[c].succeeded for c in created):
            resources.add(path)
    chosen = []
    for path in sorted(resources):
        collection = _ITEM.match(path).group("collection")  # type: ignore[union-attr]
        for p in (collection, f"{collection}/", path):
            chosen += [f"{m} {p}" for m in sorted(paths.get(p, ()))]
    return tuple(sorted(set(chosen)))


def _slowest(endpoints: list[_Endpoint], leave_out: set[str | None]) -> tuple[str, ...]:
    timed = [e for e in endpoints if e.p95_ms is not None and e.name not in leave_out]
    enough = [e for e in timed if e.timed >= MIN_TIMED] or timed
    if not enough:
        return ()
    count = max(1, math.ceil(len(enough) * SLOWEST_SHARE))
    ranked = sorted(enough, key=lambda e: (-float(e.p95_ms or 0.0), e.name))
    return tuple(e.name for e in ranked[:count])
