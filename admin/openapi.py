"""The published contract of errors: every operation documents each status it can answer with, all in the one
envelope ``{"error": code, "detail": text}`` (schema ``Error``) — FastAPI's own 422 shape is replaced.

Which statuses: the generic ones follow from an operation's shape (a bearer token: 401; a role check: 403;
path parameters: 404; a body: 413 and 422; an upload: 415), the rest from what its route raises
(:data:`ROUTE_ERRORS`). ``tests/admin/test_schemathesis.py`` checks the schema against the running app.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "description": "Every error admin returns: a short machine-readable code and a human-readable detail.",
    "properties": {
        "error": {"type": "string", "description": "machine-readable code, e.g. not_found, invalid, too_large"},
        "detail": {"type": "string", "description": "what went wrong, for people"},
    },
    "required": ["error", "detail"],
}

DESCRIPTIONS = {
    400: "Bad request",
    401: "No, invalid or expired bearer token; or wrong credentials",
    403: "Your role may not do this",
    404: "No such object (or not yours to see)",
    409: "Conflicts with the current state (name taken, in use, not running, quota reached)",
    413: "The request body (or an uploaded file) is larger than this route's limit",
    415: "The uploaded file's format is not accepted",
    422: "The request is not valid (the detail names each problem)",
    429: "Too many requests; retry after the Retry-After header's seconds",
    503: "A service admin depends on is unavailable",
}

# Routes any signed-in user may call: no role check, so no 403.
ANY_USER = {("get", "/users/me"), ("get", "/users/{user_id}"), ("put", "/users/me/password")}
PREDICTOR_ERRORS = {400, 409, 413, 422, 429, 503}  # passed on from the predictor's own answers

ROUTE_ERRORS: dict[tuple[str, str], set[int]] = {
    ("get", "/health"): {503},
    ("post", "/tokens"): {401, 429, 503},
    ("post", "/users"): {409},
    ("put", "/users/me/password"): {401},
    ("delete", "/users/{user_id}"): {409},
    ("patch", "/users/{user_id}"): {409},
    ("post", "/datasets"): {409},
    ("delete", "/datasets/{dataset_id}"): {409},
    ("post", "/models"): {409, 429},
    ("delete", "/models/{model_id}"): {409},
    ("post", "/train_jobs"): {404, 409, 503},
    ("post", "/train_jobs/{app}/{version}/stop"): {409},
    ("post", "/inference_jobs"): {404, 409, 503},
    ("post", "/inference_jobs/{app}/{version}/stop"): {409},
    ("get", "/inference_jobs/{app}/{version}/predictor"): PREDICTOR_ERRORS,
    ("post", "/inference_jobs/{app}/{version}/predict"): PREDICTOR_ERRORS,
    ("post", "/inference_jobs/{app}/{version}/explain"): PREDICTOR_ERRORS,
}


def _statuses(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    codes = set(ROUTE_ERRORS.get((method, path), set()))
    if operation.get("security"):
        codes.add(401)
        if (method, path) not in ANY_USER:
            codes.add(403)
    parameters = operation.get("parameters", [])
    if any(p.get("in") == "path" for p in parameters):
        codes.add(404)
    if parameters:
        codes.add(422)
    body = operation.get("requestBody")
    if body:
        codes |= {400, 413, 422}  # 400: a body that does not parse
        if "multipart/form-data" in body.get("content", {}):
            codes.add(415)
    return codes


def error_envelope_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI with the error envelope and every error status documented (built once, cached)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                         tags=app.openapi_tags)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    reference = {"$ref": "#/components/schemas/Error"}
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            for status in sorted(_statuses(method, path, operation)):
                response: dict[str, Any] = {"description": DESCRIPTIONS.get(status, "Error"),
                                            "content": {"application/json": {"schema": reference}}}
                if status == 429:
                    response["headers"] = {"Retry-After": {"description": "seconds to wait",
                                                           "schema": {"type": "integer"}}}
                responses[str(status)] = response
    app.openapi_schema = schema
    return schema


def install_openapi(app: FastAPI) -> None:
    app.openapi = lambda: error_envelope_openapi(app)  # type: ignore[method-assign]
