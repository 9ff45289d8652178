"""Job orchestration: which services a train or inference job needs, and starting and stopping them.

A train job gets, per model (sub-train-job), one advisor and ``WORKERS`` train workers; an inference
job gets one predictor and ``WORKERS`` inference workers. Every service is started and stopped through
admin's launcher (``EASEL_LAUNCHER``: local processes, or Kubernetes), which records it in the
``services`` table with its pid/pod and log path. An inference job's predictor gets a port chosen here,
and the job records the predictor's URL. (Tests of the REST surface give admin a contract-fake launcher
that records services without running them.)
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.state import AdminState
from easel.db.enums import ServiceKind
from easel.db.models import InferenceJob, ModelVersion, Service, TrainJob
from easel.db.session import session_scope
from easel.explanations import job_keys as explanation_keys
from easel.jobs import InferenceJobBudget, TrainBudget, lifecycle
from easel.launcher import ServiceSpec
from easel.pool import PoolChannel
from easel.redis_client import make_redis
from easel.request_topics import delete_generations
from easel.serving import STANDBY_PREFIX, job_keys
from easel.stack.process import free_port
from easel.tuning import TuningChannel

log = logging.getLogger("admin")

PROJECT_ROOT = str(Path(__file__).resolve().parents[2])


def _python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _base_env() -> dict[str, str]:
    return {"PYTHONPATH": PROJECT_ROOT}


def train_job_specs(job: TrainJob, pool: bool = False) -> list[ServiceSpec]:
    """One advisor and ``budget.WORKERS`` train workers for each sub-train-job of ``job``; with the shared
    train ``pool``, only the advisors (bidding for the pool's workers)."""
    budget = TrainBudget.from_stored(job.budget)
    specs = []
    for sub in job.sub_train_jobs:
        tag = f"{job.app}-v{job.app_version}-{sub.id[:8]}"
        env = {**_base_env(), "EASEL_SUB_TRAIN_JOB_ID": sub.id, "EASEL_TRAIN_JOB_ID": job.id}
        specs.append(ServiceSpec(
            name=f"advisor-{tag}", kind=ServiceKind.ADVISOR, env=env, sub_train_job_id=sub.id,
            argv=_python_module("advisor", "--sub-train-job-id", sub.id, *(["--pool"] if pool else []),
                                *(["--seed", str(budget.SEED)] if budget.SEED is not None else [])),
        ))
        if pool:
            continue
        specs += _workers(ServiceKind.TRAIN_WORKER, f"train-worker-{tag}", env, budget.WORKERS, budget.GPU_COUNT,
                          _python_module("train_worker", "--sub-train-job-id", sub.id), sub_train_job_id=sub.id)
    return specs


POOL_WORKER_PREFIX = "train-pool-"


def pool_worker_specs(size: int) -> list[ServiceSpec]:
    """The shared train pool's ``size`` generic workers (slots of no job; :mod:`admin.services.train_pool`)."""
    return _workers(ServiceKind.TRAIN_WORKER, POOL_WORKER_PREFIX.rstrip("-"), _base_env(), size, 0,
                    _python_module("train_worker", "--pool"))


def release_pool_share(state: AdminState, sub_ids: list[str]) -> None:
    """A stopped job's sub-jobs stop bidding for pool workers at once, and their running trials end at the next
    epoch boundary (their workers then go back to the pool)."""
    client = make_redis(state.settings, decode_responses=True)
    try:
        pool = PoolChannel(client)
        for sub_id in sub_ids:
            TuningChannel(client, sub_id).stop_workers()
            pool.withdraw(sub_id)
    finally:
        client.close()


def inference_job_specs(job: InferenceJob, app: str, version: int, *, host: str | None = None,
                        port: int | None = None, explainers: int = 1) -> list[ServiceSpec]:
    """One predictor (listening on ``host:port`` when given), ``budget.WORKERS`` inference workers and
    ``explainers`` explainers (their own processes, reading the job's explanation stream: off the deadline
    path)."""
    budget = InferenceJobBudget.from_stored(job.budget)
    tag = f"{app}-v{version}-{job.id[:8]}"
    env = {**_base_env(), "EASEL_INFERENCE_JOB_ID": job.id}
    listen = ["--host", host, "--port", str(port)] if host is not None and port is not None else []
    specs = [ServiceSpec(
        name=f"predictor-{tag}", kind=ServiceKind.PREDICTOR, env=env, inference_job_id=job.id, host=host, port=port,
        argv=_python_module("predictor", "--inference-job-id", job.id, *listen),
    )]
    specs += _workers(ServiceKind.INFERENCE_WORKER, f"inference-worker-{tag}", env, budget.WORKERS, budget.GPU_COUNT,
                      _python_module("inference_worker", "--inference-job-id", job.id), inference_job_id=job.id)
    for index in range(explainers):
        specs.append(ServiceSpec(
            name=f"explainer-{tag}-{index}", kind=ServiceKind.EXPLAINER, inference_job_id=job.id, env=env,
            argv=_python_module("inference_worker.explain", "--inference-job-id", job.id),
        ))
    return specs


def standby_specs(workers: list[ServiceSpec], count: int) -> list[ServiceSpec]:
    """``count`` warm standby workers like ``workers`` (same model version, same GPU count), started with
    ``--standby``: loaded, outside the consumer group until the supervisor promotes one into a dead worker's
    slot (:mod:`admin.services.standby`)."""
    if not workers or count < 1:
        return []
    like = workers[0]
    base = like.name.rsplit("-", 1)[0]
    return [replace(like, name=f"{STANDBY_PREFIX}{base}-{index}", argv=[*like.argv, "--standby"],
                    env={**like.env, "EASEL_WORKER_INDEX": str(len(workers) + index)}) for index in range(count)]


def _workers(kind: ServiceKind, name: str, env: dict[str, str], count: int, gpus: int, argv: list[str],
             **job: str) -> list[ServiceSpec]:
    """``count`` workers of one kind, each told its index and the job's GPU count."""
    return [ServiceSpec(name=f"{name}-{index}", kind=kind, argv=argv, **job,
                        env={**env, "EASEL_WORKER_INDEX": str(index), "EASEL_GPU_COUNT": str(gpus)})
            for index in range(count)]


VERSION_ENV = "EASEL_MODEL_VERSION_ID"


def worker_version_id(command: dict[str, Any] | None) -> str | None:
    """The model version an inference worker was launched to load (None: the job's, at its start)."""
    return ((command or {}).get("env") or {}).get(VERSION_ENV)


def version_worker_specs(job: InferenceJob, app: str, version: int, model_version: ModelVersion) -> list[ServiceSpec]:
    """``budget.WORKERS`` inference workers that load ``model_version`` (told by ``EASEL_MODEL_VERSION_ID``, which
    a relaunch keeps); their slot names carry the version, so each version's workers are slots of their own."""
    budget = InferenceJobBudget.from_stored(job.budget)
    env = {**_base_env(), "EASEL_INFERENCE_JOB_ID": job.id, VERSION_ENV: model_version.id}
    return _workers(ServiceKind.INFERENCE_WORKER, f"inference-worker-{app}-v{version}-{job.id[:8]}-m{model_version.number}",
                    env, budget.WORKERS, budget.GPU_COUNT,
                    _python_module("inference_worker", "--inference-job-id", job.id), inference_job_id=job.id)


def start_services(state: AdminState, specs: list[ServiceSpec]) -> list[str]:
    """Start every spec; if one fails, stop those already started and re-raise. The started services' ids."""
    started: list[str] = []
    try:
        for spec in specs:
            started.append(state.launcher.start(spec).id)
    except Exception:
        for service_id in started:
            try:
                state.launcher.stop(service_id)
            except Exception:  # noqa: BLE001 - best effort while unwinding
                log.exception("could not stop service %s while unwinding a failed launch", service_id)
        raise
    return started


def predictor_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}"


