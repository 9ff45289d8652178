"""Every error an Easel HTTP service (admin, a predictor) returns is JSON ``{"error": code, "detail": text}``
with a fitting status.

Routes raise the :class:`ApiError` subclasses below. Validation errors (422), unknown routes (404) and
wrong methods (405) are rewritten into the same envelope, a value the database refuses is a 422 and a
conflicting write a 409, and an unexpected exception becomes a 500 whose body names only a reference id:
the traceback goes to the service's log, never to the client.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    413: "too_large",
    415: "unsupported_format",
    422: "invalid",
    429: "too_many_requests",
    500: "internal",
    503: "unavailable",
}


class ApiError(Exception):
    """An error with an HTTP status, a short machine-readable code and a human-readable detail."""

    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.headers = headers


class BadRequest(ApiError):
    status_code, code = 400, "bad_request"


class Unauthorized(ApiError):
    status_code, code = 401, "unauthorized"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail, code=code, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    status_code, code = 403, "forbidden"


class NotFound(ApiError):
    status_code, code = 404, "not_found"


class Conflict(ApiError):
    status_code, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    status_code, code = 413, "too_large"


class UnsupportedFormat(ApiError):
    status_code, code = 415, "unsupported_format"


class Invalid(ApiError):
    status_code, code = 422, "invalid"


class TooManyRequests(ApiError):
    status_code, code = 429, "too_many_requests"

    def __init__(self, detail: str, *, retry_after_s: int, code: str | None = None) -> None:
        super().__init__(detail, code=code, headers={"Retry-After": str(retry_after_s)})


class Unavailable(ApiError):
    status_code, code = 503, "unavailable"


class Overloaded(ApiError):
    """Refused at once by admission control: more queued work than the service may hold; retry later."""

    status_code, code = 429, "overloaded"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})
        self.retry_after_s = retry_after_s


def envelope(status_code: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status_code, headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "request"


def describe_validation_errors(errors: list[dict[str, Any]]) -> str:
    """``body.email: String should match pattern ...; query.limit: ...`` (input values left out)."""
    parts = [f"{_location(tuple(item.get('loc', ())))}: {item.get('msg', 'invalid')}" for item in errors[:20]]
    if len(errors) > 20:
        parts.append(f"... and {len(errors) - 20} more")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI, service: str, log: logging.Logger | None = None) -> None:
    """Answer every error of ``app`` in the envelope; a 500's body points to ``service``'s log, where ``log``
    (default: the logger named ``service``) records the traceback."""
    log = log or logging.getLogger(service)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, error: ApiError) -> JSONResponse:
        return envelope(error.status_code, error.code, error.detail, error.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, error: RequestValidationError) -> JSONResponse:
        return envelope(422, "invalid", describe_validation_errors(list(error.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(error.status_code, "error" if error.status_code < 500 else "internal")
        detail = error.detail if isinstance(error.detail, str) else code.replace("_", " ")
        if error.status_code == 404 and detail == "Not Found":
            detail = "no such route"
        return envelope(error.status_code, code, detail, getattr(error, "headers", None))

    @app.exception_handler(DataError)
    async def _data_error(_request: Request, error: DataError) -> JSONResponse:
        # A value the database refuses (too long, out of range): the caller's input, not our crash.
        log.warning("database refused a value: %s", error.orig)
        return envelope(422, "invalid", "a value in the request is not acceptable to the database")

    @app.exception_handler(IntegrityError)
    async def _integrity(_request: Request, error: IntegrityError) -> JSONResponse:
        log.warning("integrity error: %s", error.orig)
        return envelope(409, "conflict", "the request conflicts with the current state of a resource")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        ref = uuid.uuid4().hex[:12]
        log.error("unhandled error %s on %s %s", ref, request.method, request.url.path, exc_info=error)
        return envelope(500, "internal", f"internal server error (reference {ref}); see the {service} log")
