"""The advisor's reads and writes of the trials table (PostgreSQL is the record of every trial)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from easel.db.enums import JobStatus, TrialStatus
from easel.db.models import Model, SubTrainJob, TrainJob, Trial
from easel.db.session import session_scope

FINISHED = (TrialStatus.COMPLETED, TrialStatus.ERRORED, TrialStatus.TERMINATED)


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

    def all(self) -> list[Trial]:
        with session_scope(self.sessions) as session:
            return list(session.scalars(
                select(Trial).where(Trial.sub_train_job_id == self.sub_train_job_id).order_by(Trial.no)
            ))

    def create(self, knobs: dict[str, Any]) -> Trial:
        """A new PENDING trial numbered after every trial this sub-job ever had (restarts included)."""
        with session_scope(self.sessions) as session:
            last = session.scalar(select(func.max(Trial.no)).where(Trial.sub_train_job_id == self.sub_train_job_id))
            trial = Trial(sub_train_job_id=self.sub_train_job_id, no=(last or 0) + 1, knobs=knobs,
                          status=TrialStatus.PENDING, attempts=1)
            session.add(trial)
            session.flush()
            return trial

    def reissue(self, trial_id: str, attempt: int) -> int | None:
        """Back to PENDING with one more attempt; returns the new attempt number, or None when the trial
        finished (or moved to another attempt) meanwhile: a single conditional UPDATE, so a result that
        lands while the advisor decides is never overwritten."""
        with session_scope(self.sessions) as session:
            return session.execute(
                update(Trial).where(Trial.id == trial_id, Trial.attempts == attempt, Trial.status.not_in(FINISHED))
                .values(attempts=Trial.attempts + 1, status=TrialStatus.PENDING, worker_service_id=None)
                .returning(Trial.attempts)
            ).scalar_one_or_none()

    def finish(self, trial_id: str, status: TrialStatus, error: str | None = None) -> None:
        with session_scope(self.sessions) as session:
            session.execute(
                update(Trial).where(Trial.id == trial_id, Trial.status.not_in(FINISHED))
                .values(status=status, error=error, stopped_at=datetime.now(UTC))
            )

    def set_sub_job_status(self, status: JobStatus) -> None:
        with session_scope(self.sessions) as session:
            sub = session.get_one(SubTrainJob, self.sub_train_job_id)
            if sub.status in (JobStatus.STOPPED, JobStatus.ERRORED):
                return  # admin stopped it: keep that
            sub.status = status
            if status not in (JobStatus.STARTED, JobStatus.RUNNING):
                sub.stopped_at = datetime.now(UTC)
            job = session.get_one(TrainJob, sub.train_job_id)
            if job.status in (JobStatus.STOPPED, JobStatus.ERRORED, JobStatus.COMPLETED):
                return
            session.flush()
            siblings = session.scalars(select(SubTrainJob.status).where(SubTrainJob.train_job_id == job.id)).all()
            if status == JobStatus.RUNNING:
                job.status = JobStatus.RUNNING
            elif all(s in (JobStatus.COMPLETED, JobStatus.STOPPED, JobStatus.ERRORED) for s in siblings):
                job.status = JobStatus.COMPLETED
                job.stopped_at = datetime.now(UTC)
