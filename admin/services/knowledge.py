"""Knowledge-base growth: a template published (uploaded, or made visible) is tuned for the apps that opted in
(``auto_tune``) and whose data it fits, within their budgets.

The rule, by the state of the app's latest train job:

* **running** (STARTED/RUNNING) — the template joins that job as one more sub-job (its advisor and workers start
  at once, with the job's per-model trial budget), provided the job's time budget is not spent, it has room (at
  most ``MAX_CANDIDATES`` models) and the owner's quotas allow the workers;
* **finished** (COMPLETED: it spent its budget) — a new train job is queued: the app's next version, on the same
  training and validation data, with the finished job's budget (trials per model, workers, time, GPUs) for the
  new template alone, provided the owner's quotas allow it; its record (``candidates``) names the version it
  grew from (``grown_from_version``) and why the template fits;
* **stopped or errored** — nothing: its owner ended it, or it failed; a new version is theirs to start.

In every case the job must not train that template already and its owner must be able to use it (built-in,
PUBLIC, or their own). Each addition is recorded on the job (``candidates.added``, or the new job's
``candidates``) so the API shows it; an app passed over is logged with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.services import orchestration
from admin.services.candidates import MAX_CANDIDATES, fit_reason
from admin.services.dataset_schema import dataset_schema
from admin.services.quotas import QuotaExceeded, check_quotas
from admin.state import AdminState
from easel.db.enums import AccessRight, JobStatus, ModelSource, UserRole
from easel.db.models import App, Dataset, Model, SubTrainJob, TrainJob, User
from easel.db.session import session_scope
from easel.jobs import TrainBudget, lifecycle

log = logging.getLogger("admin.knowledge")

ADMIN_ROLES = frozenset({UserRole.SUPERADMIN, UserRole.ADMIN})


@dataclass(frozen=True)
class Outcome:
    """What publishing a template did for one opted-in app."""

    app: str
    added: bool
    reason: str
    sub_train_job_id: str | None = None  # a sub-job added to the running job
    train_job_id: str | None = None  # a new job queued after the finished one


def usable_by(model: Model, user: User) -> bool:
    return (model.source == ModelSource.BUILTIN or model.access_right == AccessRight.PUBLIC
            or model.owner_id == user.id or user.role in ADMIN_ROLES)


def _latest_job(db: Session, app: str) -> TrainJob | None:
    return db.scalars(select(TrainJob).where(TrainJob.app == app).order_by(TrainJob.app_version.desc())
                      .limit(1).with_for_update()).first()


def _consider(state: AdminState, db: Session, model: Model, app: str) -> Outcome:
    """Add ``model`` to ``app``'s latest train job if it may (committed); the outcome either way."""
    job = _latest_job(db, app)
    if job is None:
        return Outcome(app, False, "the app has no train job")
    finished = job.status == JobStatus.COMPLETED
    if not finished and job.status not in lifecycle.LIVE_JOB:
        return Outcome(app, False, f"its latest train job v{job.app_version} is {job.status.value}: its owner "
                       "ended it (or it failed), so nothing is queued for it")
    if not usable_by(model, db.get_one(User, job.owner_id)):
        return Outcome(app, False, "its owner cannot use the template")
    if any(sub.model_id == model.id for sub in job.sub_train_jobs):
        return Outcome(app, False, f"train job v{job.app_version} trains it already")
    train_data = db.get_one(Dataset, job.train_dataset_id)
    fits, reason = fit_reason(model, job.task, dataset_schema(train_data))
    if not fits:
        return Outcome(app, False, reason)
    if finished:
        return _queue_next_version(state, db, model, job, train_data, reason)
    budget = TrainBudget.from_stored(job.budget)
    left_s = budget.seconds - (datetime.now(UTC) - job.created_at).total_seconds()
    if left_s <= 0:
        return Outcome(app, False, f"train job v{job.app_version}'s time budget is spent")
    if len(job.sub_train_jobs) >= MAX_CANDIDATES:
        return Outcome(app, False, f"train job v{job.app_version} trains {MAX_CANDIDATES} models already")
    try:
        check_quotas(db, state.settings, job.owner_id, train_workers=budget.WORKERS)
    except QuotaExceeded as error:
        return Outcome(app, False, str(error))
    sub = lifecycle.new_sub_train_job(job.id, model.id)
    db.add(sub)
    db.flush()
    record = dict(job.candidates or {"chosen": [], "passed_over": []})
    record["added"] = [*record.get("added", []), {
        "model_id": model.id, "name": model.name, "sub_train_job_id": sub.id,
        "at": datetime.now(UTC).isoformat(), "reason": f"published while the job ran ({left_s:.0f} s of its time "
        f"budget left); {reason}"}]
    job.candidates = record
    db.commit()
    return Outcome(app, True, reason, sub.id)


