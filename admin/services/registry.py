"""The model registry: register a trial as an app's next version, move versions between stages, and the
promotion gate that decides whether a version may become ``production``.

The gate measures the candidate and the current production version on the held-out dataset the caller
names — in a child process (``python -m inference_worker.evaluate``: admin runs no template code) — and
applies :func:`easel.promotion_gate.judge`. Its verdict is stored with every number, whether it lets the
version through or not; an admin's override is stored as one. Stage moves go through
:func:`easel.jobs.lifecycle.move_stage`, which appends to the version's history (never rewritten).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from admin.services.orchestration import PROJECT_ROOT
from admin.state import AdminState
from easel.db.enums import ServiceKind, Stage
from easel.db.models import ModelVersion, PromotionVerdict, SubTrainJob, TrainJob, Trial
from easel.jobs import lifecycle
from easel.launcher.service_env import inherited_env, settings_env
from easel.promotion_gate import Measured, judge

log = logging.getLogger("admin.registry")

EVALUATE_MODULE = "inference_worker.evaluate"


class GateError(RuntimeError):
    """The gate could not measure the versions (the reason says why)."""


def next_number(db: Session, app: str) -> int:
    return (db.scalar(select(func.max(ModelVersion.number)).where(ModelVersion.app == app)) or 0) + 1


def register(db: Session, app: str, trial: Trial, by_user_id: str) -> ModelVersion:
    """The trial (completed, with parameters) as the app's next version, in ``staging``."""
    sub = db.get_one(SubTrainJob, trial.sub_train_job_id)
    train_job = db.get_one(TrainJob, sub.train_job_id)
    assert trial.params_key is not None
    version = lifecycle.register_version(
        by_user_id, reason=f"registered from trial {trial.no} of {train_job.app} v{train_job.app_version}",
        app=app, number=next_number(db, app), trial_id=trial.id, model_id=sub.model_id,
        train_dataset_id=train_job.train_dataset_id, knobs=dict(trial.knobs), params_key=trial.params_key,
        profile=dict(trial.profile or {}))
    db.add(version)
    db.flush()
    return version


def production_version(db: Session, app: str) -> ModelVersion | None:
    return db.scalars(select(ModelVersion).where(ModelVersion.app == app,
                                                 ModelVersion.stage == Stage.PRODUCTION)).first()


def measure(state: AdminState, version_ids: list[str], dataset_id: str) -> dict[str, Measured]:
    """Each version's accuracy and batch time per rate on the dataset, from the evaluation child."""
    argv = [sys.executable, "-m", EVALUATE_MODULE, "--dataset-id", dataset_id]
    for version_id in version_ids:
        argv += ["--version-id", version_id]
    # The child runs template code: it gets the inference role's database URL, none of admin's secrets.
    env = {**inherited_env(os.environ), **settings_env(state.settings, ServiceKind.INFERENCE_WORKER),
           "PYTHONPATH": PROJECT_ROOT}
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=PROJECT_ROOT,
                              timeout=state.settings.promotion_eval_timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise GateError(f"measuring the versions took longer than {state.settings.promotion_eval_timeout_s:g} s") \
            from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise GateError(f"could not measure the versions: {reason}")
    results = json.loads(done.stdout)["versions"]
    return {version_id: Measured.from_json(results[version_id]) for version_id in version_ids}


def gate(state: AdminState, db: Session, candidate: ModelVersion, dataset_id: str | None, tolerance: float,
         override: bool, by_user_id: str) -> PromotionVerdict:
    """Judge ``candidate`` against the app's production version on ``dataset_id`` (not measured when an
    override names no dataset) and record the verdict."""
    current = production_version(db, candidate.app)
    numbers: dict[str, Any] = {}
    passed: bool | None = None
    if dataset_id is not None:
        ids = [candidate.id] + ([current.id] if current is not None else [])
        measured = measure(state, ids, dataset_id)
        verdict = judge(measured[candidate.id], measured.get(current.id) if current else None, tolerance)
        passed = verdict.passed
        numbers = {**verdict.to_json(), "candidate": _plain(measured[candidate.id]),
                   "production": _plain(measured[current.id]) if current else None,
                   "production_number": current.number if current else None}
    row = PromotionVerdict(version_id=candidate.id, against_version_id=current.id if current else None,
                           dataset_id=dataset_id, tolerance=tolerance, passed=passed, overridden=override,
                           numbers=numbers, by_user_id=by_user_id)
    db.add(row)
    db.flush()
    return row


def _plain(measured: Measured) -> dict[str, list[float]]:
    return {"rates": list(measured.rates), "accuracy": list(measured.accuracy),
            "batch_time_s": list(measured.batch_time_s)}


__all__ = ["GateError", "gate", "measure", "next_number", "production_version", "register"]
