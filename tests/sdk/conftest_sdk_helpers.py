"""Helpers for the SDK tests (imported as ``conftest_sdk_helpers``): play the train workers' part."""

from __future__ import annotations

from sqlalchemy import select

from easel.db.enums import JobStatus, TrialStatus
from easel.db.models import TrainJob, Trial, TrialLog
from easel.db.session import make_engine, make_sessionmaker, session_scope
from easel.settings import Settings


def finish_train_job(settings: Settings, app: str, version: int) -> list[str]:
    """Two completed trials with (tiny safetensors) parameters on the first model, then the job COMPLETED."""
    engine = make_engine(settings.resolved_database_url)
    ids = []
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            job = session.scalars(select(TrainJob).where(TrainJob.app == app, TrainJob.app_version == version)).one()
            sub = sorted(job.sub_train_jobs, key=lambda s: s.created_at)[0]
            for no, score in ((1, 0.7), (2, 0.9)):
                key = f"params/{sub.id}/{no}.safetensors"
                path = settings.blob_dir / key
                path.parent.mkdir(parents=True, exist_ok=True)
                header = b'{"__metadata__":{"no":"%d"}}' % no
                path.write_bytes(len(header).to_bytes(8, "little") + header)
                trial = Trial(sub_train_job_id=sub.id, no=no, knobs={"lr": no / 10}, status=TrialStatus.COMPLETED,
                              score=score, params_key=key, attempts=1)
                session.add(trial)
                session.flush()
                session.add(TrialLog(trial_id=trial.id, message=f"trial {no} done", metrics={"score": score}))
                ids.append(trial.id)
            job.status = JobStatus.COMPLETED
    finally:
        engine.dispose()
    return ids
