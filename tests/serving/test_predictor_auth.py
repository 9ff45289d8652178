"""Predictor API keys on the real stack (issue #13 Build 3): the predictor answers only live keys of its own
inference job; the job's owner (or an admin) creates, lists and revokes them through admin."""

from __future__ import annotations

import uuid

import httpx
import pytest
from serving_helpers import Deployed, wait_until
from sqlalchemy.orm import Session, sessionmaker

from easel.db.enums import JobStatus
from easel.db.models import InferenceJob
from easel.db.session import session_scope
from easel.predictor_keys import issue_key
from sdk import Client, NotFound, Unauthorized


def _predict(deployed: Deployed, headers: dict[str, str]) -> httpx.Response:
    body = {"instances": deployed.x[:2].tolist(), "deadline_s": 20.0}
    return httpx.post(f"{deployed.job.predictor_url}/predict", json=body, headers=headers, timeout=30)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_predict_needs_a_live_key_of_its_own_job(deployed: Deployed, sessions: sessionmaker[Session]) -> None:
    anonymous = _predict(deployed, {})
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "missing_api_key", anonymous.text
    with session_scope(sessions) as session:  # another inference job (of the same owner) and its key
        job = session.get_one(InferenceJob, deployed.job.id)
        other = InferenceJob(train_job_id=job.train_job_id, owner_id=job.owner_id, status=JobStatus.STOPPED)
        session.add(other)
        session.flush()
        _row, others_key = issue_key(session, other.id, "someone else's")
    foreign = _predict(deployed, _bearer(others_key))
    assert foreign.status_code == 401 and foreign.json()["error"] == "invalid_api_key", foreign.text
    made_up = _predict(deployed, _bearer("easel_" + uuid.uuid4().hex))
    assert made_up.status_code == 401
    mine = _predict(deployed, deployed.auth)
    assert mine.status_code == 200 and mine.json()["totals"]["served"] == 2, mine.text
    also_mine = _predict(deployed, {"X-API-Key": deployed.key})
    assert also_mine.status_code == 200


def test_metrics_and_docs_need_a_key_and_health_does_not(deployed: Deployed) -> None:
    url = deployed.job.predictor_url
    for path in ("/metrics", "/docs", "/openapi.json", "/explanations/x"):
        refused = httpx.get(f"{url}{path}", timeout=10)
        assert refused.status_code == 401 and set(refused.json()) == {"error", "detail"}, (path, refused.text)
    metrics = httpx.get(f"{url}/metrics", headers=deployed.auth, timeout=10)
    assert metrics.status_code == 200 and "easel_predictor_requests_total" in metrics.text
    assert httpx.get(f"{url}/openapi.json", headers=deployed.auth, timeout=10).status_code == 200
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200


def test_a_revoked_key_is_refused_and_the_others_still_work(deployed: Deployed) -> None:
    client = deployed.client
    spare = client.create_api_key(deployed.app, deployed.version, "to revoke")
    assert spare.key and spare.key.startswith(spare.prefix) and spare.revoked_at is None
    assert _predict(deployed, _bearer(spare.key)).status_code == 200
    listed = {k.id: k for k in client.list_api_keys(deployed.app, deployed.version).items}
    assert spare.id in listed and listed[spare.id].key is None, "a listed key shows no secret"
    assert all(k.name != "admin" for k in listed.values()), "admin's own key is not listed"
    client.revoke_api_key(deployed.app, deployed.version, spare.id)
    # Refused once the predictor's cached verdict expires (EASEL_PREDICTOR_KEY_CACHE_S, 5 s by default;
    # the exact bound is checked with a test clock in test_predictor_auth_units.py).
    wait_until(lambda: _predict(deployed, _bearer(spare.key or "")).status_code == 401, 60, "the revocation")
    assert _predict(deployed, deployed.auth).status_code == 200
    listed = {k.id: k for k in client.list_api_keys(deployed.app, deployed.version).items}
    assert listed[spare.id].revoked_at is not None
    with pytest.raises(Unauthorized):
        client.predict(deployed.app, deployed.version, deployed.x[:1].tolist(), deadline_s=5.0, api_key=spare.key)


def test_only_the_owner_and_admins_manage_a_jobs_keys(deployed: Deployed) -> None:
    email = f"stranger-{uuid.uuid4().hex[:6]}@easel.test"
    deployed.client.create_user(email, "a stranger's long password 41", "APP_DEVELOPER")
    with Client(deployed.client.base_url) as stranger:
        stranger.login(email, "a stranger's long password 41")
        with pytest.raises(NotFound):
            stranger.create_api_key(deployed.app, deployed.version)
        with pytest.raises(NotFound):
            stranger.list_api_keys(deployed.app, deployed.version)
        mine = deployed.client.list_api_keys(deployed.app, deployed.version).items[0]
        with pytest.raises(NotFound):
            stranger.revoke_api_key(deployed.app, deployed.version, mine.id)
