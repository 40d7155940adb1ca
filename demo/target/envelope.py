"""The response envelope and the error handlers that put every error into it.

Success: `{"status": "success", "data": ...}`; error: `{"status": "error", "message",
"data": null}` plus `errors` (one per invalid field) on 422.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

_REASONS = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    422: "Validation error",
    429: "Too many requests",
    500: "Internal server error",
}


class ApiError(Exception):
    """An error answer raised from a route: status, message, optional field errors."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.errors = errors
        self.headers = headers


def _json_bytes(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def ok(data: Any, status_code: int = 200) -> Response:
    """A success answer wrapping `data`."""
    return Response(
        _json_bytes({"status": "success", "data": data}),
        status_code=status_code,
        media_type="application/json",
    )


def error_response(
    status_code: int,
    message: str,
    *,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An error answer in the envelope."""
    body: dict[str, Any] = {"status": "error", "message": message, "data": None}
    if errors is not None:
        body["errors"] = list(errors)
    return Response(
        _json_bytes(body),
        status_code=status_code,
        headers=dict(headers or {}),
        media_type="application/json",
    )


def field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """One entry per invalid field: where it is (`body.email`), why, and the error type."""
    return [
        {
            "field": ".".join(str(part) for part in error.get("loc", ())),
            "message": str(error.get("msg", "invalid")),
            "type": str(error.get("type", "value_error")),
        }
        for error in exc.errors()
    ]


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.message, errors=exc.errors, headers=exc.headers)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else None
    return error_response(
        exc.status_code,
        message or _REASONS.get(exc.status_code, "Error"),
        headers=exc.headers,
    )


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, _REASONS[422], errors=field_errors(exc))


async def _server_error(_request: Request, _exc: Exception) -> Response:
    return error_response(500, _REASONS[500])


def install_error_handlers(app: FastAPI) -> None:
    """Make every error the app can answer use the envelope."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _server_error)
