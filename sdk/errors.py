"""One exception hierarchy for everything the admin API can answer with an error.

Admin answers every error as JSON ``{"error": code, "detail": text}``; the client raises the class that
matches the status, carrying ``status_code``, ``code`` and ``detail``::

    EaselError
    ├── ConnectionFailed          the server could not be reached
    └── ApiError                  any error answer
        ├── Invalid               400, 422 (and below: 413, 415)
        │   ├── PayloadTooLarge   413
        │   └── UnsupportedFormat 415
        ├── Unauthorized          401 (no, bad or expired token; wrong password)
        ├── Forbidden             403 (your role may not do this)
        ├── NotFound              404 (absent, or not yours)
        ├── Conflict              409 (in use, already running, name taken, ...)
        └── ServerError           5xx
            └── Unavailable       503

Example::

    from sdk import Client, NotFound
    try:
        client.get_dataset("no-such-id")
    except NotFound as error:
        print(error.code, error.detail)   # not_found no dataset no-such-id
"""

from __future__ import annotations

from typing import Any

import httpx


class EaselError(Exception):
    """Base of every error the SDK raises."""

    #: how many times the request was sent (more than one when ``predict`` retried it)
    attempts: int = 1

    def __init__(self, detail: str, *, status_code: int | None = None, code: str = "error",
                 response: httpx.Response | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status_code = status_code
        self.code = code
        self.response = response

    def __str__(self) -> str:
        if self.status_code is None:
            return self.detail
        return f"{self.status_code} {self.code}: {self.detail}"


class ConnectionFailed(EaselError):
    """The admin server could not be reached (wrong URL, not running, network down)."""


class ApiError(EaselError):
    """The server answered with an error status."""


class Invalid(ApiError):
    """The request was malformed or its values are not acceptable (400/422)."""


class PayloadTooLarge(Invalid):
    """The upload is bigger than the server's limit (413)."""


class UnsupportedFormat(Invalid):
    """The uploaded file's type is not one the server takes (415)."""


class Unauthorized(ApiError):
    """No token, a bad or expired token, or wrong credentials (401): log in again."""


class Forbidden(ApiError):
    """Your role may not do this (403)."""


class NotFound(ApiError):
    """No such object, or it is not yours to see (404)."""


class Conflict(ApiError):
    """The request conflicts with the object's state: in use, already running, name taken (409)."""


class ServerError(ApiError):
    """The server failed (5xx). The detail holds a reference id for the server's log, never a traceback."""


class Unavailable(ServerError):
    """The server or one of its dependencies is temporarily unavailable (503)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: Invalid, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 413: PayloadTooLarge,
    415: UnsupportedFormat, 422: Invalid, 503: Unavailable,
}


def error_from_response(response: httpx.Response) -> ApiError:
    """The exception for an error response (reads the ``{"error", "detail"}`` envelope if present)."""
    status = response.status_code
    code, detail = "error", response.reason_phrase or f"HTTP {status}"
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("error", code))
        detail = str(body.get("detail", detail))
    elif response.content:
        detail = response.text[:500]
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else Invalid if status < 500 else ApiError)
    return cls(detail, status_code=status, code=code, response=response)
