"""``python -m inference_worker --inference-job-id ID``: serve an inference job's requests from Kafka.

Options override the ``EASEL_SERVING_*`` settings: ``--policy`` (scheduler, fixed:<rate>, model-switching,
clipper), ``--batch-size`` (S_mb), ``--metrics-port`` (0 = any free port; recorded on the service's row).
``--standby`` makes a warm standby (``EASEL_SERVING_STANDBY_WORKERS``): loaded and calibrated, it waits outside
the consumer group until promoted. SIGTERM drains: no new requests are taken, queued tasks finish (within
``EASEL_SERVING_DRAIN_S``), offsets are committed, the worker unregisters and exits; its group membership
expires after the session timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import time
import uuid
from typing import Any

import psutil
import redis

from easel.blobstore import make_blob_store
from easel.db.session import make_engine, make_sessionmaker
from easel.jobs import Deployment, load_deployment
from easel.kafka_io import make_serving_consumer
from easel.launcher.service_exit import record_clean_exit
from easel.redis_client import make_redis
from easel.request_topics import ensure_started
from easel.sandbox import is_sandboxed
from easel.serving import calibration_field, calibration_key, consumer_group, generation_key, requests_topic
from easel.settings import Settings, get_settings
from inference_worker.metrics import WorkerMetrics
from inference_worker.model import ServedModel
from inference_worker.policy import POLICY_HELP, LivePolicy
from inference_worker.service import InferenceWorker, WorkerConfig
from scheduler import PlanCache

log = logging.getLogger("easel.inference_worker")


def build_worker(settings: Settings, job_id: str, policy: str, batch_size: int | None,
                 metrics_port: int | None, boot: dict[str, float] | None = None) -> InferenceWorker:
    """``boot``: start-up phase times so far (more are added here, and the worker publishes them)."""
    boot = {} if boot is None else boot
    sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
    blobs = make_blob_store(settings)
    # A rolling update's new workers are told which version to load; the others serve the job's current one.
    deployment = load_deployment(sessions, blobs, job_id, os.environ.get("EASEL_MODEL_VERSION_ID") or None)
    boot["deployment"] = time.time()
    if settings.serving_threads and not is_sandboxed(deployment.model, settings):
        import torch

        # Deliberate: one intra-op thread per worker by default (M workers share the machine's cores, and a
        # mini-batch of S_mb is too small for torch's thread pool to pay off), one inter-op thread (the
        # executor runs one mini-batch at a time). Only for a template in this process: a sandboxed one gets
        # its threads from the sandbox, and importing torch here would only cost a relaunch seconds.
        torch.set_num_threads(settings.serving_threads)
        with contextlib.suppress(RuntimeError):  # already set: once per process, before any parallel work
            torch.set_num_interop_threads(1)
    size = batch_size or settings.serving_batch_size or deployment.batch_size
    model = ServedModel.load(deployment, blobs, settings)
    boot["loaded"] = time.time()
    redis_client = make_redis(settings)
    times = calibrated_times(redis_client, job_id, deployment, model, size)
    boot["calibrated"] = time.time()
    cache = PlanCache(max_loss=settings.serving_cache_max_loss, time_budget=settings.serving_decision_budget_s)
    live = LivePolicy(policy, model.rates, model.accuracies, times, cache=cache,
                      alpha=settings.serving_ewma_alpha, rate_window_s=settings.serving_rate_window_s,
                      rate_confidence=settings.serving_rate_confidence,
                      time_budget=settings.serving_decision_budget_s, safety=settings.serving_safety_sigmas)
    metrics = WorkerMetrics(model.rates)
    metrics.set_estimates(model.rates, times)
    port = metrics.serve(settings.predictor_host, metrics_port) if metrics_port is not None else None
    service_id = os.environ.get("EASEL_SERVICE_ID")
    worker_id = f"worker-{(service_id or uuid.uuid4().hex)[:8]}"
    topic, partitions = requests_topic(job_id), max(1, deployment.n_workers)
    existing = ensure_started(settings, job_id, partitions)  # the predictor may not have made the first one yet

    def consumer_for(generation: int) -> Any:  # kafka-python's KafkaConsumer or the librdkafka one
        return make_serving_consumer(settings, group_id=consumer_group(job_id, generation),
                                     fetch_max_wait_ms=settings.serving_fetch_wait_ms,
                                     max_partition_fetch_bytes=32 << 20, fetch_max_bytes=64 << 20)  # whole mini-batches

    generation = first_generation(redis_client, job_id, existing)
    consumer = consumer_for(generation)
    config = WorkerConfig(job_id=job_id, worker_id=worker_id, topic=topic, batch_size=size, policy=policy,
                          margin_s=settings.serving_margin_s, drain_s=settings.serving_drain_s,
                          metrics_port=port, service_id=service_id, model_version=deployment.model_version,
                          model_version_id=deployment.model_version_id, boot=boot,
                          ensure_topic=lambda: ensure_started(settings, job_id, partitions),
                          consumer_for=consumer_for, generation=generation)
    worker = InferenceWorker(config, consumer, model, live, redis_client, metrics, sessions)
    if port is not None:
        worker.record_service(port)
    log.info("version %s, trial %s (%s), rates %s, accuracies %s, device %s, S_mb %d, metrics on port %s",
             deployment.model_version, deployment.trial_id, deployment.model.name, model.rates, [round(p, 4) for p in model.accuracies],
             _device(), size, port)
    return worker


def first_generation(client: redis.Redis, job_id: str, existing: list[int]) -> int:
    """The requests topic generation a starting worker reads: the one the predictor sends to (Redis), else the
    newest on the broker."""
    try:
        told = client.get(generation_key(job_id))
    except redis.RedisError:
        told = None
    if told and int(told) in existing:
        return int(told)
    return max(existing, default=0)


def calibrated_times(client: redis.Redis, job_id: str, deployment: Deployment, model: ServedModel,
                     batch_size: int) -> list[float]:
    """The mini-batch times to plan with: this job's stored calibration of the same model version and ``S_mb``
    when a worker before this one made it (a relaunch, a standby: same job, same machine class), else this
    worker calibrates and stores its result for the next one. The policy's EWMA corrects either on the
    first mini-batches served."""
    field = calibration_field(deployment.model_version_id or deployment.trial_id, batch_size)
    try:
        stored = client.hget(calibration_key(job_id), field)
    except redis.RedisError:
        stored = None
    if stored:
        times = [float(t) for t in json.loads(stored)]
        if len(times) == len(model.rates) and all(t > 0 for t in times):
            model.times = times
            log.info("mini-batch times (s) at rates %s from the job's calibration: %s", model.rates, times)
            return times
    times = model.calibrate(deployment.input_shape, batch_size)
    with contextlib.suppress(redis.RedisError):
        client.hset(calibration_key(job_id), field, json.dumps(times))
    return times


def _device() -> str:
    if "torch" not in sys.modules:
        return "sandbox"  # the template runs in its sandbox; torch was never needed here
    try:
        from slicing import resolve_device

        return str(resolve_device("auto"))
    except Exception:  # noqa: BLE001 - only for the log line
        return "?"


SWITCH_INTERVAL_S = 0.0005


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference_worker")
    parser.add_argument("--inference-job-id", required=True)
    parser.add_argument("--policy", default=None, help=POLICY_HELP)
    parser.add_argument("--batch-size", type=int, default=None, help="mini-batch size S_mb")
    parser.add_argument("--metrics-port", type=int, default=0, help="Prometheus /metrics port (0: any free one)")
    parser.add_argument("--standby", action="store_true", help="load and calibrate, then wait outside the consumer "
                        "group until the supervisor promotes this worker into a dead one's slot")
    args = parser.parse_args(argv)
    boot = {"process": psutil.Process().create_time(), "imported": time.time()}
    # Two threads share the GIL here (the Kafka client's and ours); the default 5 ms switch interval would let
    # one keep a ready other waiting for up to 5 ms, which shows up directly in request latency.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    # EASEL_LOG_LEVEL=DEBUG logs every task share's plan (budget, backlog, t_i, price) and outcome
    logging.basicConfig(level=os.environ.get("EASEL_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s inference_worker %(levelname)s %(message)s")
    overrides = {"serving_policy": args.policy} if args.policy else {}
    logging.getLogger("kafka").setLevel(os.environ.get("EASEL_KAFKA_LOG_LEVEL", "WARNING").upper())
    settings = get_settings(**overrides)
    if args.batch_size is not None and not 1 <= args.batch_size <= 4096:
        parser.error("--batch-size must be in 1..4096")
    worker = build_worker(settings, args.inference_job_id, settings.serving_policy, args.batch_size,
                          args.metrics_port if args.metrics_port >= 0 else None, boot)
    # SIGTERM (the launcher's stop) drains instead of exiting mid-batch.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: worker.stop.set())
    signal.signal(signal.SIGINT, lambda _signum, _frame: worker.stop.set())
    if args.standby and not worker.wait_as_standby():
        worker.consumer.close()  # stopped before it was needed: it never joined the group
    else:
        worker.run()
    if worker.sessions is not None:
        record_clean_exit(worker.sessions)
    return 0


if __name__ == "__main__":
    sys.exit(main())