def _launch(state: AdminState, specs: list[ServiceSpec], mark_errored: Callable[[Session], object]) -> None:
    """Start every spec through the launcher; if one fails, stop those already started, record the job
    ``ERRORED`` with ``mark_errored`` and re-raise."""
    try:
        start_services(state, specs)
    except Exception:
        with session_scope(state.sessions) as session:
            mark_errored(session)
        raise


def launch_train_job(state: AdminState, train_job_id: str) -> None:
    """Start the services of a committed train job. On a failed start the job and its sub-jobs are marked
    ``ERRORED`` and the error re-raised."""
    with session_scope(state.sessions) as session:
        specs = train_job_specs(session.get_one(TrainJob, train_job_id), pool=state.settings.train_pool_workers > 0)
    _launch(state, specs, lambda session: lifecycle.mark_train_job_errored(session, train_job_id))


def launch_inference_job(state: AdminState, inference_job_id: str, app: str, version: int) -> None:
    """Start the predictor and inference workers of a committed inference job (its workers load the registered
    model version the job serves, when it serves one).

    The predictor's port is chosen here and its URL recorded on the job at once (the predictor records it
    again, with the port it really bound, when it starts).
    """
    with session_scope(state.sessions) as session:
        job = session.get_one(InferenceJob, inference_job_id)
        host = state.settings.predictor_host
        port = free_port(host if host not in ("0.0.0.0", "::", "") else "127.0.0.1")
        specs = inference_job_specs(job, app, version, host=host, port=port, explainers=state.settings.explainers)
        if job.model_version_id is not None:
            workers = version_worker_specs(job, app, version, session.get_one(ModelVersion, job.model_version_id))
            specs = [s for s in specs if s.kind != ServiceKind.INFERENCE_WORKER] + workers
        specs += standby_specs([s for s in specs if s.kind == ServiceKind.INFERENCE_WORKER],
                               state.settings.serving_standby_workers)
        job.predictor_url = predictor_url(host, port)
    _launch(state, specs, lambda session: lifecycle.mark_inference_job_errored(session, inference_job_id))


