"""The explainer's loop: take an explanation from the job's Redis stream (a dead explainer's first), compute
it, store it, acknowledge it, signal it done. See :mod:`easel.explanations` for the queue's contract."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis
from sqlalchemy.orm import Session, sessionmaker

from easel import explanations as store
from easel.batch_buffers import QueryBatch
from easel.blobstore import BlobStore
from easel.db.models import Dataset, Explanation, InferenceJob, TrainJob
from easel.db.session import session_scope
from easel.sandbox import SandboxedTemplate, SandboxError
from inference_worker.explain.methods import (
    GRADCAM_OF_TEMPLATE,
    ExplainError,
    batched,
    gradcam_of_template,
    is_image,
    lime_image,
    lime_tabular,
)
from inference_worker.explain.methods import (
    Explanation as Explained,
)
from inference_worker.explain.overlay import overlay_png
from inference_worker.model import ServedModel

log = logging.getLogger("easel.explainer")

DEFAULT_SAMPLES = {"image": 1000, "vector": 2000}
TRAINING_ROWS = 1000  # LIME for vectors samples around the training data's statistics; this many rows suffice


@dataclass(frozen=True)
class ExplainerConfig:
    job_id: str
    consumer: str
    input_shape: tuple[int, ...]
    classes: tuple[str, ...]
    reclaim_s: float
    max_attempts: int
    batch_size: int
    block_ms: int = 1000


class Heartbeat:
    """Re-claims our own stream entry every ``every_s`` while we work on it, so its idle time stays short and
    no other explainer takes it; when we die the re-claims stop and the entry goes idle."""

    def __init__(self, client: redis.Redis, stream: str, consumer: str, entry_id: bytes, every_s: float) -> None:
        self._args = (client, stream, consumer, entry_id)
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="explain-heartbeat", daemon=True)

    def _run(self) -> None:
        client, stream, consumer, entry_id = self._args
        while not self._stop.wait(self._every_s):
            try:
                client.xclaim(stream, store.GROUP, consumer, 0, [entry_id], justid=True)
            except redis.RedisError as error:  # the next beat tries again; a long outage hands the entry on
                log.warning("heartbeat for %s failed: %s", entry_id, error)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Explainer:
    def __init__(self, config: ExplainerConfig, model: ServedModel, client: redis.Redis,
                 sessions: sessionmaker[Session], blobs: BlobStore) -> None:
        self.config = config
        self.model = model
        self.redis = client
        self.sessions = sessions
        self.blobs = blobs
        self.stream = store.requests_stream(config.job_id)
        self.stop = threading.Event()
        self._training: np.ndarray | None = None
        self.handled = 0

    # -- the loop ------------------------------------------------------------------------------------------
    def ensure_group(self) -> None:
        try:
            self.redis.xgroup_create(self.stream, store.GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def run(self) -> None:
        self.ensure_group()
        log.info("explainer %s ready on %s", self.config.consumer, self.stream)
        while not self.stop.is_set():
            try:
                entry = self.next_entry()
            except redis.RedisError as error:
                log.warning("cannot read %s: %s", self.stream, error)
                self.stop.wait(1.0)
                continue
            if entry is not None:
                self.handle(*entry)

    def next_entry(self) -> tuple[bytes, dict[bytes, bytes]] | None:
        """A dead explainer's entry if one has gone idle, else a new one (blocking up to ``block_ms``)."""
        answer = self.redis.xautoclaim(
            self.stream, store.GROUP, self.config.consumer, int(self.config.reclaim_s * 1000), "0-0", count=1)
        for entry_id, fields in answer[1]:  # [next id, entries] (Redis 7 adds the ids trimmed away)
            if fields:
                log.warning("took over explanation entry %s from an explainer that went silent", entry_id)
                return entry_id, fields
            self.redis.xack(self.stream, store.GROUP, entry_id)  # trimmed away: nothing left to do
        answer = self.redis.xreadgroup(store.GROUP, self.config.consumer, {self.stream: ">"}, count=1,
                                       block=self.config.block_ms)
        for _stream, entries in answer or []:
            for entry_id, fields in entries:
                return entry_id, fields
        return None

    def handle(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        explanation_id = fields.get(b"id", b"").decode()
        row = store.claim(self.sessions, explanation_id, self.config.max_attempts) if explanation_id else None
        if row is not None:
            with Heartbeat(self.redis, self.stream, self.config.consumer, entry_id, self.config.reclaim_s / 3):
                self.explain(row)
        self.redis.xack(self.stream, store.GROUP, entry_id)
        final = store.load(self.sessions, explanation_id) if explanation_id else None
        if final is not None:
            self.redis.xadd(store.done_stream(self.config.job_id), {"id": explanation_id, "status": final.status.value},
                            maxlen=store.STREAM_MAXLEN, approximate=True)
        self.handled += 1

    # -- one explanation -----------------------------------------------------------------------------------
    def explain(self, row: Explanation) -> None:
        began = time.perf_counter()
        try:
            instance = store.bytes_to_array(self.blobs.get_bytes(row.instance_key))
            result = self.compute(row.method, instance.reshape(self.config.input_shape), float(row.slice_rate),
                                  dict(row.options or {}))
            heatmap_key = overlay_key = None
            weights = None
            details = {k: v for k, v in result.details.items() if k != "segments"}
            if result.heatmap is not None:
                heatmap_key = store.blob_key(row.inference_job_id, row.id, "heatmap.npy")
                self.blobs.put_bytes(heatmap_key, store.array_to_bytes(result.heatmap))
                overlay_key = store.blob_key(row.inference_job_id, row.id, "overlay.png")
                self.blobs.put_bytes(overlay_key, overlay_png(instance.reshape(self.config.input_shape),
                                                              result.heatmap, result.details.get("segments")))
            if result.weights is not None:
                weights = {"names": details.get("feature_names"), "values": result.weights}
            classes = self.config.classes
            label = classes[result.class_index] if 0 <= result.class_index < len(classes) else str(result.class_index)
            if not store.complete(self.sessions, row.id, label=label, class_index=result.class_index,
                                  probabilities=result.probabilities, weights=weights, details=details,
                                  heatmap_key=heatmap_key, overlay_key=overlay_key,
                                  compute_s=time.perf_counter() - began):
                log.info("explanation %s finished after it had already ended (timed out?)", row.id)
        except ExplainError as error:
            store.fail(self.sessions, row.id, str(error))
        except Exception as error:  # noqa: BLE001 - the explanation errs with the reason; the explainer goes on
            log.exception("explanation %s failed", row.id)
            store.fail(self.sessions, row.id, f"the explainer failed: {type(error).__name__}: {error}")

    def compute(self, method: str, instance: np.ndarray, rate: float, options: dict[str, Any]) -> Any:
        target = options.get("target_class")
        seed = int(options.get("seed", 0))
        if method == "gradcam":
            return self.gradcam(instance, rate, target, options.get("layer"))
        if method != "lime":
            raise ExplainError(f"unknown method {method!r}")
        predict = self.classifier(rate)
        if is_image(self.config.input_shape):
            return lime_image(predict, instance, num_samples=int(options.get("num_samples") or
                                                                 DEFAULT_SAMPLES["image"]),
                              batch_size=self.config.batch_size, target_class=target,
                              segments=options.get("segments"), hide_value=float(options.get("hide_value", 0.0)),
                              seed=seed)
        return lime_tabular(predict, instance.reshape(-1), self.training_data(),
                            num_samples=int(options.get("num_samples") or DEFAULT_SAMPLES["vector"]),
                            batch_size=self.config.batch_size, target_class=target, seed=seed)

    def gradcam(self, instance: np.ndarray, rate: float, target: int | None, layer: str | None) -> Explained:
        """Grad-CAM needs the torch network: for a sandboxed template it runs in the sandbox, next to it."""
        template = self.model.template
        if not isinstance(template, SandboxedTemplate):
            return gradcam_of_template(template, instance, rate, target_class=target, layer=layer)
        try:
            return Explained.from_plain(template.explain(GRADCAM_OF_TEMPLATE, instance, rate,
                                                         target_class=target, layer=layer))
        except SandboxError as error:
            if error.kind == "ExplainError":
                raise ExplainError(error.detail) from None
            raise

    def classifier(self, rate: float) -> Callable[[np.ndarray], np.ndarray]:
        """Probabilities for LIME's perturbed samples, pushed through the model a mini-batch at a time."""

        def predict(samples: np.ndarray) -> np.ndarray:
            batch = np.ascontiguousarray(samples, dtype=np.float32).view(QueryBatch)
            return np.asarray(self.model.predict(batch, rate), dtype=np.float64)

        return batched(predict, self.config.batch_size)

    def training_data(self) -> np.ndarray:
        """Up to ``TRAINING_ROWS`` rows of the deployed app's training set (LIME's sampling statistics)."""
        if self._training is None:
            from easel.datasets import read_dataset

            with session_scope(self.sessions) as session:
                job = session.get_one(InferenceJob, self.config.job_id)
                dataset = session.get_one(Dataset, session.get_one(TrainJob, job.train_job_id).train_dataset_id)
                key = dataset.blob_key
            x = read_dataset(self.blobs.local_path(key)).x.reshape(-1, int(np.prod(self.config.input_shape)))
            rows = np.random.default_rng(0).permutation(len(x))[:TRAINING_ROWS]
            self._training = x[rows]
        return self._training


__all__ = ["Explainer", "ExplainerConfig", "Heartbeat"]
