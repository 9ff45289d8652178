"""The advisor's reads and writes of the trials table (PostgreSQL is the record of every trial)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from easel.db.enums import TrialStatus
from easel.db.models import Dataset, Model, SubTrainJob, TrainJob, Trial
from easel.db.session import session_scope
from easel.jobs import lifecycle

FINISHED = lifecycle.FINISHED_TRIAL


class TrialRecords:
    def __init__(self, sessions: sessionmaker[Session], sub_train_job_id: str) -> None:
        self.sessions = sessions
        self.sub_train_job_id = sub_train_job_id

    def job(self) -> tuple[SubTrainJob, TrainJob, Model]:
        with session_scope(self.sessions) as session:
            sub = session.get(SubTrainJob, self.sub_train_job_id)
            if sub is None:
                raise ValueError(f"no sub-train-job {self.sub_train_job_id!r}")
            return sub, session.get_one(TrainJob, sub.train_job_id), session.get_one(Model, sub.model_id)

    def train_dataset_key(self) -> str:
        """The blob key of the job's training set (MOP mode shards it)."""
        with session_scope(self.sessions) as session:
            sub = session.get_one(SubTrainJob, self.sub_train_job_id)
            job = session.get_one(TrainJob, sub.train_job_id)
            return session.get_one(Dataset, job.train_dataset_id).blob_key

    def all(self) -> list[Trial]:
        with session_scope(self.sessions) as session:
            return list(session.scalars(
                select(Trial).where(Trial.sub_train_job_id == self.sub_train_job_id).order_by(Trial.no)
            ))

    def create(self, knobs: dict[str, Any]) -> Trial:
        """A new PENDING trial numbered after every trial this sub-job ever had (restarts included)."""
        with session_scope(self.sessions) as session:
            last = session.scalar(select(func.max(Trial.no)).where(Trial.sub_train_job_id == self.sub_train_job_id))
            trial = lifecycle.new_trial(self.sub_train_job_id, (last or 0) + 1, knobs)
            session.add(trial)
            session.flush()
            return trial

    def reissue(self, trial_id: str, attempt: int) -> int | None:
        """Back to PENDING with one more attempt; returns the new attempt number, or None when the trial
        finished (or moved to another attempt) meanwhile: a single conditional UPDATE, so a result that
        lands while the advisor decides is never overwritten."""
        with session_scope(self.sessions) as session:
            return lifecycle.reissue_trial(session, trial_id, attempt)

    def finish(self, trial_id: str, status: TrialStatus, error: str | None = None) -> None:
        with session_scope(self.sessions) as session:
            lifecycle.end_trial(session, trial_id, status, error)

    def mark_running(self) -> None:
        with session_scope(self.sessions) as session:
            lifecycle.mark_sub_train_job_running(session, self.sub_train_job_id)

    def mark_completed(self) -> None:
        with session_scope(self.sessions) as session:
            lifecycle.mark_sub_train_job_completed(session, self.sub_train_job_id)
