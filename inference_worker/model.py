"""The deployed model inside a worker: loaded once (template class, knobs, parameters), then asked to predict
mini-batches at any slice rate. Switching width costs nothing: a sliced network runs its first ``r`` share of
channels, so every rate uses the same weights in memory."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from easel.blobstore import BlobStore
from easel.db.models import InferenceJob, Model, SubTrainJob, Trial
from easel.db.session import session_scope
from easel.model import BaseModel
from easel.model.loading import load_template_class
from easel.model.params import read_metadata

log = logging.getLogger("easel.inference_worker")

DEFAULT_BATCH_SIZE = 32


class QueryBatch(np.ndarray):
    """A stacked mini-batch that is also a well-behaved ``Sequence`` of queries (truthiness = non-empty).

    Templates receive it as ``queries``: ``torch.as_tensor`` takes it without a copy, where a list of
    per-instance lists would cost milliseconds per mini-batch to convert.
    """

    def __bool__(self) -> bool:
        return self.shape[0] > 0


def stack(instances: Sequence[Any]) -> Any:
    """One mini-batch for ``predict``: a :class:`QueryBatch` when every instance is an array of one shape."""
    if instances and all(isinstance(x, np.ndarray) for x in instances):
        shapes = {x.shape for x in instances}
        if len(shapes) == 1:
            return np.stack(instances).view(QueryBatch)
    return list(instances)


@dataclass
class Deployment:
    """What a worker serves: one trial of an inference job."""

    job_id: str
    trial_id: str
    n_workers: int
    model: Model
    knobs: dict[str, Any]
    params_key: str
    profile: dict[str, Any]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return int(self.profile.get("batch_size") or DEFAULT_BATCH_SIZE)

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        import json

        raw = self.metadata.get("input_shape")
        return tuple(int(d) for d in json.loads(raw)) if raw else None


def load_deployment(sessions: sessionmaker[Session], blobs: BlobStore, job_id: str) -> Deployment:
    """The best deployed trial of the job (the first of ``trial_ids``), with its template row and profile."""
    with session_scope(sessions) as session:
        job = session.get(InferenceJob, job_id)
        if job is None:
            raise ValueError(f"no inference job {job_id}")
        trials = list(job.trial_ids.get("trials", []))
        if not trials:
            raise ValueError(f"inference job {job_id} deploys no trial")
        trial = session.get_one(Trial, trials[0])
        if not trial.params_key:
            raise ValueError(f"trial {trial.id} has no saved parameters")
        sub = session.get_one(SubTrainJob, trial.sub_train_job_id)
        model = session.get_one(Model, sub.model_id)
        session.expunge(model)
        profile = dict(trial.profile or {})
        deployment = Deployment(job.id, trial.id, int(job.budget.get("WORKERS", 1)), model, dict(trial.knobs),
                                trial.params_key, profile)
    try:
        with blobs.open(deployment.params_key) as handle:
            head = handle.read(8)
            size = int.from_bytes(head, "little") if len(head) == 8 else 0
            deployment.metadata = read_metadata(head + handle.read(min(size, 100 << 20)))
    except (ValueError, OSError):
        deployment.metadata = {}
    return deployment


class ServedModel:
    """A template with its parameters loaded, and its slice rates with the profile's accuracies."""

    def __init__(self, template: BaseModel, rates: Sequence[float], accuracies: Sequence[float],
                 times: Sequence[float]) -> None:
        self.template = template
        self.rates = [float(r) for r in rates]
        self.accuracies = [float(p) for p in accuracies]
        self.times = [float(t) for t in times]

    @classmethod
    def load(cls, deployment: Deployment, blobs: BlobStore) -> ServedModel:
        template_cls = load_template_class(deployment.model, blobs)
        template = template_cls(**deployment.knobs)
        template.load_parameters(blobs.get_bytes(deployment.params_key))
        profile = deployment.profile
        rates = profile.get("rates") or list(template.SLICE_RATES)
        accuracies = profile.get("accuracy") or [1.0] * len(rates)
        times = profile.get("batch_time_s") or [0.0] * len(rates)
        if not (len(rates) == len(accuracies) == len(times)):
            raise ValueError(f"trial {deployment.trial_id}: profile lists differ in length")
        return cls(template, rates, accuracies, times)

    def predict(self, batch: Any, rate: float) -> list[Any]:
        outputs = self.template.predict(batch, rate)
        if len(outputs) != len(batch):
            raise ValueError(f"the template returned {len(outputs)} predictions for {len(batch)} queries")
        return outputs

    def calibrate(self, input_shape: Sequence[int] | None, batch_size: int, repeats: int = 10) -> list[float]:
        """Time one mini-batch of zeros at every rate on this machine (the fastest of ``repeats``, after a
        warm-up) and plan with that.

        The fastest run, not the median: workers calibrate while their peers start up, and a pessimistic t_i
        for a width the worker then never runs is never corrected (only widths that run are measured), while
        an optimistic one is, by the first mini-batch that runs late and the re-plan it triggers. The widths
        are timed in interleaved rounds, so a burst of load on the machine hits all of them alike and the
        ratios between them (which the worker uses for widths it has not run lately) stay true.
        Returns the new times; rates that cannot be timed (no known input shape) keep the profile's.
        """
        if input_shape is None:
            return [t if t > 0 else 1e-3 for t in self.times]
        batch = np.zeros((batch_size, *input_shape), dtype=np.float32).view(QueryBatch)
        for rate in self.rates:
            self.predict(batch, rate)  # warm-up: first call allocates
        fastest = [math.inf] * len(self.rates)
        for _ in range(max(1, repeats)):
            for i, rate in enumerate(self.rates):
                began = time.perf_counter()
                self.predict(batch, rate)
                fastest[i] = min(fastest[i], time.perf_counter() - began)
        measured = [max(t, 1e-6) for t in fastest]
        log.info("calibrated mini-batch times (s) at rates %s: %s (profiled: %s)", self.rates,
                 [round(t, 5) for t in measured], [round(t, 5) for t in self.times])
        self.times = measured
        return measured
