"""Model versions of an app: register a trial, list and read versions with their stage history, move a
version between stages (``production`` through the promotion gate), and read the gate's verdicts. A version the
gate passes into production rolls the app's running inference jobs over to it when the app opted in
(``auto_update``, :mod:`admin.services.apps`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from admin.deps import DbSession, Developer, Paging, State, is_admin
from admin.routes.common import only_query, paginate
from admin.routes.inference_jobs import best_trials
from admin.routes.train_jobs import AppPath, VersionPath, owned_train_job
from admin.schemas import Page, StageIn, StageOut, UpdateOut, VerdictOut, VersionIn, VersionOut
from admin.services import registry
from admin.services.apps import start_auto_updates
from easel.api_errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from easel.db.enums import Stage, TrialStatus
from easel.db.models import ModelVersion, PromotionVerdict, SubTrainJob, TrainJob, Trial, User
from easel.jobs import lifecycle

router = APIRouter(prefix="/apps/{app}/versions", tags=["model versions"])


def owned_version(db: Session, app: str, number: int, user: User, *, lock: bool = False) -> ModelVersion:
    stmt = select(ModelVersion).where(ModelVersion.app == app, ModelVersion.number == number)
    version = db.scalars(stmt.with_for_update() if lock else stmt).first()
    if version is None or (version.owner_id != user.id and not is_admin(user)):
        raise NotFound(f"no model version {app} #{number}")
    return version


def _trial_to_register(db: Session, app: str, body: VersionIn, user: User) -> Trial:
    if body.trial_id is None:
        app_version = body.app_version
        if app_version == 0:
            raise Invalid("app_version must be a train job version (from 1), or -1 for the latest")
        if app_version == -1:
            stmt = select(func.max(TrainJob.app_version)).where(TrainJob.app == app)
            app_version = db.scalar(stmt if is_admin(user) else stmt.where(TrainJob.owner_id == user.id))
            if app_version is None:
                raise NotFound(f"no train job for app {app}")
        trials = best_trials(db, owned_train_job(db, app, app_version, user))
        if not trials:
            raise Conflict(f"train job {app} v{app_version} has no completed trial with saved parameters",
                           code="nothing_to_register")
        return db.get_one(Trial, trials[0])
    trial = db.get(Trial, body.trial_id)
    train_job = None
    if trial is not None:
        train_job = db.get_one(TrainJob, db.get_one(SubTrainJob, trial.sub_train_job_id).train_job_id)
    if trial is None or train_job is None or train_job.app != app or (
            train_job.owner_id != user.id and not is_admin(user)):
        raise NotFound(f"no trial {body.trial_id} of app {app}")
    if trial.status != TrialStatus.COMPLETED or trial.params_key is None:
        raise Conflict(f"trial {trial.id} is {trial.status.value} without saved parameters; only a completed "
                       "trial can be registered", code="trial_not_completed")
    return trial


@router.post("", status_code=status.HTTP_201_CREATED, summary="Register a trial as the app's next version (staging)")
def register_version(app: AppPath, body: VersionIn, db: DbSession, user: Developer) -> VersionOut:
    trial = _trial_to_register(db, app, body, user)
    version = registry.register(db, app, trial, user.id)
    db.commit()
    return VersionOut.model_validate(version)


@router.get("", summary="The app's versions, newest first, with their stage",
            dependencies=[Depends(only_query("offset", "limit"))])
def list_versions(app: AppPath, db: DbSession, user: Developer, page: Paging) -> Page[VersionOut]:
    stmt = select(ModelVersion).where(ModelVersion.app == app).order_by(ModelVersion.number.desc())
    if not is_admin(user):
        stmt = stmt.where(ModelVersion.owner_id == user.id)
    items, total = paginate(db, stmt, page)
    return Page[VersionOut](items=[VersionOut.model_validate(v) for v in items], total=total,
                            offset=page.offset, limit=page.limit)


@router.get("/{number}", summary="One version with its stage history")
def get_version(app: AppPath, number: VersionPath, db: DbSession, user: Developer) -> VersionOut:
    return VersionOut.model_validate(owned_version(db, app, number, user))


@router.get("/{number}/verdicts", summary="The promotion gate's verdicts on a version, newest first")
def list_verdicts(app: AppPath, number: VersionPath, db: DbSession, user: Developer) -> list[VerdictOut]:
    version = owned_version(db, app, number, user)
    rows = db.scalars(select(PromotionVerdict).where(PromotionVerdict.version_id == version.id)
                      .order_by(PromotionVerdict.created_at.desc()))
    return [VerdictOut.model_validate(r) for r in rows]


@router.post("/{number}/stage", summary="Move a version to a stage (to production only through the gate)",
             responses={409: {"description": "the gate refused the version (its verdict is stored)"}})
def move_stage(app: AppPath, number: VersionPath, body: StageIn, db: DbSession, user: Developer,
               state: State) -> StageOut:
    if body.override and not is_admin(user):
        raise Forbidden("overriding the promotion gate needs an admin")
    version = owned_version(db, app, number, user, lock=True)
    if version.stage == body.stage:
        raise Conflict(f"version {app} #{number} is already {body.stage.value}", code="already_in_stage")
    verdict = None
    reason = body.reason
    if body.stage == Stage.PRODUCTION:
        if body.dataset_id is None and not body.override:
            raise Invalid("promoting to production needs dataset_id: the held-out dataset the gate measures on")
        tolerance = state.settings.promotion_tolerance if body.tolerance is None else body.tolerance
        try:
            verdict = registry.gate(state, db, version, body.dataset_id, tolerance, body.override, user.id)
        except registry.GateError as error:
            raise Unavailable(str(error), code="gate_failed") from None
        if verdict.passed is False and not body.override:
            db.commit()  # the refusal is recorded with its numbers
            failures = "; ".join(verdict.numbers.get("failures", []))
            raise Conflict(f"the promotion gate refused {app} #{number} (verdict {verdict.id}): {failures}",
                           code="promotion_refused")
        if body.override:
            reason = f"override by admin {user.email}" + (f": {reason}" if reason else "")
        else:
            reason = reason or "passed the promotion gate"
    lifecycle.move_stage(db, version, body.stage, user.id, reason or f"moved to {body.stage.value}",
                         verdict.id if verdict else None)
    db.commit()
    updates = []
    if verdict is not None and verdict.passed is True and not verdict.overridden:  # only the gate's own yes rolls
        updates = start_auto_updates(state, db, version, user.id)
    db.refresh(version)
    return StageOut(version=VersionOut.model_validate(version),
                    verdict=VerdictOut.model_validate(verdict) if verdict else None,
                    updates=[UpdateOut.model_validate(u) for u in updates])
