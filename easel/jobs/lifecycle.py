"""Every status change of train jobs, sub-train-jobs, trials, inference jobs and services, by name.

These functions are the only code that writes a ``status`` column (a test greps the tree for others).
Each takes the caller's session and leaves the commit to it. Transitions between processes (a worker
claiming a trial, the advisor re-issuing one, a job stopped while its advisor finishes) are conditional
UPDATEs over the allowed from-states (:mod:`easel.jobs.states`), so the loser of a race changes nothing
and learns it from the return value; a move of a loaded row that the life cycle forbids raises
:class:`~easel.jobs.states.IllegalTransition`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from easel.db.enums import ExplanationStatus, JobStatus, ServiceStatus, Stage, TrialStatus, UpdateStatus
from easel.db.models import (
    Explanation,
    InferenceJob,
    InferenceJobUpdate,
    ModelVersion,
    Service,
    StageChange,
    SubTrainJob,
    TrainJob,
    Trial,
)
from easel.jobs.states import (
    EXPLANATION,
    INFERENCE_JOB,
    INFERENCE_JOB_UPDATE,
    SERVICE,
    STAGE_EDGES,
    SUB_TRAIN_JOB,
    TRAIN_JOB,
    TRIAL,
    IllegalTransition,
)

LIVE_JOB = (JobStatus.STARTED, JobStatus.RUNNING)
LIVE_INFERENCE_JOB = (*LIVE_JOB, JobStatus.DEGRADED)
LIVE_SERVICE = (ServiceStatus.STARTED, ServiceStatus.RUNNING)
LIVE_EXPLANATION = (ExplanationStatus.PENDING, ExplanationStatus.RUNNING)
FINISHED_EXPLANATION = (ExplanationStatus.COMPLETED, ExplanationStatus.ERRORED)
UNFINISHED_TRIAL = (TrialStatus.PENDING, TrialStatus.RUNNING)
FINISHED_TRIAL = (TrialStatus.COMPLETED, TrialStatus.ERRORED, TrialStatus.TERMINATED)


# -- train jobs and their sub-jobs --------------------------------------------------------------------
def new_train_job(model_ids: list[str], **fields: Any) -> TrainJob:
    """A train job (``STARTED``) with one ``STARTED`` sub-train-job per model."""
    job = TrainJob(status=TRAIN_JOB.initial, **fields)
    job.sub_train_jobs = [SubTrainJob(model_id=m, status=SUB_TRAIN_JOB.initial) for m in model_ids]
    return job


def new_sub_train_job(train_job_id: str, model_id: str) -> SubTrainJob:
    """One more model for a live train job (a template published while it runs): a ``STARTED`` sub-job."""
    return SubTrainJob(train_job_id=train_job_id, model_id=model_id, status=SUB_TRAIN_JOB.initial)


def mark_sub_train_job_running(session: Session, sub_id: str) -> bool:
    """The advisor took the sub-job up: it (and its train job) become RUNNING. False when the sub-job has
    ended meanwhile (admin stopped it): nothing changes then."""
    sub = session.get_one(SubTrainJob, sub_id)
    SUB_TRAIN_JOB.update(session, SubTrainJob, [SubTrainJob.id == sub_id], JobStatus.RUNNING)
    session.refresh(sub)
    if sub.status not in LIVE_JOB:
        return False
    TRAIN_JOB.update(session, TrainJob, [TrainJob.id == sub.train_job_id], JobStatus.RUNNING)
    return True


def mark_sub_train_job_completed(session: Session, sub_id: str) -> bool:
    """The advisor used up the sub-job's budget; the train job completes with its last live sub-job.
    False when the sub-job had already ended (stopped or errored): that status is kept."""
    return _end_sub_train_job(session, sub_id, JobStatus.COMPLETED)


def mark_sub_train_job_errored(session: Session, sub_id: str, reason: str | None = None) -> bool:
    """The sub-job cannot go on (its advisor keeps dying, or no train worker is left: the supervisor's
    restart budget is spent); the train job errs when none is left live. ``reason`` is kept on both."""
    return _end_sub_train_job(session, sub_id, JobStatus.ERRORED, reason)


def _end_sub_train_job(session: Session, sub_id: str, to: JobStatus, reason: str | None = None) -> bool:
    sub = session.get_one(SubTrainJob, sub_id)
    values = {"error": reason} if reason else None
    moved = SUB_TRAIN_JOB.update(session, SubTrainJob, [SubTrainJob.id == sub_id], to, values) == 1
    if not moved:
        return False
    live = session.scalar(select(func.count()).select_from(SubTrainJob).where(
        SubTrainJob.train_job_id == sub.train_job_id, SubTrainJob.status.in_(LIVE_JOB)))
    if not live:
        TRAIN_JOB.update(session, TrainJob, [TrainJob.id == sub.train_job_id], to, values)
    return True


def mark_train_job_stopped(session: Session, job: TrainJob) -> bool:
    """A user stopped the job: it and its live sub-jobs become STOPPED, its unfinished trials TERMINATED.
    False when the job had already ended."""
    if job.status not in LIVE_JOB:
        return False
    now = datetime.now(UTC)
    sub_ids = [s.id for s in job.sub_train_jobs]
    if sub_ids:
        SUB_TRAIN_JOB.update(session, SubTrainJob, [SubTrainJob.id.in_(sub_ids)], JobStatus.STOPPED,
                             {"stopped_at": now})
        TRIAL.update(session, Trial, [Trial.sub_train_job_id.in_(sub_ids)], TrialStatus.TERMINATED,
                     {"stopped_at": now})
    TRAIN_JOB.move(job, JobStatus.STOPPED, now)
    return True


def mark_train_job_errored(session: Session, job_id: str, reason: str | None = None) -> None:
    """Its services could not be started: the job and its live sub-jobs are ERRORED (with ``reason``)."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {"stopped_at": now, **({"error": reason} if reason else {})}
    SUB_TRAIN_JOB.update(session, SubTrainJob, [SubTrainJob.train_job_id == job_id], JobStatus.ERRORED, values)
    TRAIN_JOB.update(session, TrainJob, [TrainJob.id == job_id], JobStatus.ERRORED, values)


