"""Trials of a train job: list (or the best k), one trial, its logs, its trained parameters.

Only the owner of the train job (or an admin) sees its trials. Parameters are returned as the bytes the
train worker stored (safetensors: tensors only, never pickle), as ``application/octet-stream``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.deps import Blobs, DbSession, Developer, Paging, is_admin
from admin.routes.common import paginate
from admin.routes.train_jobs import AppPath, VersionPath, owned_train_job
from admin.schemas import ID_PATTERN, Page, TrialLogOut, TrialOut, TrialProgressOut
from easel.api_errors import NotFound
from easel.db.enums import TrialStatus
from easel.db.models import Model, SubTrainJob, TrainJob, Trial, TrialLog, User
from easel.model.params import FORMAT, is_safetensors

router = APIRouter(tags=["trials"])
Objective = Literal["full_width", "mean_across_rates"]


def _mean_accuracy(trial: Trial) -> float:
    accuracy = (trial.profile or {}).get("accuracy") or [trial.score or 0.0]
    return sum(accuracy) / len(accuracy)
TrialId = Annotated[str, Path(pattern=ID_PATTERN)]


def trial_out(trial: Trial, model_id: str, model_name: str) -> TrialOut:
    return TrialOut(
        id=trial.id, sub_train_job_id=trial.sub_train_job_id, model_id=model_id, model_name=model_name,
        no=trial.no, knobs=trial.knobs, status=trial.status, score=trial.score, profile=trial.profile,
        has_parameters=trial.params_key is not None, attempts=trial.attempts, error=trial.error,
        progress=TrialProgressOut.model_validate(trial.progress) if trial.progress else None,
        created_at=trial.created_at, started_at=trial.started_at, stopped_at=trial.stopped_at,
    )


def _with_models(db: Session, trials: list[Trial]) -> list[TrialOut]:
    sub_ids = {t.sub_train_job_id for t in trials}
    rows = db.execute(
        select(SubTrainJob.id, Model.id, Model.name).join(Model, Model.id == SubTrainJob.model_id)
        .where(SubTrainJob.id.in_(sub_ids))
    ).all() if sub_ids else []
    models = {sub_id: (model_id, name) for sub_id, model_id, name in rows}
    return [trial_out(t, *models.get(t.sub_train_job_id, ("?", "?"))) for t in trials]


def owned_trial(db: Session, trial_id: str, user: User) -> Trial:
    row = db.execute(
        select(Trial, TrainJob.owner_id).join(SubTrainJob, SubTrainJob.id == Trial.sub_train_job_id)
        .join(TrainJob, TrainJob.id == SubTrainJob.train_job_id).where(Trial.id == trial_id)
    ).first()
    if row is None or (row[1] != user.id and not is_admin(user)):
        raise NotFound(f"no trial {trial_id}")
    return row[0]


@router.get("/train_jobs/{app}/{version}/trials", summary="Trials of a train job; ?best=k for the top k by score")
def list_trials(
    app: AppPath, version: VersionPath, db: DbSession, user: Developer, page: Paging,
    best: Annotated[int | None, Query(ge=1, le=1000, description="only the k best completed trials")] = None,
    objective: Annotated[Objective, Query(description="how `best` ranks: accuracy at full width, or the mean "
                                          "accuracy across the slice rates")] = "full_width",
) -> Page[TrialOut]:
    job = owned_train_job(db, app, version, user)
    stmt = select(Trial).join(SubTrainJob, SubTrainJob.id == Trial.sub_train_job_id).where(
        SubTrainJob.train_job_id == job.id
    )
    if best is not None:
        stmt = stmt.where(Trial.status == TrialStatus.COMPLETED, Trial.score.is_not(None)).order_by(
            Trial.score.desc(), Trial.created_at, Trial.id
        )
        if objective == "mean_across_rates":
            items = sorted(db.scalars(stmt), key=_mean_accuracy, reverse=True)[:best]
        else:
            items = list(db.scalars(stmt.limit(best)))
        return Page[TrialOut](items=_with_models(db, items), total=len(items), offset=0, limit=best)
    items, total = paginate(db, stmt.order_by(Trial.created_at, Trial.no, Trial.id), page)
    return Page[TrialOut](items=_with_models(db, items), total=total, offset=page.offset, limit=page.limit)


@router.get("/trials/{trial_id}", summary="One trial")
def get_trial(trial_id: TrialId, db: DbSession, user: Developer) -> TrialOut:
    return _with_models(db, [owned_trial(db, trial_id, user)])[0]


@router.get("/trials/{trial_id}/logs", summary="A trial's log lines and metrics, oldest first")
def get_trial_logs(trial_id: TrialId, db: DbSession, user: Developer, page: Paging) -> Page[TrialLogOut]:
    trial = owned_trial(db, trial_id, user)
    stmt = select(TrialLog).where(TrialLog.trial_id == trial.id).order_by(TrialLog.time, TrialLog.id)
    items, total = paginate(db, stmt, page)
    return Page[TrialLogOut](items=[TrialLogOut.model_validate(r) for r in items], total=total,
                             offset=page.offset, limit=page.limit)


@router.get(
    "/trials/{trial_id}/parameters", summary="A trial's trained parameters (safetensors bytes)",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the parameter bytes"}},
)
def get_trial_parameters(trial_id: TrialId, db: DbSession, user: Developer, blobs: Blobs) -> Response:
    trial = owned_trial(db, trial_id, user)
    if trial.params_key is None:
        raise NotFound(f"trial {trial.id} has no saved parameters", code="no_parameters")
    try:
        data = blobs.get_bytes(trial.params_key)
    except (FileNotFoundError, ValueError):
        raise NotFound(f"the parameters of trial {trial.id} are missing from the store", code="no_parameters") from None
    fmt = FORMAT if is_safetensors(data) else "raw"
    return Response(
        content=data, media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="trial-{trial.id}.{fmt}"', "X-Easel-Params-Format": fmt},
    )
