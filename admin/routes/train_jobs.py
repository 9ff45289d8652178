"""Train jobs: create (one sub-train-job per model, services launched), list, read, stop. A job that names no
models trains the templates whose declared schema fits its training data (:mod:`admin.services.candidates`).

Jobs are addressed by ``{app}/{version}``: versions count up from 1 per app. An app belongs to the user
who trained its first version; others (but admins) cannot add versions to it. A user sees and stops only
their own jobs; admins see and stop all.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from admin.deps import DbSession, Developer, Paging, State, is_admin
from admin.routes.common import paginate
from admin.routes.datasets import owned_dataset
from admin.routes.models import visible_model
from admin.routes.pool import pool_share
from admin.schemas import (
    APP_PATTERN,
    MAX_INT,
    Page,
    ServiceOut,
    SubTrainJobOut,
    TrainJobIn,
    TrainJobOut,
)
from admin.services import orchestration
from admin.services.candidates import choose_candidates, describe_schema
from admin.services.quotas import QuotaExceeded, check_quotas
from easel.api_errors import Conflict, Invalid, NotFound, Unavailable
from easel.db.models import Model, TrainJob, User
from easel.jobs import lifecycle

router = APIRouter(prefix="/train_jobs", tags=["train jobs"])
AppPath = Annotated[str, Path(pattern=APP_PATTERN, description="the app's name")]
VersionPath = Annotated[int, Path(ge=1, le=MAX_INT, description="the app version (from 1)")]


def owned_train_job(db: Session, app: str, version: int, user: User) -> TrainJob:
    job = db.scalar(select(TrainJob).where(TrainJob.app == app, TrainJob.app_version == version))
    if job is None or (job.owner_id != user.id and not is_admin(user)):
        raise NotFound(f"no train job {app} v{version}")
    return job


def train_job_out(db: Session, job: TrainJob) -> TrainJobOut:
    subs = sorted(job.sub_train_jobs, key=lambda s: (s.created_at, s.id))
    names = dict(db.execute(select(Model.id, Model.name).where(Model.id.in_([s.model_id for s in subs]))).all())
    services = defaultdict(list)
    for row in orchestration.sub_train_job_services(db, [s.id for s in subs]):
        services[row.sub_train_job_id].append(ServiceOut.model_validate(row))
    return TrainJobOut(
        id=job.id, app=job.app, app_version=job.app_version, task=job.task, budget=job.budget,
        train_dataset_id=job.train_dataset_id, val_dataset_id=job.val_dataset_id, status=job.status,
        owner_id=job.owner_id, created_at=job.created_at, stopped_at=job.stopped_at, error=job.error,
        candidates=job.candidates, sub_train_jobs=[
            SubTrainJobOut(id=s.id, model_id=s.model_id, model_name=names.get(s.model_id, "?"), status=s.status,
                           created_at=s.created_at, stopped_at=s.stopped_at, services=services[s.id])
            for s in subs
        ],
    )


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a train job (the next version of an app)")
def create_train_job(body: TrainJobIn, db: DbSession, user: Developer, state: State) -> TrainJobOut:
    if body.budget.MOP and state.settings.train_pool_workers > 0:
        raise Invalid("MOP mode needs workers of the job's own (each owns a shard); this platform shares one train "
                      "pool among all jobs (EASEL_TRAIN_POOL_WORKERS): start the job without MOP")
    task = body.task or owned_dataset(db, body.train_dataset_id, user).task
    for dataset_id in dict.fromkeys([body.train_dataset_id, body.val_dataset_id]):
        dataset = owned_dataset(db, dataset_id, user)
        if dataset.task != task:
            raise Invalid(f"dataset {dataset.id} ({dataset.name}) is for task {dataset.task}, not {task}")
    model_ids = list(dict.fromkeys(body.model_ids))
    candidates = None
    if not model_ids:  # declarative: every usable template whose declared schema fits the training data
        train_data = owned_dataset(db, body.train_dataset_id, user)
        candidates = choose_candidates(db, task, train_data, user.id, is_admin(user))
        model_ids = [choice["model_id"] for choice in candidates["chosen"]]
        if not model_ids:
            raise Invalid(f"no template you can use fits dataset {train_data.name} ({describe_schema(train_data)}); "
                          "name model_ids, or upload a template whose FITS accepts this data",
                          code="no_fitting_template")
    for model_id in model_ids:
        model = visible_model(db, model_id, user)
        if model.task != task:
            raise Invalid(f"model {model.name} is for task {model.task}, not {task}")
    owner = db.scalar(select(TrainJob.owner_id).where(TrainJob.app == body.app).limit(1))
    if owner is not None and owner != user.id and not is_admin(user):
        raise Conflict(f"the app name {body.app!r} belongs to another user; choose another", code="app_taken")
    try:
        # With the shared pool a job owns no workers: they are the pool's, lent trial by trial.
        pooled = state.settings.train_pool_workers > 0
        check_quotas(db, state.settings, user.id, train_workers=0 if pooled else body.budget.WORKERS * len(model_ids))
    except QuotaExceeded as error:
        raise Conflict(str(error), code="quota_exceeded") from None
    for _attempt in range(5):
        version = (db.scalar(select(func.max(TrainJob.app_version)).where(TrainJob.app == body.app)) or 0) + 1
        job = lifecycle.new_train_job(
            model_ids, app=body.app, app_version=version, task=task,
            budget=body.budget.model_dump(exclude_none=True),
            train_dataset_id=body.train_dataset_id, val_dataset_id=body.val_dataset_id, owner_id=user.id,
            candidates=candidates,
        )
        db.add(job)
        try:
            db.commit()
            break
        except IntegrityError:  # another request took this version number first
            db.rollback()
    else:
        raise Conflict(f"could not allocate a version of app {body.app!r}; try again")
    try:
        orchestration.launch_train_job(state, job.id)
    except Exception as error:
        raise Unavailable(
            f"train job {job.app} v{job.app_version} was recorded but its services could not start: {error}"
        ) from None
    db.expire_all()
    return train_job_out(db, db.get_one(TrainJob, job.id))


@router.get("", summary="List train jobs (yours; all for admins)")
def list_train_jobs(
    db: DbSession, user: Developer, page: Paging,
    app: Annotated[str | None, Query(pattern=APP_PATTERN, description="only this app's versions")] = None,
) -> Page[TrainJobOut]:
    stmt = select(TrainJob).order_by(TrainJob.created_at.desc(), TrainJob.app, TrainJob.app_version.desc())
    if not is_admin(user):
        stmt = stmt.where(TrainJob.owner_id == user.id)
    if app is not None:
        stmt = stmt.where(TrainJob.app == app)
    items, total = paginate(db, stmt, page)
    return Page[TrainJobOut](items=[train_job_out(db, j) for j in items], total=total,
                             offset=page.offset, limit=page.limit)


@router.get("/{app}/{version}", summary="One train job with its sub-jobs and services")
def get_train_job(app: AppPath, version: VersionPath, db: DbSession, user: Developer, state: State) -> TrainJobOut:
    job = owned_train_job(db, app, version, user)
    return train_job_out(db, job).model_copy(update={"pool_share": pool_share(state, job)})


@router.post("/{app}/{version}/stop", summary="Stop a train job: its services, sub-jobs and unfinished trials")
def stop_train_job(app: AppPath, version: VersionPath, db: DbSession, user: Developer, state: State) -> TrainJobOut:
    job = owned_train_job(db, app, version, user)
    if job.status in lifecycle.LIVE_JOB:
        sub_ids = [s.id for s in job.sub_train_jobs]
        # STOPPED first, committed: the supervisor relaunches only services of live sub-jobs, so a worker that
        # exits on the stop's SIGTERM is not brought back behind the stop
        lifecycle.mark_train_job_stopped(db, job)
        db.commit()
        orchestration.stop_services(state, db, orchestration.sub_train_job_services(db, sub_ids))
        db.commit()
        if state.settings.train_pool_workers > 0:
            orchestration.release_pool_share(state, sub_ids)
    return train_job_out(db, job)
