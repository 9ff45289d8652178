"""What an inference job serves, as its predictor and its workers both load it: the registered model version
it serves (or, for a job deployed from a train job directly, its first deployed trial — the best), its template
row, knobs, parameters' key and metadata (input shape, classes) and profile.

During a rolling update the new workers load the version they are told (``EASEL_MODEL_VERSION_ID``), not the
job's current one."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from easel.blobstore import BlobStore
from easel.db.models import InferenceJob, Model, ModelVersion, SubTrainJob, Trial
from easel.db.session import session_scope
from easel.jobs.budget import InferenceJobBudget
from easel.jobs.profile import Profile
from easel.model.params import read_metadata

log = logging.getLogger("easel.jobs")

_MAX_HEADER_BYTES = 100 << 20


@dataclass
class Deployment:
    job_id: str
    trial_id: str
    n_workers: int
    model: Model
    knobs: dict[str, Any]
    params_key: str | None
    profile: Profile
    #: the parameters file's metadata (strings, JSON inside): ``input_shape``, ``classes``, ``arch``, ...
    metadata: dict[str, str] = field(default_factory=dict)
    #: the registered model version (id, number) served; None for a trial deployed directly
    model_version_id: str | None = None
    model_version: int | None = None

    @property
    def batch_size(self) -> int:
        return self.profile.batch_size

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        raw = self.metadata.get("input_shape")
        return tuple(int(d) for d in json.loads(raw)) if raw else None

    @property
    def classes(self) -> list[str] | None:
        raw = self.metadata.get("classes")
        return [str(c) for c in json.loads(raw)] if raw else None


def load_deployment(sessions: sessionmaker[Session], blobs: BlobStore, job_id: str,
                    version_id: str | None = None) -> Deployment:
    """The model version ``version_id`` (default: the one the job serves), else the job's first deployed trial.
    Raises ``ValueError`` for an unknown job or version, or a job that deploys nothing; unreadable parameter
    metadata is logged and left empty (instances then go unchecked)."""
    with session_scope(sessions) as session:
        job = session.get(InferenceJob, job_id)
        if job is None:
            raise ValueError(f"no inference job {job_id}")
        workers = InferenceJobBudget.from_stored(job.budget).WORKERS
        version_id = version_id or job.model_version_id
        if version_id is not None:
            version = session.get(ModelVersion, version_id)
            if version is None:
                raise ValueError(f"no model version {version_id}")
            model = session.get_one(Model, version.model_id)
            session.expunge(model)
            deployment = Deployment(job.id, version.trial_id, workers, model, dict(version.knobs), version.params_key,
                                    Profile.from_json(version.profile), model_version_id=version.id,
                                    model_version=version.number)
        else:
            trials = list(job.trial_ids.get("trials", []))
            if not trials:
                raise ValueError(f"inference job {job_id} deploys no trial")
            trial = session.get_one(Trial, trials[0])
            model = session.get_one(Model, session.get_one(SubTrainJob, trial.sub_train_job_id).model_id)
            session.expunge(model)
            deployment = Deployment(job.id, trial.id, workers, model, dict(trial.knobs), trial.params_key,
                                    Profile.from_json(trial.profile))
    if deployment.params_key:
        try:
            deployment.metadata = _read_metadata(blobs, deployment.params_key)
        except (ValueError, OSError) as error:
            log.warning("cannot read the parameters' metadata of trial %s: %s", deployment.trial_id, error)
    return deployment


def _read_metadata(blobs: BlobStore, key: str) -> dict[str, str]:
    """Only the safetensors header: an 8-byte length, then that much JSON."""
    with blobs.open(key) as handle:
        head = handle.read(8)
        size = int.from_bytes(head, "little") if len(head) == 8 else 0
        return read_metadata(head + handle.read(min(size, _MAX_HEADER_BYTES)))


__all__ = ["Deployment", "load_deployment"]
