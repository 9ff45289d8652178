"""The services of live jobs, as the platform verbs (``easel down``, ``easel status``) see them.

Jobs' processes (advisors, workers, predictors) are not parts of the stack, but they live on it: ``down``
must not leave them running against a stopped broker, and ``status`` must show them as they really are. The
``services`` table says what was launched; the local launcher reconciles each row with the process table.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from easel.db.enums import ServiceKind
from easel.db.models import InferenceJob, Service, TrainJob
from easel.db.session import make_engine, make_sessionmaker, session_scope
from easel.jobs import lifecycle
from easel.launcher.local import LocalLauncher
from easel.settings import Settings

ALIVE = lifecycle.LIVE_SERVICE
# predictors first (they answer what is in flight), then workers, advisors last
STOP_ORDER = {ServiceKind.PREDICTOR: 0, ServiceKind.INFERENCE_WORKER: 1, ServiceKind.TRAIN_WORKER: 2,
              ServiceKind.ADVISOR: 3}


@dataclass(frozen=True)
class LiveJob:
    kind: str  # "train" or "inference"
    id: str
    app: str
    version: int
    status: str

    def describe(self) -> str:
        return f"{self.kind} job {self.app} v{self.version} ({self.status}, id {self.id[:8]})"


@dataclass(frozen=True)
class ServiceRow:
    id: str
    name: str
    kind: str
    status: str
    pid: int | None
    exit_code: int | None


class JobServices:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.resolved_database_url)
        self.sessions: sessionmaker[Session] = make_sessionmaker(self.engine)
        self.launcher = LocalLauncher(settings, self.sessions)

    def close(self) -> None:
        self.engine.dispose()

    def live_jobs(self) -> list[LiveJob]:
        with session_scope(self.sessions) as session:
            jobs = [LiveJob("train", j.id, j.app, j.app_version, j.status.value) for j in session.scalars(
                select(TrainJob).where(TrainJob.status.in_(lifecycle.LIVE_JOB)).order_by(TrainJob.created_at))]
            live = InferenceJob.status.in_(lifecycle.LIVE_INFERENCE_JOB)
            for job in session.scalars(select(InferenceJob).where(live).order_by(InferenceJob.created_at)):
                train = session.get_one(TrainJob, job.train_job_id)
                jobs.append(LiveJob("inference", job.id, train.app, train.app_version, job.status.value))
            return jobs

    def services(self, only_alive: bool = True) -> list[ServiceRow]:
        """Job services (every launched one, or only those recorded alive), each reconciled with reality:
        a process that is gone is recorded as ended before it is shown."""
        with session_scope(self.sessions) as session:
            query = select(Service).where(or_(Service.sub_train_job_id.is_not(None),
                                              Service.inference_job_id.is_not(None)),
                                          Service.launcher == "local")
            if only_alive:
                query = query.where(Service.status.in_(ALIVE))
            ids = session.scalars(query.order_by(Service.created_at)).all()
            ids = [row.id for row in ids]
        rows = []
        for service_id in ids:
            state = self.launcher.status(service_id)
            rows.append(ServiceRow(state.id, state.name, state.kind.value, state.status.value, state.pid,
                                   state.exit_code))
        return rows

    def stop_all(self, timeout_s: float = 15.0) -> list[ServiceRow]:
        """Stop (drain) every live job service, predictors first; then mark the live jobs STOPPED."""
        alive = [row for row in self.services() if row.status in (s.value for s in ALIVE)]
        alive.sort(key=lambda row: STOP_ORDER.get(ServiceKind(row.kind), 9))
        stopped = []
        for row in alive:
            state = self.launcher.stop(row.id, timeout_s=timeout_s)
            stopped.append(ServiceRow(state.id, state.name, state.kind.value, state.status.value, state.pid,
                                      state.exit_code))
        self._stop_jobs()
        return stopped

    def _stop_jobs(self) -> None:
        with session_scope(self.sessions) as session:
            lifecycle.stop_live_jobs(session)


__all__ = ["JobServices", "LiveJob", "ServiceRow"]
