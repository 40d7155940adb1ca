"""`tracereplay cleanup RUN --host URL [--credentials FILE]`: delete the objects a replay
created and left behind, through the learned DELETE endpoints only.

It reads RUN/created.json (what the run's sessions created, which account made each, the
DELETE the model learned for it), signs in as each of those accounts, and deletes each
object the run created and did not delete itself: ownership's one decision
(replay/ownership.py) with the record's ids as what is owned, urls.py's one URL. A 2xx
deletes it, a 404/410 means it is already gone; anything else leaves it, with the reason.
Idempotent: what is deleted is marked in created.json and not sent again. Exit 1 when
anything is left.
"""

from __future__ import annotations

import http.cookiejar
import json
import random
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tracereplay.errors import TraceReplayError, UsageError
from tracereplay.models.correlations import auth_from_json
from tracereplay.models.id_model import ids_from_json

from .correlate import SessionCorrelator
from .credentials import Credential, load_credentials
from .liveids import CredentialPools, RunObjects, SessionIds
from .ownership import Cleared, Protection, clear
from .plan import PlannedRequest
from .safetylog import CREATED_FILE, CREATED_FORMAT
from .urls import Origin, UnsafeUrlError, outgoing_url, parse_origin

REQUEST_TIMEOUT_S = 30.0
GONE = (404, 410)


@dataclass
class CleanupResult:
    deleted: int = 0
    already_gone: int = 0
    left: list[tuple[str, str]] = field(default_factory=list)
    """(id, why) of each object still there."""

    @property
    def exit_code(self) -> int:
        return 1 if self.left else 0

    def line(self, run: Path) -> str:
        text = f"cleanup {run}: {self.deleted} deleted, {self.already_gone} already gone"
        if not self.left:
            return text + ", nothing left"
        reasons = sorted({why for _, why in self.left})
        return text + f", {len(self.left)} LEFT ({'; '.join(reasons)[:300]})"


@dataclass(frozen=True)
class Answer:
    status: int | None
    headers: list[tuple[str, str]]
    body: bytes


Transport = Callable[[str, Cleared], Answer]


def read_record(run: Path) -> dict[str, Any] | None:
    """RUN/created.json; None when the run created nothing; UsageError when RUN is not a
    replay's run folder or the record is damaged."""
    path = run / CREATED_FILE
    if not path.exists():
        if (run / "summary.json").exists():
            return None
        raise UsageError(f"{run}: not a replay run folder (no summary.json or {CREATED_FILE})")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not readable ({type(exc).__name__})") from None
    if not isinstance(record, dict) or record.get("format") != CREATED_FORMAT:
        raise UsageError(f"{path}: not a {CREATED_FORMAT} record")
    return record


def run_cleanup(
    run: Path,
    host: str,
    credentials_path: Path | None,
    *,
    transport: Transport | None = None,
) -> CleanupResult:
    """Delete what the replay in `run` left (see the module doc)."""
    origin = parse_origin(host)
    credentials = load_credentials(credentials_path) if credentials_path else []
    record = read_record(run)
    result = CleanupResult()
    if record is None:
        return result
    recorded = parse_origin(str(record.get("host", "")))
    if (recorded.scheme, recorded.host, recorded.port) != (origin.scheme, origin.host, origin.port):
        raise UsageError(
            f"{run} was replayed against {recorded.base}, not {origin.base}: its objects "
            "are there (give that --host)"
        )
    objects = [o for o in record.get("objects", []) if isinstance(o, dict)]
    owned = {str(o["id"]) for o in objects}
    by_account: dict[int | None, list[dict[str, Any]]] = {}
    for obj in objects:
        if not obj.get("deleted"):
            by_account.setdefault(obj.get("credential"), []).append(obj)
    send = transport or _urllib_transport()
    for index, group in sorted(by_account.items(), key=lambda kv: -1 if kv[0] is None else kv[0]):
        _clean_account(record, origin, credentials, index, group, owned, send, result)
    _save(run, record, objects, result)
    return result