# -- trials ---------------------------------------------------------------------------------------------
def new_trial(sub_train_job_id: str, no: int, knobs: dict[str, Any]) -> Trial:
    """A proposed trial, PENDING on its first attempt."""
    return Trial(sub_train_job_id=sub_train_job_id, no=no, knobs=knobs, status=TRIAL.initial, attempts=1)


def claim_trial(session: Session, trial_id: str, attempt: int, worker_service_id: str | None) -> bool:
    """PENDING → RUNNING for this attempt only (a re-issued trial belongs to its newest attempt)."""
    return TRIAL.update(session, Trial, [Trial.id == trial_id, Trial.attempts == attempt], TrialStatus.RUNNING,
                        {"worker_service_id": worker_service_id, "started_at": datetime.now(UTC)}) == 1


def hop_trial(session: Session, trial_id: str, attempt: int, worker_service_id: str | None) -> bool:
    """MOP mode: a worker takes the next unit of this attempt — PENDING → RUNNING (its first unit, or the first
    after a re-issue), or RUNNING stays RUNNING, now on this worker. False when the attempt is not current."""
    if claim_trial(session, trial_id, attempt, worker_service_id):
        return True
    statement = (update(Trial).where(Trial.id == trial_id, Trial.attempts == attempt,
                                     Trial.status == TrialStatus.RUNNING)
                 .values(worker_service_id=worker_service_id))
    return session.execute(statement).rowcount == 1