def stop_services(state: AdminState, session: Session, services: list[Service],
                  timeout_s: float | None = None) -> None:
    """Stop each live service through the launcher (which records it); ``session``'s rows are refreshed."""
    for row in services:
        if row.status not in lifecycle.LIVE_SERVICE:
            continue
        try:
            if timeout_s is None:
                state.launcher.stop(row.id)
            else:
                state.launcher.stop(row.id, timeout_s=timeout_s)
        except Exception:  # noqa: BLE001 - keep stopping the others; the row shows what happened
            log.exception("could not stop service %s", row.id)
        session.refresh(row)


def stop_inference_job(state: AdminState, session: Session, job: InferenceJob) -> None:
    """Drain and stop an inference job: the predictor first (it answers the requests in flight, each by its
    deadline), then the workers (they finish what is queued and commit); then forget its Redis keys and its
    requests topic (every request on it has been answered or has passed its deadline by now)."""
    services = inference_job_services(session, job.id)
    order = sorted(services, key=lambda s: (s.kind != ServiceKind.PREDICTOR, s.created_at, s.name))
    stop_services(state, session, order, timeout_s=state.settings.serving_drain_s + 5.0)
    try:
        client = make_redis(state.settings)
        try:
            client.delete(*job_keys(job.id), *explanation_keys(job.id))
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - leftover keys are harmless; the job is stopped either way
        log.warning("could not delete the Redis keys of inference job %s", job.id)
    try:
        delete_generations(state.settings, job.id)  # every generation of its requests topic
    except Exception:  # noqa: BLE001 - a leftover topic is harmless; the job is stopped either way
        log.warning("could not delete the requests topic of inference job %s", job.id)


def sub_train_job_services(session: Session, sub_ids: list[str]) -> list[Service]:
    if not sub_ids:
        return []
    return list(session.scalars(
        select(Service).where(Service.sub_train_job_id.in_(sub_ids)).order_by(Service.created_at, Service.name)
    ))


def inference_job_services(session: Session, job_id: str) -> list[Service]:
    return list(session.scalars(
        select(Service).where(Service.inference_job_id == job_id).order_by(Service.created_at, Service.name)
    ))


__all__ = [
    "inference_job_services", "inference_job_specs", "launch_inference_job", "launch_train_job",
    "pool_worker_specs", "predictor_url", "release_pool_share", "start_services", "stop_inference_job", "stop_services", "sub_train_job_services",
    "train_job_specs", "version_worker_specs", "worker_version_id",
]
