"""Jobs and trials for the hopping tests, on the session's real PostgreSQL and blob folder (a module of its own:
``conftest`` names clash when several test folders run together)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from easel.blobstore import LocalBlobStore
from easel.db.enums import DatasetFormat, JobStatus, ModelSource, UserRole
from easel.db.models import Dataset, Model, SubTrainJob, TrainJob, Trial, User
from easel.db.session import session_scope
from easel.jobs import lifecycle
from easel.model import knob_config_to_dict
from easel.settings import Settings

HERE = Path(__file__).parent


def make_sub_job(settings: Settings, sessions: sessionmaker[Session], *, template: type, dataset: bytes,
                 builtin: bool = False, budget: dict | None = None) -> str:
    """A sub-train-job of ``template`` (a built-in's class, or a class of ``unit_template.py`` uploaded)."""
    blobs = LocalBlobStore(settings.blob_dir)
    suffix = os.urandom(4).hex()
    blobs.put_bytes(f"datasets/{suffix}.npz", dataset)
    module_ref = template.__module__
    if not builtin:
        module_ref = f"models/units-{suffix}.py"
        blobs.put_bytes(module_ref, (HERE / "unit_template.py").read_bytes())
    with session_scope(sessions) as session:
        user = User(email=f"hopper-{suffix}@example.com", password_hash="x", role=UserRole.MODEL_DEVELOPER)
        session.add(user)
        session.flush()
        data = Dataset(name="d", task="TEST", format=DatasetFormat.NPZ, blob_key=f"datasets/{suffix}.npz",
                       size_bytes=len(dataset), num_samples=1, num_classes=1, owner_id=user.id)
        model = Model(name=f"units-{suffix}", task="TEST",
                      source=ModelSource.BUILTIN if builtin else ModelSource.UPLOADED,
                      model_class=template.__name__, module_ref=module_ref,
                      knob_config=knob_config_to_dict(template.get_knob_config()), owner_id=user.id)
        session.add_all([data, model])
        session.flush()
        job = TrainJob(app=f"app-{suffix}", app_version=1, task="TEST", status=JobStatus.STARTED,
                       budget={"MODEL_TRIAL_COUNT": 2, "TIME_HOURS": 1, **(budget or {})},
                       train_dataset_id=data.id, val_dataset_id=data.id, owner_id=user.id)
        session.add(job)
        session.flush()
        sub = SubTrainJob(train_job_id=job.id, model_id=model.id, status=JobStatus.STARTED)
        session.add(sub)
        session.flush()
        return sub.id


def add_trial(sessions: sessionmaker[Session], sub_id: str, no: int, knobs: dict) -> str:
    with session_scope(sessions) as session:
        trial = lifecycle.new_trial(sub_id, no, knobs)
        session.add(trial)
        session.flush()
        return trial.id


def trial_row(sessions: sessionmaker[Session], trial_id: str) -> Trial:
    with session_scope(sessions) as session:
        return session.get_one(Trial, trial_id)


def drop_job(sessions: sessionmaker[Session], sub_id: str) -> None:
    """Delete a sub-job made by :func:`make_sub_job` with every row it made (a built-in-sourced ``models`` row
    would otherwise outlive the suites' database resets, which keep built-ins)."""
    from sqlalchemy import delete, select

    from easel.db.models import TrialLog

    with session_scope(sessions) as session:
        sub = session.get_one(SubTrainJob, sub_id)
        job = session.get_one(TrainJob, sub.train_job_id)
        model = session.get_one(Model, sub.model_id)
        trial_ids = list(session.scalars(select(Trial.id).where(Trial.sub_train_job_id == sub_id)))
        session.execute(delete(TrialLog).where(TrialLog.trial_id.in_(trial_ids)))
        session.execute(delete(Trial).where(Trial.sub_train_job_id == sub_id))
        session.execute(delete(SubTrainJob).where(SubTrainJob.id == sub_id))
        session.execute(delete(TrainJob).where(TrainJob.id == job.id))
        session.execute(delete(Model).where(Model.id == model.id))
        session.execute(delete(Dataset).where(Dataset.id.in_([job.train_dataset_id, job.val_dataset_id])))
        session.execute(delete(User).where(User.id == job.owner_id))
