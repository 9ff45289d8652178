"""The deployed model inside a worker: loaded once (template class, knobs, parameters), then asked to predict
mini-batches at any slice rate. Switching width costs nothing: a sliced network runs its first ``r`` share of
channels, so every rate uses the same weights in memory."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from easel.batch_buffers import DeviceTimer, QueryBatch
from easel.blobstore import BlobStore
from easel.jobs import Deployment, Profile
from easel.model import BaseModel
from easel.sandbox import SandboxedTemplate, close_template, open_template
from easel.settings import Settings

log = logging.getLogger("easel.inference_worker")

# Untimed calls at every width before calibrating: the first allocates; on a GPU the first few also load
# kernels, create the cuBLAS/cuDNN handles and grow the caching allocator, which one call does not finish.
WARMUP_ROUNDS = 3


def stack(instances: Sequence[Any]) -> Any:
    """One mini-batch for ``predict``: a :class:`QueryBatch` when every instance is an array of one shape."""
    if instances and all(isinstance(x, np.ndarray) for x in instances):
        shapes = {x.shape for x in instances}
        if len(shapes) == 1:
            return np.stack(instances).view(QueryBatch)
    return list(instances)


def _inference_mode() -> contextlib.AbstractContextManager[Any]:
    """torch's inference mode (no autograd bookkeeping, no version counters) when this process uses torch: a
    template in this process that needs it has imported it; a sandboxed one runs it in its sandbox, and
    importing torch here would only add seconds to a worker's start-up."""
    torch = sys.modules.get("torch")
    return contextlib.nullcontext() if torch is None else torch.inference_mode()


class ServedModel:
    """A template with its parameters loaded, and its slice rates with the profile's accuracies."""

    def __init__(self, template: BaseModel, rates: Sequence[float], accuracies: Sequence[float],
                 times: Sequence[float]) -> None:
        self.template = template
        # A sandboxed template hands numeric predictions back as one array (no per-number work on either side).
        self._predict = getattr(template, "predict_array", template.predict)
        self.rates = [float(r) for r in rates]
        self.accuracies = [float(p) for p in accuracies]
        self.times = [float(t) for t in times]
        self.last_device_s: float | None = None

    @classmethod
    def load(cls, deployment: Deployment, blobs: BlobStore, settings: Settings | None = None) -> ServedModel:
        """The deployed template with its parameters: uploaded code in a sandbox for the worker's life (no CPU
        cap there; each call has a timeout), a trusted built-in in this process unless settings say otherwise."""
        if not deployment.params_key:
            raise ValueError(f"trial {deployment.trial_id} has no saved parameters")
        settings = settings or Settings()
        template = open_template(deployment.model, blobs, settings, deployment.knobs, cpu_capped=False,
                                 threads=settings.serving_threads or None)
        try:
            template.load_parameters(blobs.get_bytes(deployment.params_key))
        except BaseException:
            close_template(template)
            raise
        profile = deployment.profile
        if not profile.rates:  # a profile that names no rates: the template's, to be calibrated
            profile = Profile.from_json(profile.to_json(), template.SLICE_RATES)
        return cls(template, profile.rates, profile.accuracy, profile.batch_time_s)

    def predict(self, batch: Any, rate: float) -> Sequence[Any]:
        """The template's outputs for ``batch`` at ``rate``; ``last_device_s`` is then the GPU's time for it (CUDA
        events, taken in the sandbox for a sandboxed template) or None on a CPU."""
        with _inference_mode(), DeviceTimer() as timer:
            outputs = self._predict(batch, rate)
        self.last_device_s = (self.template.last_device_s if isinstance(self.template, SandboxedTemplate)
                              else timer.seconds)
        if len(outputs) != len(batch):
            raise ValueError(f"the template returned {len(outputs)} predictions for {len(batch)} queries")
        return outputs

    def calibrate(self, input_shape: Sequence[int] | None, batch_size: int, repeats: int = 10) -> list[float]:
        """Time one mini-batch of zeros at every rate on this machine (the fastest of ``repeats``, after
        ``WARMUP_ROUNDS`` of warm-up) and plan with that.

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
        for _ in range(WARMUP_ROUNDS):
            for rate in self.rates:
                self.predict(batch, rate)
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
