"""Monitoring routes: feedback (true labels by request id), an app's serving series, and admin's Prometheus
``/metrics`` (the per-app ``easel_app_*`` series that ``deploy/monitoring`` alerts on and charts)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import select

from admin.deps import DbSession, Developer, State, get_current_user, is_admin
from admin.routes.common import only_query
from admin.routes.inference_jobs import _owned_inference_job
from admin.routes.train_jobs import AppPath, VersionPath
from admin.schemas import FeedbackIn, FeedbackOut, ServingSampleOut
from admin.services import monitoring
from easel.api_errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized, Unavailable
from easel.db.models import Feedback, InferenceJob, ServingSample
from easel.redis_client import make_redis
from easel.serving import answers_key, decode_answers

router = APIRouter(tags=["monitoring"])


@router.post("/inference_jobs/{app}/{version}/feedback", summary="True labels for one answered request (by its "
             "task_id): scores it and returns the job's measured effective accuracy")
def send_feedback(app: AppPath, version: VersionPath, body: FeedbackIn, db: DbSession, user: Developer,
                  state: State) -> FeedbackOut:
    _train_job, job = _owned_inference_job(db, app, version, user)
    try:
        client = make_redis(state.settings)
        try:
            raw = client.get(answers_key(job.id, body.task_id))
        finally:
            client.close()
    except Exception as error:  # noqa: BLE001 - Redis down: say so, the caller may retry
        raise Unavailable(f"the answers store is unreachable: {error}") from None
    if raw is None:
        raise NotFound(f"no answers kept for request {body.task_id} of this inference job (unknown, or older than "
                       f"{state.settings.feedback_ttl_s} s)")
    try:
        scored = monitoring.score_feedback(decode_answers(raw), body.labels)
    except ValueError as error:
        raise Invalid(str(error), code="invalid_labels") from None
    if db.scalar(select(Feedback.id).where(Feedback.inference_job_id == job.id, Feedback.task_id == body.task_id)):
        raise Conflict(f"request {body.task_id} already has feedback", code="already_scored")
    db.add(Feedback(inference_job_id=job.id, task_id=body.task_id, instances=scored.labelled, served=scored.served,
                    correct=scored.correct))
    db.flush()
    correct, labelled = monitoring.measured(db, [job.id])
    db.commit()
    return FeedbackOut(task_id=body.task_id, labelled=scored.labelled, served=scored.served, correct=scored.correct,
                       effective_accuracy=scored.correct / scored.labelled if scored.labelled else None,
                       measured_effective_accuracy=correct / labelled if labelled else None,
                       measured_instances=labelled)


@router.get("/apps/{app}/series", summary="The app's serving series: admin's samples of its inference jobs' "
            "metrics, oldest first", dependencies=[Depends(only_query("limit"))])
def app_series(app: AppPath, db: DbSession, user: Developer,
               limit: Annotated[int, Query(ge=1, le=10_000)] = 500) -> list[ServingSampleOut]:
    stmt = select(ServingSample).where(ServingSample.app == app)
    if not is_admin(user):
        stmt = stmt.join(InferenceJob, InferenceJob.id == ServingSample.inference_job_id).where(
            InferenceJob.owner_id == user.id)
    rows = list(db.scalars(stmt.order_by(ServingSample.id.desc()).limit(limit)))
    return [ServingSampleOut.model_validate(r) for r in reversed(rows)]


_scrape_bearer = HTTPBearer(auto_error=False)


def metrics_reader(db: DbSession, state: State,
                   credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_scrape_bearer)]) -> None:
    """Who may read every tenant's series: Prometheus with ``EASEL_METRICS_TOKEN``, or an admin's own token
    (app names and job ids are other tenants' business)."""
    scrape_token = state.settings.metrics_token
    if (credentials is not None and scrape_token
            and hmac.compare_digest(credentials.credentials.encode(), scrape_token.encode())):
        return
    if credentials is None:
        raise Unauthorized("/metrics needs a bearer token: EASEL_METRICS_TOKEN (Prometheus) or an admin's token")
    if not is_admin(get_current_user(db, state, credentials)):
        raise Forbidden("/metrics shows every tenant's series: admins only")


@router.get("/metrics", summary="Prometheus text: per-app serving series (easel_app_*)", include_in_schema=False,
            dependencies=[Depends(metrics_reader)])
def metrics(request: Request) -> Response:
    return Response(monitoring.prometheus_text(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)


__all__ = ["router"]