def record_trial_result(session: Session, trial_id: str, attempt: int, to: TrialStatus, **values: Any) -> bool:
    """The worker running this attempt finished it: RUNNING → COMPLETED (with results) or ERRORED (with the
    traceback). False when the attempt is no longer the trial's running one."""
    return TRIAL.update(session, Trial, [Trial.id == trial_id, Trial.attempts == attempt], to, values,
                        sources=(TrialStatus.RUNNING,)) == 1


def record_trial_progress(session: Session, trial_id: str, attempt: int, progress: dict[str, Any]) -> bool:
    """The worker running this attempt finished one more unit (no status change). False when the attempt is
    no longer the trial's running one: a worker presumed dead writes nothing."""
    statement = (update(Trial).where(Trial.id == trial_id, Trial.attempts == attempt,
                                     Trial.status == TrialStatus.RUNNING).values(progress=progress))
    return session.execute(statement).rowcount == 1


def reissue_trial(session: Session, trial_id: str, attempt: int) -> int | None:
    """Back to PENDING with one more attempt; the new attempt number, or None when the trial finished (or
    moved to another attempt) meanwhile — a result that lands while the advisor decides is never lost."""
    statement = TRIAL.statement(Trial, [Trial.id == trial_id, Trial.attempts == attempt], TrialStatus.PENDING,
                                {"attempts": Trial.attempts + 1, "worker_service_id": None})
    return session.execute(statement.returning(Trial.attempts)).scalar_one_or_none()


def end_trial(session: Session, trial_id: str, to: TrialStatus, error: str | None = None) -> bool:
    """The advisor ends an unfinished trial: TERMINATED (budget used up) or ERRORED (every attempt lost)."""
    return TRIAL.update(session, Trial, [Trial.id == trial_id], to, {"error": error}) == 1


# -- inference jobs -----------------------------------------------------------------------------------
def new_inference_job(**fields: Any) -> InferenceJob:
    return InferenceJob(status=INFERENCE_JOB.initial, **fields)


def mark_inference_job_running(session: Session, job_id: str) -> bool:
    """Its predictor saw every worker ready. False if it was not STARTED (already running, degraded, or
    stopped)."""
    return INFERENCE_JOB.update(session, InferenceJob, [InferenceJob.id == job_id], JobStatus.RUNNING,
                                sources=(JobStatus.STARTED,)) == 1


def mark_inference_job_degraded(session: Session, job_id: str, reason: str) -> bool:
    """RUNNING → DEGRADED: it serves with fewer live workers than it asked for (or without its predictor)
    while the supervisor relaunches them; ``reason`` says what is missing. False if it was not RUNNING."""
    return INFERENCE_JOB.update(session, InferenceJob, [InferenceJob.id == job_id], JobStatus.DEGRADED,
                                {"error": reason}) == 1


def mark_inference_job_restored(session: Session, job_id: str) -> bool:
    """DEGRADED → RUNNING: every service it asked for runs again. False if it was not DEGRADED."""
    return INFERENCE_JOB.update(session, InferenceJob, [InferenceJob.id == job_id], JobStatus.RUNNING,
                                {"error": None}, sources=(JobStatus.DEGRADED,)) == 1


def mark_inference_job_stopped(session: Session, job: InferenceJob) -> bool:
    """A user stopped it (after its services drained). False when it had already ended."""
    if job.status not in LIVE_INFERENCE_JOB:
        return False
    INFERENCE_JOB.move(job, JobStatus.STOPPED)
    return True


def mark_inference_job_errored(session: Session, job_id: str, reason: str | None = None) -> None:
    """Its services could not be started, or the supervisor gave up relaunching them (``reason``)."""
    INFERENCE_JOB.update(session, InferenceJob, [InferenceJob.id == job_id], JobStatus.ERRORED,
                         {"error": reason} if reason else None)


