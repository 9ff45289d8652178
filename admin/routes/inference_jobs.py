"""Inference jobs: deploy the best trials of a finished train job, list, read, stop.

One running inference job per app version. The job records its predictor's URL at once and becomes
``RUNNING`` when the predictor and every inference worker are ready. Stopping drains: the predictor
answers the requests in flight, the workers finish their queued tasks, then they exit.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from admin.deps import DbSession, Developer, Paging, State, is_admin
from admin.routes.common import paginate
from admin.routes.train_jobs import AppPath, VersionPath, owned_train_job
from admin.schemas import APP_PATTERN, InferenceJobIn, InferenceJobOut, Page, ServiceOut
from admin.services import orchestration
from admin.services.quotas import QuotaExceeded, check_quotas
from easel.api_errors import Conflict, Invalid, NotFound, Unavailable
from easel.db.enums import JobStatus, TrialStatus
from easel.db.models import InferenceJob, ModelVersion, SubTrainJob, TrainJob, Trial, User
from easel.jobs import InferenceJobBudget, lifecycle

router = APIRouter(prefix="/inference_jobs", tags=["inference jobs"])
LIVE = lifecycle.LIVE_INFERENCE_JOB
FINISHED_TRAINING = (JobStatus.COMPLETED, JobStatus.STOPPED)


def inference_job_out(db: Session, job: InferenceJob, train_job: TrainJob | None = None) -> InferenceJobOut:
    train_job = train_job or db.get_one(TrainJob, job.train_job_id)
    return InferenceJobOut(
        id=job.id, app=train_job.app, app_version=train_job.app_version, train_job_id=job.train_job_id,
        status=job.status, workers=InferenceJobBudget.from_stored(job.budget).WORKERS, budget=job.budget,
        trial_ids=list(job.trial_ids.get("trials", [])), predictor_url=job.predictor_url, owner_id=job.owner_id,
        created_at=job.created_at, stopped_at=job.stopped_at, error=job.error,
        model_version=db.scalar(select(ModelVersion.number).where(ModelVersion.id == job.model_version_id))
        if job.model_version_id else None,
        services=[ServiceOut.model_validate(s) for s in orchestration.inference_job_services(db, job.id)],
    )


def best_trials(db: Session, train_job: TrainJob) -> list[str]:
    """The best completed trial with saved parameters of each sub-train-job, best first."""
    chosen: list[tuple[float, str]] = []
    for sub_id in db.scalars(select(SubTrainJob.id).where(SubTrainJob.train_job_id == train_job.id)):
        row = db.execute(
            select(Trial.score, Trial.id).where(
                Trial.sub_train_job_id == sub_id, Trial.status == TrialStatus.COMPLETED,
                Trial.score.is_not(None), Trial.params_key.is_not(None),
            ).order_by(Trial.score.desc(), Trial.created_at).limit(1)
        ).first()
        if row is not None:
            chosen.append((row[0], row[1]))
    return [trial_id for _score, trial_id in sorted(chosen, reverse=True)]


def _latest_job(db: Session, train_job: TrainJob) -> InferenceJob | None:
    """The live inference job of the app version, else the most recent one."""
    return db.scalars(
        select(InferenceJob).where(InferenceJob.train_job_id == train_job.id)
        .order_by(InferenceJob.status.in_(LIVE).desc(), InferenceJob.created_at.desc()).limit(1)
    ).first()


@router.post("", status_code=status.HTTP_201_CREATED, summary="Deploy an app version (its train job must be finished)")
def create_inference_job(body: InferenceJobIn, db: DbSession, user: Developer, state: State) -> InferenceJobOut:
    if body.app_version == 0:
        raise Invalid("app_version must be a version number (from 1), or -1 for the latest")
    version = body.app_version
    if version == -1:
        stmt = select(func.max(TrainJob.app_version)).where(TrainJob.app == body.app)
        if not is_admin(user):
            stmt = stmt.where(TrainJob.owner_id == user.id)
        version = db.scalar(stmt)
        if version is None:
            raise NotFound(f"no train job for app {body.app}")
    train_job = owned_train_job(db, body.app, version, user)
    # Lock the train job's row so two deploys of one version cannot both pass the check below.
    db.get(TrainJob, train_job.id, with_for_update=True, populate_existing=True)
    if train_job.status not in FINISHED_TRAINING:
        raise Conflict(
            f"train job {body.app} v{version} is {train_job.status.value}; deploy it once it has finished "
            "(COMPLETED or STOPPED)", code="train_job_not_finished",
        )
    live = db.scalar(select(InferenceJob.id).where(
        InferenceJob.train_job_id == train_job.id, InferenceJob.status.in_(LIVE)
    ).limit(1))
    if live is not None:
        raise Conflict(f"{body.app} v{version} already has a running inference job ({live})", code="already_running")
    model_version = None
    if body.model_version is not None:
        model_version = db.scalar(select(ModelVersion).where(ModelVersion.app == body.app,
                                                            ModelVersion.number == body.model_version))
        if model_version is None or (model_version.owner_id != user.id and not is_admin(user)):
            raise NotFound(f"no model version {body.app} #{body.model_version}")
    trials = [model_version.trial_id] if model_version is not None else best_trials(db, train_job)
    if not trials:
        raise Conflict(f"train job {body.app} v{version} has no completed trial with saved parameters to deploy",
                       code="nothing_to_deploy")
    try:
        check_quotas(db, state.settings, user.id, inference_workers=body.workers)
    except QuotaExceeded as error:
        raise Conflict(str(error), code="quota_exceeded") from None
    budget = InferenceJobBudget(**body.budget.model_dump(), WORKERS=body.workers)
    job = lifecycle.new_inference_job(train_job_id=train_job.id, owner_id=user.id, budget=budget.model_dump(),
                                      trial_ids={"trials": trials},
                                      model_version_id=model_version.id if model_version is not None else None)
    db.add(job)
    db.commit()
    try:
        orchestration.launch_inference_job(state, job.id, train_job.app, train_job.app_version)
    except Exception as error:
        raise Unavailable(f"the inference job was recorded but its services could not start: {error}") from None
    db.expire_all()
    return inference_job_out(db, db.get_one(InferenceJob, job.id))


@router.get("", summary="List inference jobs (yours; all for admins)")
def list_inference_jobs(
    db: DbSession, user: Developer, page: Paging,
    app: Annotated[str | None, Query(pattern=APP_PATTERN)] = None,
) -> Page[InferenceJobOut]:
    stmt = select(InferenceJob).join(TrainJob, TrainJob.id == InferenceJob.train_job_id).order_by(
        InferenceJob.created_at.desc(), InferenceJob.id
    )
    if not is_admin(user):
        stmt = stmt.where(InferenceJob.owner_id == user.id)
    if app is not None:
        stmt = stmt.where(TrainJob.app == app)
    items, total = paginate(db, stmt, page)
    return Page[InferenceJobOut](items=[inference_job_out(db, j) for j in items], total=total,
                                 offset=page.offset, limit=page.limit)


def _owned_inference_job(db: Session, app: str, version: int, user: User) -> tuple[TrainJob, InferenceJob]:
    train_job = owned_train_job(db, app, version, user)
    job = _latest_job(db, train_job)
    if job is None or (job.owner_id != user.id and not is_admin(user)):
        raise NotFound(f"no inference job for {app} v{version}")
    return train_job, job


@router.get("/{app}/{version}", summary="The running (else the latest) inference job of an app version")
def get_inference_job(app: AppPath, version: VersionPath, db: DbSession, user: Developer) -> InferenceJobOut:
    train_job, job = _owned_inference_job(db, app, version, user)
    return inference_job_out(db, job, train_job)


@router.post("/{app}/{version}/stop",
             summary="Stop the running inference job of an app version (drains: requests in flight are answered)")
def stop_inference_job(
    app: AppPath, version: VersionPath, db: DbSession, user: Developer, state: State,
) -> InferenceJobOut:
    train_job, job = _owned_inference_job(db, app, version, user)
    if job.status in LIVE:
        # STOPPED first, committed: the supervisor relaunches only services of live jobs, so a predictor that
        # exits while it drains is not brought back behind the stop
        lifecycle.mark_inference_job_stopped(db, job)
        db.commit()
        orchestration.stop_inference_job(state, db, job)
        db.commit()
    return inference_job_out(db, job, train_job)
