"""The supervisor: admin's reconcile loop over the services it launched for live train and inference jobs.

Every ``interval_s`` — and at once when the launcher reports that a service ended — it asks the launcher for
the real state of each live service (a process that died is no longer RUNNING), then looks at every *slot* of
every live job — one service the job asked for, whose relaunches keep its name (:mod:`admin.services.restarts`)
— and relaunches a dead one when its backoff has passed (the first relaunch at once, later ones exponential,
capped, jittered; the same policy for every kind):

* an advisor that died before finishing its sub-job rebuilds its optimiser from the trials table and
  continues the numbering; a train worker's trial is re-issued by the advisor when the lease expires;
  training services that exited with 0 did their work and are left alone;
* a predictor (on the same port, so the job's URL stays valid) or an inference worker that fails is
  relaunched; the surviving workers serve the dead one's partitions meanwhile. A dead inference worker's slot
  goes to a warm standby of its job instead, when one is ready (:mod:`admin.services.standby`).

Services stopped on purpose (the launcher's stop) are STOPPED and left alone.

When a slot's restart budget is spent the supervisor gives up *visibly*: an advisor's sub-job, a sub-job left
with no train worker, or an inference job that lost its predictor or a worker is ERRORED, with the reason
logged, and the job's other services are stopped — never a job left RUNNING with nothing behind it.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, select
from sqlalchemy.exc import NoResultFound

from admin.services.orchestration import worker_version_id
from admin.services.readiness import Facts, Readiness, gaps
from admin.services.restarts import ALIVE, SERVING, Death, RestartPolicy
from admin.services.standby import Standbys
from admin.state import AdminState
from easel.db.enums import JobStatus, ServiceKind
from easel.db.models import InferenceJob, Service, SubTrainJob
from easel.db.session import session_scope
from easel.jobs import InferenceJobBudget, lifecycle
from easel.launcher import ServiceSpec
from easel.serving import is_standby

log = logging.getLogger("admin.supervisor")

LIVE_JOB = lifecycle.LIVE_JOB
# While a job is short of a service (a relaunch backing off, a DEGRADED job waiting for its relaunched services
# to be ready), ticks come this often: the recovery's last step — grading the job RUNNING again — should not wait
# out a whole ``interval_s``.
RECOVERING_INTERVAL_S = 0.2


def serves_another_version(row: Row[Any]) -> bool:
    """An inference worker launched for a model version its job does not serve: a rolling update's new worker
    (the update watches it, and a version that cannot load must not be relaunched in a loop) or an old worker
    after one. Not the supervisor's to relaunch."""
    return row.kind == ServiceKind.INFERENCE_WORKER and worker_version_id(row.command) != row.model_version_id


