"""Live views of an inference job for the dashboard: its metrics in one JSON object, and predict/info calls
passed on to its predictor (same origin and same bearer token as the rest of the API, so a browser page
needs no CORS and the predictor's port need not be reachable from the user's machine).

* ``GET /inference_jobs/{app}/{version}/metrics`` — the predictor's and workers' Prometheus metrics
  (see :mod:`admin.services.inference_metrics`);
* ``GET /inference_jobs/{app}/{version}/predictor`` — what the deployed model expects (input shape, rates);
* ``POST /inference_jobs/{app}/{version}/predict`` — a small predict request (at most 256 instances).
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from admin.deps import DbSession, Developer, State
from admin.routes.inference_jobs import _owned_inference_job
from admin.routes.train_jobs import AppPath, VersionPath
from admin.schemas import InferenceMetricsOut, PredictorInfoOut, PredictOut, TryPredictIn
from admin.services import orchestration
from admin.services.inference_metrics import LIVE_SERVICES, collect
from admin.state import AdminState
from easel.api_errors import ApiError, Conflict, Unavailable
from easel.db.enums import JobStatus
from easel.db.models import Service

router = APIRouter(prefix="/inference_jobs", tags=["inference jobs"])
SERVING = (JobStatus.RUNNING, JobStatus.DEGRADED)  # DEGRADED: fewer workers than asked, still answering
PROXY_SLACK_S = 10.0  # on top of the request's deadline: the predictor answers every instance by then


class PredictorError(ApiError):
    """The predictor's own error envelope, passed on with its status."""

    def __init__(self, status_code: int, code: str, detail: str) -> None:
        super().__init__(detail, code=code)
        self.status_code = status_code


@router.get("/{app}/{version}/metrics",
            summary="Live metrics of an app version's inference job: its predictor's and workers' Prometheus "
                    "counters in one object (totals since each service started; diff two for rates)")
async def inference_job_metrics(app: AppPath, version: VersionPath, db: DbSession, user: Developer,
                                state: State) -> InferenceMetricsOut:
    def load() -> tuple[str, JobStatus, list[Service], dict[str, str]]:
        _train_job, job = _owned_inference_job(db, app, version, user)
        services = [s for s in orchestration.inference_job_services(db, job.id) if s.status in LIVE_SERVICES]
        result = job.id, job.status, services, state.predictor_access.headers(job.id)
        db.expunge_all()
        db.close()
        return result

    job_id, status, services, headers = await run_in_threadpool(load)  # keep the database off the event loop
    return await collect(job_id, status, services, state.settings.metrics_scrape_timeout_s, headers)


async def _predictor(db: DbSession, app: str, version: int, user: Any, state: AdminState) -> tuple[str, dict[str, str]]:
    """The serving predictor's URL and the headers that carry admin's key of it."""
    def load() -> tuple[str, dict[str, str]]:
        _train_job, job = _owned_inference_job(db, app, version, user)
        if job.status not in SERVING or not job.predictor_url:
            raise Conflict(f"{app} v{version} is not serving (its inference job is {job.status.value})",
                           code="not_serving")
        return job.predictor_url, state.predictor_access.headers(job.id)

    return await run_in_threadpool(load)


async def _call(method: str, url: str, timeout_s: float, body: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> Any:
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            reply = await client.request(method, url, json=body, headers=headers)
    except httpx.HTTPError as error:
        raise Unavailable(f"the predictor did not answer: {type(error).__name__}: {error}") from None
    try:
        data = reply.json()
    except ValueError:
        raise Unavailable(f"the predictor answered {reply.status_code} without JSON") from None
    if reply.status_code >= 400:
        envelope = data if isinstance(data, dict) else {}
        status = reply.status_code if reply.status_code < 500 else 503
        raise PredictorError(status, str(envelope.get("error", "predictor_error")),
                             str(envelope.get("detail", f"the predictor answered {reply.status_code}")))
    return data


@router.get("/{app}/{version}/predictor", summary="What the deployed model expects (its predictor's health)")
async def inference_job_predictor(app: AppPath, version: VersionPath, db: DbSession,
                                  user: Developer, state: State) -> PredictorInfoOut:
    url, _headers = await _predictor(db, app, version, user, state)
    return PredictorInfoOut.model_validate(await _call("GET", f"{url}/health", 10.0))


@router.post("/{app}/{version}/predict",
             summary="Predict a few instances through admin (served or dropped each, with slice rate and latency)")
async def inference_job_predict(app: AppPath, version: VersionPath, body: TryPredictIn, db: DbSession,
                                user: Developer, state: State) -> PredictOut:
    url, headers = await _predictor(db, app, version, user, state)
    data = await _call("POST", f"{url}/predict", body.deadline_s + PROXY_SLACK_S, body.model_dump(), headers)
    return PredictOut.model_validate(data)
