"""Captured sessions for sandbox replay tests, written step by step."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from tests.factories import make_record
from tracereplay.trace import TraceRecord

Step = tuple[str, str, int, bytes, bytes | None]
"""(method, path, status, response body, request body)."""


def answer(data: object) -> bytes:
    """The sandbox's success envelope."""
    return json.dumps({"status": "success", "data": data}).encode()


def session_rows(
    key: str, start: datetime, token: str, steps: list[Step], gap_s: float = 0.4
) -> list[TraceRecord]:
    """One session's rows, `gap_s` apart: a body goes as JSON, every request but the
    login carries the session's Bearer token."""
    rows = []
    for n, (method, path, status, resp, req) in enumerate(steps):
        headers: tuple[tuple[str, str], ...] = ()
        if req is not None:
            headers += (("content-type", "application/json"),)
        if not path.endswith("/auth/login"):
            headers += (("authorization", f"Bearer {token}"),)
        rows.append(make_record(ts=start + timedelta(seconds=gap_s * n), session=key, client=key,
                                method=method, path=path, status=status, req_headers=headers,
                                req_body=req, resp_body=resp))  # fmt: skip
    return rows