def stop_live_jobs(session: Session) -> int:
    """Every live train and inference job becomes STOPPED (``easel down --force``, after their services were
    stopped); unfinished trials are TERMINATED. Returns how many jobs were stopped."""
    stopped = 0
    for job in session.scalars(select(TrainJob).where(TrainJob.status.in_(LIVE_JOB))):
        stopped += mark_train_job_stopped(session, job)
    for inference in session.scalars(select(InferenceJob).where(InferenceJob.status.in_(LIVE_INFERENCE_JOB))):
        stopped += mark_inference_job_stopped(session, inference)
    return stopped


# -- services -------------------------------------------------------------------------------------------
def new_service(**fields: Any) -> Service:
    """A service as asked for, before its process or pod exists (STARTED)."""
    return Service(status=SERVICE.initial, **fields)


def mark_service_running(service: Service, **fields: Any) -> None:
    """Its process or pod exists (``fields``: pid, log path, ...)."""
    SERVICE.move(service, ServiceStatus.RUNNING)
    for name, value in fields.items():
        setattr(service, name, value)


def mark_service_exited(service: Service, exit_code: int | None, *, stopped: bool = False,
                        to: ServiceStatus | None = None) -> None:
    """Its process ended: STOPPED when asked to stop or on exit code 0, else ERRORED (it died) — or ``to``,
    when the cluster says which (a pod's phase)."""
    service.exit_code = exit_code
    SERVICE.move(service, to or (ServiceStatus.STOPPED if stopped or exit_code == 0 else ServiceStatus.ERRORED))


def record_service_exit(session: Session, service_id: str, exit_code: int | None, *, stopped: bool = False) -> bool:
    """A watcher saw the process gone: as :func:`mark_service_exited`, but only if the row is still live in the
    database — a stop committed meanwhile (another session) is not overwritten with ERRORED. False if it was not."""
    to = ServiceStatus.STOPPED if stopped or exit_code == 0 else ServiceStatus.ERRORED
    return SERVICE.update(session, Service, [Service.id == service_id], to, {"exit_code": exit_code},
                          sources=LIVE_SERVICE) == 1


def mark_service_failed(service: Service) -> None:
    """Its process could not be started at all."""
    SERVICE.move(service, ServiceStatus.ERRORED)


def mark_service_exited_cleanly(session: Session, service_id: str) -> bool:
    """The service itself says it is ending normally (STOPPED, exit code 0), so an admin that did not start
    it — one restarted since — can tell a clean exit from a crash. False if it was not live."""
    return SERVICE.update(session, Service, [Service.id == service_id], ServiceStatus.STOPPED,
                          {"exit_code": 0}) == 1


# -- explanations ---------------------------------------------------------------------------------------
def new_explanation(**fields: Any) -> Explanation:
    """An explanation asked for, not yet taken by an explainer (PENDING)."""
    return Explanation(status=EXPLANATION.initial, **fields)


def claim_explanation(session: Session, explanation_id: str, max_attempts: int) -> bool:
    """An explainer takes it for one more attempt (PENDING, or RUNNING on an explainer that died → RUNNING).
    False when it has ended or used up ``max_attempts``."""
    return EXPLANATION.update(session, Explanation, [Explanation.id == explanation_id,
                                                     Explanation.attempts < max_attempts],
                              ExplanationStatus.RUNNING,
                              {"attempts": Explanation.attempts + 1, "started_at": datetime.now(UTC)}) == 1


def complete_explanation(session: Session, explanation_id: str, **results: Any) -> bool:
    """RUNNING → COMPLETED with its results; False when it had ended meanwhile (e.g. timed out)."""
    return EXPLANATION.update(session, Explanation, [Explanation.id == explanation_id], ExplanationStatus.COMPLETED,
                              {**results, "finished_at": datetime.now(UTC)}) == 1


def fail_explanation(session: Session, explanation_id: str, reason: str) -> bool:
    """PENDING/RUNNING → ERRORED with the reason; False when it had already ended."""
    return EXPLANATION.update(session, Explanation, [Explanation.id == explanation_id], ExplanationStatus.ERRORED,
                              {"error": reason[:4000], "finished_at": datetime.now(UTC)}) == 1




