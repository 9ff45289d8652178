"""``GET /inference_jobs/{app}/{version}/metrics``: the live numbers of an inference job in one JSON object.

Admin scrapes the Prometheus metrics of the job's live predictor and inference workers (see
:mod:`admin.services.inference_metrics`); the dashboard's serving panel reads this one endpoint.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from admin.deps import DbSession, Developer, State
from admin.routes.inference_jobs import _owned_inference_job
from admin.routes.train_jobs import AppPath, VersionPath
from admin.schemas import InferenceMetricsOut
from admin.services import orchestration
from admin.services.inference_metrics import LIVE_SERVICES, collect
from easel.db.enums import JobStatus
from easel.db.models import Service

router = APIRouter(prefix="/inference_jobs", tags=["inference jobs"])


@router.get("/{app}/{version}/metrics",
            summary="Live metrics of an app version's inference job: its predictor's and workers' Prometheus "
                    "counters in one object (totals since each service started; diff two for rates)")
async def inference_job_metrics(app: AppPath, version: VersionPath, db: DbSession, user: Developer,
                                state: State) -> InferenceMetricsOut:
    def load() -> tuple[str, JobStatus, list[Service]]:
        _train_job, job = _owned_inference_job(db, app, version, user)
        services = [s for s in orchestration.inference_job_services(db, job.id) if s.status in LIVE_SERVICES]
        result = job.id, job.status, services
        db.expunge_all()
        db.close()
        return result

    job_id, status, services = await run_in_threadpool(load)  # keep the database off the event loop
    return await collect(job_id, status, services, state.settings.metrics_scrape_timeout_s)