class Supervisor:
    def __init__(self, state: AdminState, interval_s: float = 1.0, policy: RestartPolicy | None = None) -> None:
        self.state = state
        self.interval_s = interval_s
        settings = state.settings
        self.policy = policy or RestartPolicy(settings.supervisor_max_restarts, settings.supervisor_backoff_base_s,
                                              max(settings.supervisor_backoff_cap_s, settings.supervisor_backoff_base_s))
        self.relaunched = 0
        self.readiness = Readiness(settings)
        self.standbys = Standbys(state)
        self._recovering = False  # the last tick saw a dead slot or a degraded job
        self._given_up: set[str] = set()  # slots (by their last service) given up on without ending a job
        self._stop = threading.Event()
        self._wake = threading.Event()  # a service ended: reconcile now, not at the next interval
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def start(self) -> None:
        self.state.launcher.on_exit(lambda _service_id: self._wake.set())
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self.readiness.close()
        self.standbys.close()

    def _run(self) -> None:
        while True:
            self._wake.wait(min(self.interval_s, RECOVERING_INTERVAL_S) if self._recovering else self.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the loop must survive a bad tick (PostgreSQL restarting); logged
                log.exception("supervisor tick failed")

    def tick(self) -> None:
        """One reconcile pass (public so tests can drive it)."""
        self._observe()
        now = datetime.now(UTC)
        dead = self._dead_slots()
        for owner, deaths in dead.items():
            for death in deaths:
                self._handle(owner, death, now)
        degraded = self._grade_serving()
        self._recovering = degraded or any(self.policy.needs_relaunch(d) and d.service_id not in self._given_up
                                           for deaths in dead.values() for d in deaths)

    # -- what is alive --------------------------------------------------------------------------------
    def _observe(self) -> None:
        """Let the launcher record every live service that has ended (STOPPED on exit 0, else ERRORED)."""
        with session_scope(self.state.sessions) as session:
            ids = session.scalars(select(Service.id).where(Service.status.in_(ALIVE), self._ours())).all()
        for service_id in ids:
            try:
                self.state.launcher.status(service_id)
            except NoResultFound:
                continue  # the row was deleted since the query

    def _ours(self) -> ColumnElement[bool]:
        """Only the services this admin's launcher recorded (another launcher's rows are not ours to judge)."""
        return Service.launcher == self.state.launcher.name

    def _dead_slots(self) -> dict[tuple[str, str], list[Death]]:
        """Per live job (``("sub", id)`` or ``("inference", id)``), its slots whose latest service has ended."""
        with session_scope(self.state.sessions) as session:
            rows = session.execute(
                select(Service.id, Service.name, Service.kind, Service.status, Service.exit_code, Service.stopped_at,
                       Service.created_at, Service.pid, Service.pod_name, Service.sub_train_job_id,
                       Service.inference_job_id, Service.command, InferenceJob.model_version_id)
                .outerjoin(SubTrainJob, SubTrainJob.id == Service.sub_train_job_id)
                .outerjoin(InferenceJob, InferenceJob.id == Service.inference_job_id)
                .where(SubTrainJob.status.in_(LIVE_JOB) | InferenceJob.status.in_(lifecycle.LIVE_INFERENCE_JOB),
                       self._ours())
                .order_by(Service.created_at)
            ).all()
        slots: dict[tuple[tuple[str, str], str], list] = defaultdict(list)
        for row in rows:
            if serves_another_version(row):
                continue
            owner = ("sub", row.sub_train_job_id) if row.sub_train_job_id else ("inference", row.inference_job_id)
            slots[(owner, row.name)].append(row)
        dead: dict[tuple[str, str], list[Death]] = defaultdict(list)
        for (owner, name), history in slots.items():
            if any(row.status in ALIVE for row in history):
                continue  # its latest launch runs (a promoted standby joins a slot with older rows)
            latest = max(history, key=lambda row: row.stopped_at or row.created_at)
            dead[owner].append(Death(latest.id, name, latest.kind, latest.status, latest.exit_code,
                                     latest.stopped_at, len(history),
                                     started=latest.pid is not None or latest.pod_name is not None))
        return dead

    # -- deciding ---------------------------------------------------------------------------------------
    def _handle(self, owner: tuple[str, str], death: Death, now: datetime) -> None:
        if not self.policy.needs_relaunch(death):
            return
        if self.policy.exhausted(death):
            self._give_up(owner, death)
            return
        if (owner[0] == "inference" and death.kind == ServiceKind.INFERENCE_WORKER and not is_standby(death.name)
                and self.standbys.promote(owner[1], death) is not None):
            self.relaunched += 1
            return  # a warm standby took the slot at once (no backoff: nothing is started but a spare)
        if now < self.policy.due_at(death, now):
            return  # backing off: a later tick relaunches it
        self._relaunch(death)

    def _relaunch(self, death: Death) -> None:
        with session_scope(self.state.sessions) as session:
            dead = session.get_one(Service, death.service_id)
            spec = ServiceSpec(name=dead.name, kind=dead.kind, argv=dead.command["argv"],
                               env=dead.command.get("env", {}), host=dead.host if dead.kind == ServiceKind.PREDICTOR
                               else None, port=dead.port if dead.kind == ServiceKind.PREDICTOR else None,
                               sub_train_job_id=dead.sub_train_job_id, inference_job_id=dead.inference_job_id)
        new = self.state.launcher.start(spec)
        self.relaunched += 1
        log.warning("%s %s ended (%s, exit %s); relaunched as %s (relaunch %d of %d)", death.kind.value,
                    death.name, death.status.value, death.exit_code, new.id, death.launches,
                    self.policy.max_restarts)

    def _give_up(self, owner: tuple[str, str], death: Death) -> None:
        kind, job_id = owner
        reason = (f"{death.kind.value.lower().replace('_', ' ')} {death.name} ended {death.launches} times "
                  f"(restart budget {self.policy.max_restarts} spent)")
        if death.kind == ServiceKind.EXPLAINER or is_standby(death.name):  # best effort: the job serves without
            if death.service_id not in self._given_up:
                self._given_up.add(death.service_id)
                log.error("inference job %s: %s; not relaunching it", job_id, reason)
        elif kind == "inference":
            self._error_inference_job(job_id, reason)
        elif death.kind == ServiceKind.ADVISOR or not self._live_train_workers(job_id):
            self._error_sub_job(job_id, reason if death.kind == ServiceKind.ADVISOR
                                else f"no train worker left: {reason}")

    def _live_train_workers(self, sub_id: str) -> int:
        with session_scope(self.state.sessions) as session:
            return len(session.scalars(select(Service.id).where(
                Service.sub_train_job_id == sub_id, Service.kind == ServiceKind.TRAIN_WORKER,
                Service.status.in_(ALIVE))).all())

    # -- honest status ----------------------------------------------------------------------------------
    def _grade_serving(self) -> bool:
        """RUNNING ⇄ DEGRADED: a running inference job with fewer *ready* workers than it asked for (or without
        its predictor) is DEGRADED, saying what is missing; it is RUNNING again only when its relaunched
        services are ready — registered live, health answered (:mod:`admin.services.readiness`) — not
        merely started. The predictor is asked only while a degraded job looks whole otherwise. Returns
        whether a job is (still) DEGRADED after this pass."""
        degraded = False
        with session_scope(self.state.sessions) as session:
            jobs = session.execute(select(InferenceJob.id, InferenceJob.status, InferenceJob.budget,
                                          InferenceJob.predictor_url).where(
                InferenceJob.status.in_((JobStatus.RUNNING, JobStatus.DEGRADED)))).all()
            alive = {job_id: session.execute(select(Service.id, Service.kind, Service.name).where(
                Service.inference_job_id == job_id, Service.status.in_(ALIVE))).all() for job_id, *_ in jobs}
        for job_id, status, budget, url in jobs:
            predictors = [sid for sid, kind, _name in alive[job_id] if kind == ServiceKind.PREDICTOR]
            workers = [sid for sid, kind, name in alive[job_id]
                       if kind == ServiceKind.INFERENCE_WORKER and not is_standby(name)]  # a spare is not capacity
            facts = Facts(InferenceJobBudget.from_stored(budget).WORKERS, len(predictors), workers,
                          self.readiness.registered(job_id), predictor_ready=None)
            missing = gaps(facts)
            if status == JobStatus.DEGRADED and missing is None and facts.registered is not None:
                facts = replace(facts, predictor_ready=self.readiness.predictor_ready(url, job_id, predictors))
                missing = gaps(facts)
            with session_scope(self.state.sessions) as session:
                if missing and status == JobStatus.RUNNING:
                    lifecycle.mark_inference_job_degraded(session, job_id, "; ".join(missing) + " (relaunching)")
                    log.warning("inference job %s DEGRADED: %s", job_id, "; ".join(missing))
                elif missing == [] and status == JobStatus.DEGRADED:
                    lifecycle.mark_inference_job_restored(session, job_id)
                    log.info("inference job %s RUNNING again: every service is ready", job_id)
                    continue
            degraded = degraded or bool(missing) or (status == JobStatus.DEGRADED and missing is None)
        return degraded

    # -- giving up ----------------------------------------------------------------------------------------
    def _stop_live(self, service_ids: list[str]) -> None:
        for service_id in service_ids:
            self.state.launcher.stop(service_id)

    def _error_sub_job(self, sub_id: str, reason: str) -> None:
        with session_scope(self.state.sessions) as session:
            lifecycle.mark_sub_train_job_errored(session, sub_id, reason)
            live = session.scalars(select(Service.id).where(Service.sub_train_job_id == sub_id,
                                                            Service.status.in_(ALIVE))).all()
        self._stop_live(live)
        log.error("sub-train-job %s ERRORED: %s", sub_id, reason)

    def _error_inference_job(self, job_id: str, reason: str) -> None:
        with session_scope(self.state.sessions) as session:
            lifecycle.mark_inference_job_errored(session, job_id, reason)
            live = session.scalars(select(Service.id).where(Service.inference_job_id == job_id,
                                                            Service.kind.in_(SERVING),
                                                            Service.status.in_(ALIVE))).all()
        self._stop_live(live)
        log.error("inference job %s ERRORED: %s", job_id, reason)
