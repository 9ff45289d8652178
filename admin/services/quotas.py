"""Per-user quotas: live jobs, train workers and inference workers one user may hold at once.

Counted from what live jobs reserve in their budgets (``WORKERS`` per model of a train job, ``WORKERS`` of
an inference job). The caller's user row is locked first (``SELECT ... FOR UPDATE``) so two concurrent
requests of one user cannot both slip under a limit; the lock ends with the request's commit.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from easel.db.models import InferenceJob, TrainJob, User
from easel.jobs import lifecycle
from easel.settings import Settings


class QuotaExceeded(Exception):
    """The request would take the user past a quota; the message names the limit and its setting."""


def _workers(budget: dict | None) -> int:
    value = (budget or {}).get("WORKERS", 1)
    return value if isinstance(value, int) else 1


def check_quotas(db: Session, settings: Settings, user_id: str, *, train_workers: int = 0,
                 inference_workers: int = 0) -> None:
    """Raise :class:`QuotaExceeded` if one more job with these workers passes a quota of ``user_id``."""
    db.get(User, user_id, with_for_update=True, populate_existing=True)
    trains = db.scalars(select(TrainJob).where(TrainJob.owner_id == user_id,
                                               TrainJob.status.in_(lifecycle.LIVE_JOB))).all()
    serving = db.scalars(select(InferenceJob.budget).where(InferenceJob.owner_id == user_id,
                                                           InferenceJob.status.in_(lifecycle.LIVE_INFERENCE_JOB))).all()
    live_jobs = len(trains) + len(serving)
    used_train = sum(_workers(job.budget) * max(1, len(job.sub_train_jobs)) for job in trains)
    used_inference = sum(_workers(budget) for budget in serving)
    for used, asked, limit, name, what in (
        (live_jobs, 1, settings.quota_live_jobs, "EASEL_QUOTA_LIVE_JOBS", "running jobs"),
        (used_train, train_workers, settings.quota_train_workers, "EASEL_QUOTA_TRAIN_WORKERS", "train workers"),
        (used_inference, inference_workers, settings.quota_inference_workers, "EASEL_QUOTA_INFERENCE_WORKERS",
         "inference workers"),
    ):
        if used + asked > limit:
            raise QuotaExceeded(f"quota exceeded: you have {used} {what} and asked for {asked} more; the limit is "
                                f"{limit} per user ({name}); stop a job first")
