"""Explanations through admin, for users who know only admin: ask (forwarded to the job's predictor, which
queues it for the job's explainers) and fetch again by id (read here from PostgreSQL and the blob store).

Only the owner of the inference job (or an admin) may ask for or see its explanations; anyone else gets a 404,
as for the job itself.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from admin.deps import Blobs, DbSession, Developer, State, is_admin
from admin.routes.inference_jobs import LIVE, _owned_inference_job
from admin.routes.train_jobs import AppPath, VersionPath
from easel import explanations as store
from easel.api_errors import Conflict, NotFound, Unavailable
from easel.db.models import Explanation, InferenceJob, User

router = APIRouter(tags=["explanations"])


class ExplainIn(BaseModel):
    """One instance to explain (the predictor checks it against the model)."""

    model_config = ConfigDict(extra="forbid")

    instance: Any = Field(description="one query, shaped like the model's input (or flat)")
    method: str = Field(max_length=32, description="gradcam or lime")
    slice_rate: float | None = Field(default=None, gt=0, le=1, description="default: the full width")
    options: dict[str, Any] = Field(default_factory=dict, description="num_samples, target_class, layer, segments, "
                                                                      "hide_value, seed")
    wait_s: float | None = Field(default=None, gt=0, le=3600, description="longest wait for the answer")


@router.post("/inference_jobs/{app}/{version}/explain",
             summary="Explain one instance with LIME or Grad-CAM (run by the job's explainers, off the deadline path)")
def explain(app: AppPath, version: VersionPath, body: ExplainIn, db: DbSession, user: Developer,
            state: State) -> JSONResponse:
    _train_job, job = _owned_inference_job(db, app, version, user)
    if job.status not in LIVE or not job.predictor_url:
        raise Conflict(f"{app} v{version} has no running inference job to explain with", code="not_running")
    url = f"{job.predictor_url.rstrip('/')}/explain"
    try:
        answer = httpx.post(url, json=body.model_dump(exclude_none=True), headers=state.predictor_access.headers(job.id),
                            timeout=state.settings.explain_timeout_s + 15.0)
    except httpx.TransportError as error:
        raise Unavailable(f"cannot reach the predictor of {app} v{version}: {error}") from None
    try:
        return JSONResponse(answer.json(), status_code=answer.status_code)
    except ValueError:  # not the predictor's JSON (a proxy's error page, say)
        raise Unavailable(f"the predictor of {app} v{version} answered {answer.status_code} without JSON") from None


def _owned(db: DbSession, explanation_id: str, user: User) -> Explanation:
    row = db.get(Explanation, explanation_id)
    owner = db.get(InferenceJob, row.inference_job_id).owner_id if row is not None else None
    if row is None or (owner != user.id and not is_admin(user)):
        raise NotFound(f"no explanation {explanation_id}")
    return row


@router.get("/explanations/{explanation_id}", summary="An explanation again, by id")
def get_explanation(explanation_id: str, db: DbSession, user: Developer, blobs: Blobs) -> dict[str, Any]:
    return store.to_json(_owned(db, explanation_id, user), blobs)


@router.get("/explanations/{explanation_id}/overlay.png", summary="An image explanation's overlay (PNG)",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def get_overlay(explanation_id: str, db: DbSession, user: Developer, blobs: Blobs) -> Response:
    row = _owned(db, explanation_id, user)
    if not row.overlay_key:
        raise NotFound(f"explanation {explanation_id} has no overlay ({row.status.value}, {row.method})")
    return Response(blobs.get_bytes(row.overlay_key), media_type="image/png")
