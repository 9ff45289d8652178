"""The error envelope everywhere: unknown routes, wrong methods, validation, bodies too big, 500s."""

from __future__ import annotations

import httpx
import pytest

from admin.app import create_app
from easel.settings import Settings
from tests.support import ServerThread


def _envelope(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error", "detail"}, body
    assert isinstance(body["error"], str) and isinstance(body["detail"], str)
    assert "Traceback" not in body["detail"]
    return body


def test_unknown_route_and_wrong_method(url: str) -> None:
    missing = httpx.get(f"{url}/no/such/route")
    assert missing.status_code == 404 and _envelope(missing) == {"error": "not_found", "detail": "no such route"}
    wrong = httpx.put(f"{url}/health")
    assert wrong.status_code == 405 and _envelope(wrong)["error"] == "method_not_allowed"


@pytest.mark.parametrize("body,content_type,where", [
    (b'{"email": "a@b.c"}', "application/json", "body.password"),
    (b"{not json", "application/json", "body"),
    (b'{"email": "a@b.c", "password": "x", "extra": 1}', "application/json", "body.extra"),
    (b"email=a@b.c", "application/x-www-form-urlencoded", "body"),
])
def test_validation_errors_are_422_envelopes(url: str, body: bytes, content_type: str, where: str) -> None:
    response = httpx.post(f"{url}/tokens", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 422
    envelope = _envelope(response)
    assert envelope["error"] == "invalid" and where in envelope["detail"]


def test_query_and_path_validation(url: str, root) -> None:
    headers = {"Authorization": f"Bearer {root.token}"}
    for path in ("/datasets?limit=0", "/datasets?limit=100000", "/datasets?offset=-1", "/train_jobs/app/0",
                 "/train_jobs/app/99999999999", "/train_jobs/bad%20app/1", "/datasets/bad%00id"):
        response = httpx.get(f"{url}{path}", headers=headers)
        assert response.status_code == 422, path
        assert _envelope(response)["error"] == "invalid"


def test_nul_and_huge_values_are_4xx_not_5xx(url: str, root) -> None:
    headers = {"Authorization": f"Bearer {root.token}"}
    response = httpx.post(f"{url}/users", headers=headers,
                          json={"email": "a\u0000b@c.de", "password": "12345678", "role": "APP_USER"})
    assert response.status_code == 422
    response = httpx.post(f"{url}/train_jobs", headers=headers, json={
        "app": "x", "task": "T", "train_dataset_id": "a", "val_dataset_id": "b", "model_ids": ["c"],
        "budget": {"MODEL_TRIAL_COUNT": 10**30}})
    assert response.status_code == 422
    response = httpx.post(f"{url}/train_jobs", headers=headers, content=b'{"budget": {"TIME_HOURS": NaN}}',
                          )
    assert response.status_code == 422


def test_body_over_the_limit_is_413_before_it_is_parsed(url: str, root, admin_settings: Settings) -> None:
    too_big = b"x" * (admin_settings.max_upload_bytes + 2 * 1024 * 1024)
    response = httpx.post(f"{url}/tokens", content=too_big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and _envelope(response)["error"] == "too_large"

    def chunks():  # no Content-Length: the limit is counted as the body streams
        for _ in range(12):
            yield b"y" * (256 * 1024)

    response = httpx.post(f"{url}/tokens", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and _envelope(response)["error"] == "too_large"
    assert httpx.get(f"{url}/health").status_code == 200


def test_a_crash_is_a_500_envelope_without_a_traceback(admin_settings: Settings) -> None:
    app = create_app(admin_settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail /etc/passwd")

    with ServerThread(app) as server:
        response = httpx.get(f"{server.url}/boom")
    assert response.status_code == 500
    body = _envelope(response)
    assert body["error"] == "internal"
    assert "secret" not in response.text and "RuntimeError" not in response.text
    assert "reference" in body["detail"]


def test_openapi_and_docs_are_served(url: str) -> None:
    spec = httpx.get(f"{url}/openapi.json").json()
    assert spec["info"]["title"] == "Easel admin"
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "limit" in {p["name"] for p in spec["paths"]["/datasets"]["get"]["parameters"]}
    docs = httpx.get(f"{url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