def _queue_next_version(state: AdminState, db: Session, model: Model, job: TrainJob, train_data: Dataset,
                        reason: str) -> Outcome:
    """The app's next version: ``model`` alone, on ``job``'s data with ``job``'s budget (committed)."""
    budget = TrainBudget.from_stored(job.budget)
    pooled = state.settings.train_pool_workers > 0  # the pool's workers are lent, not owned (as on create)
    try:
        check_quotas(db, state.settings, job.owner_id, train_workers=0 if pooled else budget.WORKERS)
    except QuotaExceeded as error:
        return Outcome(app=job.app, added=False, reason=str(error))
    why = f"published after v{job.app_version} finished; {reason}"
    record = {
        "schema": dataset_schema(train_data).to_json(), "schema_status": train_data.schema_status,
        "dataset_id": train_data.id, "chosen": [{"model_id": model.id, "name": model.name, "reason": why}],
        "passed_over": [], "passed_over_total": 0, "added": [], "grown_from_version": job.app_version,
    }
    new = lifecycle.new_train_job(
        [model.id], app=job.app, app_version=job.app_version + 1, task=job.task, budget=dict(job.budget),
        train_dataset_id=job.train_dataset_id, val_dataset_id=job.val_dataset_id, owner_id=job.owner_id,
        candidates=record,
    )
    db.add(new)
    db.commit()  # the latest version is locked (FOR UPDATE) until here: no other growth takes this number
    return Outcome(job.app, True, why, train_job_id=new.id)


def tune_published_template(state: AdminState, model_id: str) -> list[Outcome]:
    """Queue the template ``model_id`` for every opted-in app it fits; start the added sub-jobs' services.
    A template that declares no fit is never queued."""
    outcomes: list[Outcome] = []
    with session_scope(state.sessions) as db:
        model = db.get(Model, model_id)
        if model is None or model.fits is None:
            return []
        apps = list(db.scalars(select(App.name).where(App.auto_tune).order_by(App.name)))
        for app in apps:
            try:
                outcome = _consider(state, db, model, app)
            except Exception as error:  # noqa: BLE001 - one app's failure neither fails the upload nor the others
                db.rollback()
                log.exception("could not consider template %s for app %s", model.name, app)
                outcome = Outcome(app, False, f"failed: {type(error).__name__}: {error}")
            outcomes.append(outcome)
            log.info("template %s for app %s: %s (%s)", model.name, app, "queued" if outcome.added else "not queued",
                     outcome.reason)
    for outcome in outcomes:
        if outcome.sub_train_job_id is not None:
            _launch(state, outcome.sub_train_job_id)
        if outcome.train_job_id is not None:
            _launch_job(state, outcome.train_job_id)
    return outcomes


def _launch_job(state: AdminState, train_job_id: str) -> None:
    """Start a queued job's services; a failed start marks that job ERRORED (logged), nothing else."""
    try:
        orchestration.launch_train_job(state, train_job_id)
    except Exception:  # noqa: BLE001 - the upload that published the template succeeded regardless
        log.exception("could not start the services of train job %s (knowledge-base growth)", train_job_id)


def _launch(state: AdminState, sub_id: str) -> None:
    """Start the added sub-job's advisor and workers (only the advisor with the shared pool); a failed start ends only that sub-job (ERRORED)."""
    with session_scope(state.sessions) as db:
        job = db.get_one(TrainJob, db.get_one(SubTrainJob, sub_id).train_job_id)
        pooled = state.settings.train_pool_workers > 0  # with the shared pool, only its advisor (it bids)
        specs = [spec for spec in orchestration.train_job_specs(job, pool=pooled) if spec.sub_train_job_id == sub_id]
    try:
        orchestration.start_services(state, specs)
    except Exception as error:  # noqa: BLE001 - the job's other models go on
        log.exception("could not start the services of added sub-train-job %s", sub_id)
        with session_scope(state.sessions) as db:
            lifecycle.mark_sub_train_job_errored(db, sub_id, f"its services could not start: {error}")


__all__ = ["Outcome", "tune_published_template", "usable_by"]
