"""API keys of an inference job's predictor: create (the secret is shown once), list, revoke.

The job's owner and admins manage its keys. A predictor answers ``/predict``, ``/explain`` and ``/metrics``
only with a live key of its own job; a revoked key is refused within ``EASEL_PREDICTOR_KEY_CACHE_S``.
Keys belong to one inference job: a redeployed app version needs new keys.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status
from sqlalchemy import select

from admin.deps import DbSession, Developer, Paging
from admin.routes.common import paginate
from admin.routes.inference_jobs import _owned_inference_job
from admin.routes.train_jobs import AppPath, VersionPath
from admin.schemas import ID_PATTERN, Page, PredictorKeyCreated, PredictorKeyIn, PredictorKeyOut
from easel.api_errors import NotFound
from easel.db.models import PredictorKey, utcnow
from easel.predictor_keys import issue_key

router = APIRouter(prefix="/inference_jobs", tags=["inference jobs"])
KeyIdPath = Annotated[str, Path(pattern=ID_PATTERN)]


@router.post("/{app}/{version}/keys", status_code=status.HTTP_201_CREATED,
             summary="Create an API key of the app version's inference job's predictor (the secret is shown once)")
def create_predictor_key(app: AppPath, version: VersionPath, body: PredictorKeyIn, db: DbSession,
                         user: Developer) -> PredictorKeyCreated:
    _train_job, job = _owned_inference_job(db, app, version, user)
    row, key = issue_key(db, job.id, body.name, created_by=user.id)
    db.commit()
    return PredictorKeyCreated(**PredictorKeyOut.model_validate(row).model_dump(), key=key)


@router.get("/{app}/{version}/keys", summary="The API keys of the app version's inference job (revoked ones too)")
def list_predictor_keys(app: AppPath, version: VersionPath, db: DbSession, user: Developer,
                        page: Paging) -> Page[PredictorKeyOut]:
    _train_job, job = _owned_inference_job(db, app, version, user)
    stmt = (select(PredictorKey).where(PredictorKey.inference_job_id == job.id, PredictorKey.internal.is_(False))
            .order_by(PredictorKey.created_at, PredictorKey.id))
    items, total = paginate(db, stmt, page)
    return Page[PredictorKeyOut](items=[PredictorKeyOut.model_validate(k) for k in items], total=total,
                                 offset=page.offset, limit=page.limit)


@router.delete("/{app}/{version}/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Revoke an API key (the predictor refuses it within EASEL_PREDICTOR_KEY_CACHE_S)")
def revoke_predictor_key(app: AppPath, version: VersionPath, key_id: KeyIdPath, db: DbSession,
                         user: Developer) -> None:
    _train_job, job = _owned_inference_job(db, app, version, user)
    row = db.get(PredictorKey, key_id)
    if row is None or row.inference_job_id != job.id or row.internal:
        raise NotFound(f"no API key {key_id} of {app} v{version}")
    if row.revoked_at is None:  # revoking twice is no error: the key is refused either way
        row.revoked_at = utcnow()
        db.commit()
