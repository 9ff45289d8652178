"""Every error the predictor returns is JSON ``{"error": code, "detail": text}``, as admin's are (the small
pattern is copied from ``admin.errors``: services do not import each other)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("easel.predictor")

STATUS_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
                422: "invalid", 429: "overloaded", 500: "internal", 503: "unavailable"}


class ApiError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None, retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s
        if code is not None:
            self.code = code


class Invalid(ApiError):
    status_code, code = 422, "invalid"


class PayloadTooLarge(ApiError):
    status_code, code = 413, "too_large"


class Unavailable(ApiError):
    status_code, code = 503, "unavailable"


class Overloaded(ApiError):
    """Refused at once (admission control): the job has more queued work than it may; retry later."""

    status_code, code = 429, "overloaded"


def envelope(status_code: int, code: str, detail: str, retry_after_s: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    return JSONResponse({"error": code, "detail": detail}, status_code=status_code, headers=headers)


def describe_errors(errors: list[dict[str, Any]]) -> str:
    parts = [f"{'.'.join(str(p) for p in item.get('loc', ())) or 'request'}: {item.get('msg', 'invalid')}"
             for item in errors[:20]]
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, error: ApiError) -> JSONResponse:
        return envelope(error.status_code, error.code, error.detail, error.retry_after_s)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, error: RequestValidationError) -> JSONResponse:
        return envelope(422, "invalid", describe_errors(list(error.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(error.status_code, "error" if error.status_code < 500 else "internal")
        detail = error.detail if isinstance(error.detail, str) else code.replace("_", " ")
        if error.status_code == 404 and detail == "Not Found":
            detail = "no such route"
        return envelope(error.status_code, code, detail)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        ref = uuid.uuid4().hex[:12]
        log.error("unhandled error %s on %s %s", ref, request.method, request.url.path, exc_info=error)
        return envelope(500, "internal", f"internal server error (reference {ref}); see the predictor log")
