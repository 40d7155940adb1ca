"""The one place that decides whether a request may be sent: a modifying request names only
objects its own session created. The driver (and cleanup) sends nothing but a `Cleared`,
and only `clear` makes one.

A request is *protected* when its method is in `--protect` (default DELETE, PUT, PATCH) or
it is a POST the model learned to store its body on the object it names (an update under
another name, e.g. a "configure"); the login, refresh and logout act on the session's own
credential and are never protected. A protected request goes only when every object id it
names (its path parameters and its learned id query fields) is one the session created;
otherwise it is skipped with a reason, never sent with a guessed id. Any request that would
send an anonymized credential placeholder is skipped too (replay/placeholders.py), and so is
an action on an object whose state change it follows was skipped (a `sync` after a skipped
`configure`: `follows_withheld`, not sent to fail). POST
actions on an existing object (a sync, a connection test) are not protected unless `--protect` lists
POST. `--allow-foreign-writes` lets everything go, and the run says so loudly.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import parse_qsl, unquote

from tracereplay.errors import UsageError
from tracereplay.models.correlations import Location
from tracereplay.models.templating import path_template

from .placeholders import credential_placeholder
from .rewrite import PreparedRequest
from .urls import check_method

DEFAULT_PROTECTED = frozenset({"DELETE", "PUT", "PATCH"})
NOT_OWNED = "not_owned"
"""It names an object this session did not create (and it has none of its own to use)."""
NAMES_NO_OBJECT = "names_no_object"
"""A protected method on a path without an object id (a collection, the whole target)."""
PATH_NOT_TEMPLATE = "path_not_template"
"""Its path does not match its endpoint's template, so its ids cannot be read."""
PLACEHOLDER_CREDENTIAL = "placeholder_credential"
"""It would send an anonymized credential (`[removed]`, `anon_…`): no live one for it."""
FOLLOWS_WITHHELD = "follows_withheld"
"""An action on an object whose earlier state change the replay withheld (`ids.follows`:
a `sync` after a `configure` that was skipped): sent, it would fail only for that."""
REASONS = (NOT_OWNED, NAMES_NO_OBJECT, PATH_NOT_TEMPLATE, PLACEHOLDER_CREDENTIAL, FOLLOWS_WITHHELD)


def parse_protect(text: str) -> frozenset[str]:
    """--protect "DELETE,PUT,PATCH" → the methods, upper-case; UsageError when none or
    one is not an HTTP method."""
    methods = [m.strip().upper() for m in text.split(",") if m.strip()]
    if not methods:
        raise UsageError("--protect needs at least one method (e.g. DELETE,PUT,PATCH)")
    for method in methods:
        check_method(method, "--protect")
    return frozenset(methods)


@dataclass(frozen=True)
class Protection:
    methods: frozenset[str] = DEFAULT_PROTECTED
    stores_body: frozenset[str] = frozenset()
    """POST endpoints the model learned to store their body on the object they name."""
    auth_endpoints: frozenset[str] = frozenset()
    """Login, refresh, logout: never protected."""
    allow_foreign_writes: bool = False

    def protects(self, endpoint: str, method: str) -> bool:
        """Asked for every id place of every request; it depends only on its arguments:
        decided once per (endpoint, method)."""
        known = self._decided.get((endpoint, method))
        if known is None:
            known = self._decided[(endpoint, method)] = self._protects(endpoint, method)
        return known

    def _protects(self, endpoint: str, method: str) -> bool:
        if endpoint in self.auth_endpoints:
            return False
        method = method.upper()
        return method in self.methods or (method == "POST" and endpoint in self.stores_body)

    @cached_property
    def _decided(self) -> dict[tuple[str, str], bool]:
        return {}  # filled by protects


class Cleared:
    """A request `clear` let go; `foreign` when it names an object the session did not
    create (only ever with --allow-foreign-writes)."""

    __slots__ = ("foreign", "request")

    def __init__(self, request: PreparedRequest, foreign: bool, key: object) -> None:
        if key is not _KEY:
            raise TypeError("only ownership.clear() makes a Cleared request")
        self.request = request
        self.foreign = foreign


_KEY = object()


@dataclass(frozen=True)
class Skipped:
    endpoint: str
    reason: str


def object_ids(
    endpoint: str, path: str, query: str | None, places: Sequence[Location]
) -> list[str] | None:
    """The object ids a request names: every path parameter of its endpoint's template and
    the values of its id query fields among `places`; None when the path does not match
    the template."""
    template = path_template(endpoint)
    slots, segments = template.split("/"), path.split("/")
    if len(slots) != len(segments):
        return None
    ids = []
    for slot, segment in zip(slots, segments, strict=True):
        if slot.startswith("{") and slot.endswith("}"):
            ids.append(unquote(segment))
        elif slot != segment:
            return None
    fields = {loc.key for loc in places if loc.where == "query"}
    if fields and query:
        ids += [v for k, v in parse_qsl(query, keep_blank_values=True) if k in fields]
    return ids


def clear(
    request: PreparedRequest,
    endpoint: str,
    owned: Collection[str],
    protection: Protection,
    places: Sequence[Location] = (),
    withheld: Collection[str] = (),
) -> Cleared | Skipped:
    """Whether `request` (of `endpoint`) may go, given the ids its session `owned` and the
    objects whose state change this action follows was `withheld`. A request that would
    send an anonymized credential, or act on such an object, never goes (not even with
    --allow-foreign-writes)."""
    if credential_placeholder(request) is not None:
        return Skipped(endpoint, PLACEHOLDER_CREDENTIAL)
    protected = protection.protects(endpoint, request.method)
    # Most requests: neither protected nor following a withheld change; their ids unread.
    ids = (
        object_ids(endpoint, request.path, request.query, places) if protected or withheld else None
    )
    if withheld and ids and any(i in withheld for i in ids):
        return Skipped(endpoint, FOLLOWS_WITHHELD)
    if not protected:
        return Cleared(request, False, _KEY)
    reason = PATH_NOT_TEMPLATE if ids is None else (NAMES_NO_OBJECT if not ids else None)
    if reason is None and ids is not None and all(i in owned for i in ids):
        return Cleared(request, False, _KEY)
    if protection.allow_foreign_writes:
        return Cleared(request, True, _KEY)
    return Skipped(endpoint, reason or NOT_OWNED)