# -- inference job updates (rolling updates to another model version) ---------------------------------------
def new_inference_job_update(**fields: Any) -> InferenceJobUpdate:
    return InferenceJobUpdate(status=INFERENCE_JOB_UPDATE.initial, **fields)


def complete_inference_job_update(session: Session, update_id: str) -> bool:
    """RUNNING → COMPLETED; False when it had already ended."""
    return INFERENCE_JOB_UPDATE.update(session, InferenceJobUpdate, [InferenceJobUpdate.id == update_id],
                                       UpdateStatus.COMPLETED) == 1


def fail_inference_job_update(session: Session, update_id: str, reason: str) -> bool:
    """RUNNING → ERRORED with the reason; False when it had already ended."""
    return INFERENCE_JOB_UPDATE.update(session, InferenceJobUpdate, [InferenceJobUpdate.id == update_id],
                                       UpdateStatus.ERRORED, {"error": reason[:4000]}) == 1


# -- model version stages ---------------------------------------------------------------------------------
def register_version(by_user_id: str, reason: str = "registered", **fields: Any) -> ModelVersion:
    """A new version in ``staging``, its history opened with the registration."""
    version = ModelVersion(stage=Stage.STAGING, owner_id=by_user_id, **fields)
    version.history = [StageChange(from_stage=None, to_stage=Stage.STAGING, by_user_id=by_user_id, reason=reason)]
    return version


def move_stage(session: Session, version: ModelVersion, to: Stage, by_user_id: str, reason: str,
               verdict_id: str | None = None) -> StageChange:
    """Move ``version`` (row-locked by the caller) to ``to`` and append the change to its history. A move to
    ``production`` archives the app's current production version first (its own history row says why)."""
    if version.stage not in STAGE_EDGES[to]:
        raise IllegalTransition(f"version {version.app} #{version.number} is already {version.stage}")
    if to == Stage.PRODUCTION:
        current = session.scalars(select(ModelVersion).where(
            ModelVersion.app == version.app, ModelVersion.stage == Stage.PRODUCTION).with_for_update()).first()
        if current is not None:
            session.add(StageChange(version_id=current.id, from_stage=current.stage, to_stage=Stage.ARCHIVED,
                                    by_user_id=by_user_id, reason=f"superseded by #{version.number}"))
            current.stage = Stage.ARCHIVED
            session.flush()  # the one-production index must see it archived before the new one arrives
    change = StageChange(version_id=version.id, from_stage=version.stage, to_stage=to, by_user_id=by_user_id,
                         reason=reason, verdict_id=verdict_id)
    session.add(change)
    version.stage = to
    session.flush()
    return change


__all__ = [
    "FINISHED_EXPLANATION", "FINISHED_TRIAL", "LIVE_EXPLANATION", "LIVE_INFERENCE_JOB", "LIVE_JOB", "LIVE_SERVICE",
    "UNFINISHED_TRIAL", "claim_explanation", "claim_trial", "complete_explanation", "complete_inference_job_update",
    "end_trial", "fail_explanation", "fail_inference_job_update", "move_stage", "new_inference_job_update",
    "register_version",
    "mark_inference_job_degraded", "mark_inference_job_errored", "mark_inference_job_restored",
    "mark_inference_job_running", "mark_inference_job_stopped", "mark_service_exited",
    "mark_service_exited_cleanly", "mark_service_failed", "mark_service_running", "mark_sub_train_job_completed",
    "mark_sub_train_job_errored", "mark_sub_train_job_running", "mark_train_job_errored",
    "mark_train_job_stopped", "hop_trial", "new_inference_job", "new_service", "new_sub_train_job",
    "new_train_job", "new_trial",
    "record_trial_progress", "record_trial_result", "reissue_trial", "stop_live_jobs",
]
