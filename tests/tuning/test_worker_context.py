"""A trial's logs: a diverged trial's NaN loss is stored as null (JSON has no NaN; PostgreSQL refused the whole
log line, and the trial with it)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from test_tuning_e2e import make_job

from easel.db.models import Trial, TrialLog
from easel.db.session import session_scope
from easel.jobs import lifecycle
from easel.redis_client import make_redis
from easel.settings import Settings
from easel.tuning import TuningChannel
from train_worker.context import WorkerContext


def test_non_finite_metrics_are_logged_as_null(settings: Settings, sessions: sessionmaker[Session]) -> None:
    sub_id = make_job(settings, sessions, trials=1)
    with session_scope(sessions) as session:
        trial = lifecycle.new_trial(sub_id, 1, {"x": 0.5})
        session.add(trial)
        session.flush()
        trial_id = trial.id
    channel = TuningChannel(make_redis(settings, decode_responses=True), sub_id)
    context = WorkerContext(sessions, channel, trial_id, 1, pruner=None)
    context.log("epoch 1: loss nan", epoch=1, loss=float("nan"), accuracy=float("inf"), held_out=0.5)
    with session_scope(sessions) as session:
        logs = session.scalars(select(TrialLog).where(TrialLog.trial_id == trial_id)).all()
        assert [log.metrics for log in logs] == [{"epoch": 1.0, "loss": None, "accuracy": None, "held_out": 0.5}]
        assert session.get_one(Trial, trial_id).status.value == "PENDING"
