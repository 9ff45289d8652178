"""Rolling updates of a running inference job to another registered model version of its app (a rollback is
one to an older version): start one, list them. The update runs in admin (:mod:`admin.services.rollout`)."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy import select

from admin.deps import DbSession, Developer, State, is_admin
from admin.routes.inference_jobs import LIVE, _owned_inference_job
from admin.routes.train_jobs import AppPath, VersionPath
from admin.schemas import UpdateIn, UpdateOut
from admin.services import rollout
from easel.api_errors import Conflict, NotFound
from easel.db.enums import UpdateStatus
from easel.db.models import InferenceJob, InferenceJobUpdate, ModelVersion
from easel.jobs import lifecycle

router = APIRouter(prefix="/inference_jobs", tags=["inference jobs"])


@router.post("/{app}/{version}/update", status_code=status.HTTP_202_ACCEPTED,
             summary="Roll the running inference job over to a registered model version (or back), losing nothing")
def update_inference_job(app: AppPath, version: VersionPath, body: UpdateIn, db: DbSession, user: Developer,
                         state: State) -> UpdateOut:
    train_job, job = _owned_inference_job(db, app, version, user)
    db.get(InferenceJob, job.id, with_for_update=True, populate_existing=True)  # one update at a time
    if job.status not in LIVE:
        raise Conflict(f"the inference job of {app} v{version} is {job.status.value}", code="not_running")
    target = db.scalar(select(ModelVersion).where(ModelVersion.app == train_job.app,
                                                  ModelVersion.number == body.model_version))
    if target is None or (target.owner_id != user.id and not is_admin(user)):
        raise NotFound(f"no model version {app} #{body.model_version}")
    if target.id == job.model_version_id:
        raise Conflict(f"the inference job already serves {app} #{body.model_version}", code="already_serving")
    running = db.scalar(select(InferenceJobUpdate.id).where(InferenceJobUpdate.inference_job_id == job.id,
                                                            InferenceJobUpdate.status == UpdateStatus.RUNNING))
    if running is not None:
        raise Conflict(f"update {running} of this inference job is still running", code="update_running")
    update = lifecycle.new_inference_job_update(inference_job_id=job.id, from_version_id=job.model_version_id,
                                                to_version_id=target.id, by_user_id=user.id)
    db.add(update)
    db.commit()
    rollout.start_update(state, update.id)
    return UpdateOut.model_validate(update)


@router.get("/{app}/{version}/updates", summary="The inference job's rolling updates, newest first")
def list_updates(app: AppPath, version: VersionPath, db: DbSession, user: Developer) -> list[UpdateOut]:
    _train_job, job = _owned_inference_job(db, app, version, user)
    rows = db.scalars(select(InferenceJobUpdate).where(InferenceJobUpdate.inference_job_id == job.id)
                      .order_by(InferenceJobUpdate.created_at.desc()))
    return [UpdateOut.model_validate(r) for r in rows]
