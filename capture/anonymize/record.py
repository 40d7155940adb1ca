"""`Anonymizer`: one raw `Exchange` in, one anonymized `TraceRecord` out.

A pure function of the exchange, the policy and the key, apart from the session table
that links a login's credential to the requests that later use it.
"""

from __future__ import annotations

from tracereplay.trace import TraceRecord

from ..exchange import Exchange
from .bodies import anonymize_body
from .headers import anonymize_headers
from .policy import Policy
from .pseudonyms import Pseudonymizer
from .sessions import (
    SessionTracker,
    Sighting,
    origin_address,
    request_credentials,
    response_credentials,
)
from .values import ValueAnonymizer

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class Anonymizer:
    """Applies one policy with one key; keep one instance per capture (or import)."""

    def __init__(self, policy: Policy, key: bytes) -> None:
        self.policy = policy
        self.pseudonyms = Pseudonymizer(key)
        self.values = ValueAnonymizer(policy, self.pseudonyms)
        self.sessions = SessionTracker(self.pseudonyms)

    def record(self, ex: Exchange) -> TraceRecord:
        values = self.values
        values.own_host = ex.host
        req_headers = anonymize_headers(values, ex.req_headers)
        req_body = anonymize_body(values, ex.req_body, ex.req_body_encoding, ex.req_headers)
        resp_headers = anonymize_headers(values, ex.resp_headers)
        resp_body = anonymize_body(values, ex.resp_body, ex.resp_body_encoding, ex.resp_headers)
        digest = self.pseudonyms.digest
        client = digest("client", ex.client_addr) if ex.client_addr else None
        origin = origin_address(ex.req_headers, ex.client_addr)
        conn = digest("conn", ex.client_conn) if ex.client_conn else None
        addr = digest("client", origin) if origin else None
        session = self.sessions.session_for(
            request_credentials(self.policy, req_headers, req_body.data),
            response_credentials(self.policy, resp_headers, resp_body.data)
            if ex.status is not None and ex.status < 400
            else (),
            ex.client_addr,
            Sighting.at(conn, addr, ex.ts, ex.duration_ms),
        )
        return TraceRecord(
            ts=ex.ts,
            method=ex.method.upper(),
            path=values.path(ex.path),
            duration_ms=ex.duration_ms,
            session=session,
            client=client,
            scheme=ex.scheme,
            host=_host(ex),
            query=values.query(ex.query) if ex.query else None,
            req_headers=tuple(req_headers),
            req_body=req_body.data,
            req_body_size=req_body.size,
            status=ex.status,
            resp_headers=tuple(resp_headers),
            resp_body=resp_body.data,
            resp_body_size=resp_body.size,
            error=values.text(ex.error) if ex.error else None,
            conn=conn,
            addr=addr,
        )


def _host(ex: Exchange) -> str | None:
    if not ex.host:
        return None
    if ex.port is None or _DEFAULT_PORTS.get(ex.scheme or "") == ex.port:
        return ex.host
    host = f"[{ex.host}]" if ":" in ex.host else ex.host
    return f"{host}:{ex.port}"
