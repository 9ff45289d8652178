"""The supervisor: admin's reconcile loop over the services it launched for running train jobs.

Every ``interval_s`` it asks the launcher for the real state of each live service (a process that died is
no longer RUNNING). An advisor that died before finishing its sub-job is relaunched — it rebuilds its
optimiser from the trials table and continues the numbering — up to ``MAX_RESTARTS`` times; a train
worker that died is replaced the same way (its trial is re-issued by the advisor when the lease expires).
A sub-job whose advisor cannot be kept alive is ERRORED, and so is the train job once none of its
sub-jobs is left running. Services that exit with code 0 (their work is done) are left alone.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import func, select

from admin.state import AdminState
from easel.db.enums import ServiceKind, ServiceStatus
from easel.db.models import InferenceJob, Service, SubTrainJob, TrainJob
from easel.db.session import session_scope
from easel.jobs import TrainBudget, lifecycle
from easel.launcher import ServiceSpec

log = logging.getLogger("admin.supervisor")

MAX_RESTARTS = 3
LIVE_JOB = lifecycle.LIVE_JOB
RESTARTABLE = (ServiceKind.ADVISOR, ServiceKind.TRAIN_WORKER)


class Supervisor:
    def __init__(self, state: AdminState, interval_s: float = 2.0) -> None:
        self.state = state
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the loop must survive a bad tick; it is logged
                log.exception("supervisor tick failed")

    def tick(self) -> None:
        """One reconcile pass (public so tests can drive it)."""
        with session_scope(self.state.sessions) as session:
            rows = session.execute(
                select(Service.id, SubTrainJob.id, SubTrainJob.status, Service.kind, InferenceJob.id,
                       InferenceJob.status)
                .outerjoin(SubTrainJob, SubTrainJob.id == Service.sub_train_job_id)
                .outerjoin(InferenceJob, InferenceJob.id == Service.inference_job_id)
                .where(Service.status.in_(lifecycle.LIVE_SERVICE))
            ).all()
        for service_id, sub_id, sub_status, kind, inference_id, inference_status in rows:
            # status() records processes that ended (STOPPED on exit 0, else ERRORED) as it looks.
            state = self.state.launcher.status(service_id)
            if state.status != ServiceStatus.ERRORED:
                continue
            if sub_id is not None and sub_status in LIVE_JOB:
                self._replace(service_id, sub_id)
            elif kind == ServiceKind.EXPLAINER and inference_id is not None and inference_status in LIVE_JOB:
                self._replace_explainer(service_id, inference_id)

    def _replace_explainer(self, service_id: str, job_id: str) -> None:
        """An explainer that died is replaced (its explanation in progress is taken over from the stream by
        the new one, or by a sibling), up to ``MAX_RESTARTS`` replacements per explainer of the job."""
        with session_scope(self.state.sessions) as session:
            dead = session.get_one(Service, service_id)
            launched = session.scalar(select(func.count()).select_from(Service).where(
                Service.inference_job_id == job_id, Service.kind == ServiceKind.EXPLAINER))
            spec = ServiceSpec(name=dead.name, kind=dead.kind, argv=dead.command["argv"],
                               env=dead.command.get("env", {}), inference_job_id=job_id)
        wanted = max(1, self.state.settings.explainers)
        if launched > wanted * (MAX_RESTARTS + 1):
            log.error("the explainers of inference job %s died %d times; not relaunching", job_id, launched)
            return
        new = self.state.launcher.start(spec)
        log.warning("explainer %s died (exit %s); relaunched as %s", service_id, dead.exit_code, new.id)

    def _replace(self, service_id: str, sub_id: str) -> None:
        with session_scope(self.state.sessions) as session:
            dead = session.get_one(Service, service_id)
            if dead.kind not in RESTARTABLE:
                return
            launched = session.scalar(select(func.count()).select_from(Service).where(
                Service.sub_train_job_id == sub_id, Service.kind == dead.kind))
            spec = ServiceSpec(name=dead.name, kind=dead.kind, argv=dead.command["argv"],
                               env=dead.command.get("env", {}), sub_train_job_id=sub_id)
        workers_wanted = dead.kind == ServiceKind.TRAIN_WORKER
        limit = MAX_RESTARTS * (self._workers_of(sub_id) if workers_wanted else 1)
        if launched > limit:
            log.error("%s of sub-train-job %s died %d times; giving up", dead.kind.value, sub_id, launched)
            if dead.kind == ServiceKind.ADVISOR:
                self._error_sub_job(sub_id, f"the advisor died {launched} times")
            return
        new = self.state.launcher.start(spec)
        log.warning("%s %s died (exit %s); relaunched as %s", dead.kind.value, service_id, dead.exit_code, new.id)

    def _workers_of(self, sub_id: str) -> int:
        with session_scope(self.state.sessions) as session:
            sub = session.get_one(SubTrainJob, sub_id)
            return TrainBudget.from_stored(session.get_one(TrainJob, sub.train_job_id).budget).WORKERS

    def _error_sub_job(self, sub_id: str, reason: str) -> None:
        with session_scope(self.state.sessions) as session:
            lifecycle.mark_sub_train_job_errored(session, sub_id)
            live = session.scalars(select(Service.id).where(
                Service.sub_train_job_id == sub_id, Service.status.in_(lifecycle.LIVE_SERVICE))).all()
        for service_id in live:
            self.state.launcher.stop(service_id)
        log.error("sub-train-job %s ERRORED: %s", sub_id, reason)