def _clean_account(
    record: dict[str, Any],
    origin: Origin,
    credentials: list[Credential],
    index: int | None,
    group: list[dict[str, Any]],
    owned: set[str],
    send: Transport,
    result: CleanupResult,
) -> None:
    auth = auth_from_json(record.get("auth") or {})
    ids = ids_from_json(record.get("ids"))
    credential = None
    if index is not None:
        if index >= len(credentials):
            why = f"account #{index + 1} of --credentials is needed to delete it"
            result.left += [(str(o["id"]), why) for o in group]
            return
        credential = credentials[index]
    state = SessionIds(-1, random.Random(0), RunObjects(), CredentialPools(), index)
    correlator = SessionCorrelator([], auth, credential, ids=ids, session_ids=state)
    protection = Protection(methods=frozenset({"DELETE"}))

    def go(request: PlannedRequest, obj_owned: set[str]) -> Answer | None:
        decision = clear(correlator.prepare(request), request.endpoint, obj_owned, protection)
        if not isinstance(decision, Cleared):
            return None
        url = outgoing_url(origin, decision.request.path, decision.request.query)
        answer = send(url.text, decision)
        correlator.observe(request, answer.status, answer.headers, answer.body, decision.request)
        return answer

    login = _planned(record.get("login"))
    if login is not None and credential is not None:
        answer = go(login, set())
        if answer is None or not correlator.logged_in:
            status = "no answer" if answer is None else f"HTTP {answer.status}"
            result.left += [(str(o["id"]), f"login failed ({status})") for o in group]
            return
    for obj in group:
        _delete_one(obj, owned, go, result)
    logout = _planned(record.get("logout"))
    if logout is not None and correlator.logged_in:
        go(logout, set())


def _delete_one(
    obj: dict[str, Any],
    owned: set[str],
    go: Callable[[PlannedRequest, set[str]], Answer | None],
    result: CleanupResult,
) -> None:
    value, delete, param = str(obj["id"]), obj.get("delete"), obj.get("param")
    if not delete or not param:
        result.left.append((value, f"no learned DELETE endpoint for {obj.get('endpoint')}"))
        return
    template = str(delete).partition(" ")[2]
    path = template.replace("{" + str(param) + "}", quote(value, safe=""))
    request = PlannedRequest(str(delete), "DELETE", path, path_params={str(param): value})
    try:
        answer = go(request, owned)
    except UnsafeUrlError as exc:
        result.left.append((value, str(exc)[:120]))
        return
    if answer is None:
        result.left.append((value, "not an object the run created (refused by ownership)"))
    elif answer.status is not None and 200 <= answer.status < 300:
        result.deleted += 1
        obj.update(deleted=True, deleted_by="cleanup")
    elif answer.status in GONE:
        result.already_gone += 1
        obj.update(deleted=True, deleted_by="gone")
    else:
        result.left.append((value, f"{delete} answered {answer.status or 'nothing'}"))


def _planned(template: Any) -> PlannedRequest | None:
    if not isinstance(template, dict):
        return None
    body = template.get("body")
    return PlannedRequest(
        endpoint=str(template["endpoint"]),
        method=str(template["method"]),
        path=str(template["path"]),
        query=template.get("query"),
        headers=tuple((str(k), str(v)) for k, v in template.get("headers") or ()),
        body=body.encode() if isinstance(body, str) else None,
    )


def _save(
    run: Path, record: dict[str, Any], objects: list[dict[str, Any]], result: CleanupResult
) -> None:
    record["objects"] = objects
    record["left"] = sum(1 for o in objects if not o.get("deleted"))
    record.setdefault("cleanups", []).append(
        {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "deleted": result.deleted,
            "already_gone": result.already_gone,
            "left": len(result.left),
        }
    )
    path = run / CREATED_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_: Any, **__: Any) -> None:  # a Location may be any host
        return None


def _urllib_transport() -> Transport:
    """Plain HTTP: its own cookie jar, no proxy from the environment, no redirects."""
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        _NoRedirect(),
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
    )

    def send(url: str, cleared: Cleared) -> Answer:
        prepared = cleared.request
        request = urllib.request.Request(  # noqa: S310  # urls.py made it: --host only
            url, data=prepared.body, headers=dict(prepared.headers), method=prepared.method
        )
        try:
            with opener.open(request, timeout=REQUEST_TIMEOUT_S) as response:
                return Answer(response.status, list(response.headers.items()), response.read())
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, list(exc.headers.items()), exc.read())
        except (OSError, TraceReplayError):
            return Answer(None, [], b"")

    return send
