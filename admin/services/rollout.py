"""Rolling updates: switch a running inference job to another registered model version without losing an
instance (a rollback is the same operation, to the previous version).

1. **New workers start** beside the old ones, told to load the target version (``EASEL_MODEL_VERSION_ID``);
   each loads and calibrates it, then records itself on its ``services`` row (``heartbeat_at``, and the version
   it serves) — that is "ready". While the update runs the supervisor leaves them alone (they do not serve the
   job's current version), so a version that cannot load is not relaunched in a loop.
2. If one of them ends before it is ready, or they are not all ready within ``EASEL_UPDATE_READY_TIMEOUT_S``, the
   new workers are stopped and the update is ERRORED with the reason (the last line the failing worker
   logged): the old workers never stopped serving.
3. **Traffic moves**: the new workers are members of the job's consumer group already, so they take partitions
   at the next rebalance; the job now serves the target version (its predictor and any relaunch load that one).
4. **Old workers drain and stop**, one at a time, the last only once a new worker is registered live (holds
   partitions), so the predictor never finds the job without a worker and refuses nothing: the launcher's stop
   makes each finish what it has queued and commit its offsets; whatever it had not answered is redelivered to a
   new worker (the predictor keeps the first answer of an instance), and anything not answered by its deadline
   is answered ``dropped`` — never lost.

The predictor names the version that answered each instance (``model_version`` in every prediction).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import redis
from sqlalchemy import select

from admin.services.orchestration import (
    start_services,
    stop_services,
    version_worker_specs,
    worker_version_id,
)
from admin.state import AdminState
from easel.db.enums import ServiceKind, UpdateStatus
from easel.db.models import InferenceJob, InferenceJobUpdate, ModelVersion, Service, TrainJob
from easel.db.session import session_scope
from easel.jobs import lifecycle
from easel.redis_client import make_redis
from easel.serving import live_workers, workers_key

log = logging.getLogger("admin.rollout")

POLL_S = 0.5


def start_update(state: AdminState, update_id: str) -> threading.Thread:
    """Run the committed update in a background thread (it records its own outcome)."""
    thread = threading.Thread(target=run_update, args=(state, update_id), name=f"update-{update_id[:8]}",
                              daemon=True)
    thread.start()
    return thread


def run_update(state: AdminState, update_id: str) -> None:
    try:
        _roll(state, update_id)
    except Exception as error:  # noqa: BLE001 - an update never ends silently RUNNING
        log.exception("update %s failed", update_id)
        with session_scope(state.sessions) as session:
            lifecycle.fail_inference_job_update(session, update_id, f"{type(error).__name__}: {error}")


def _roll(state: AdminState, update_id: str) -> None:
    with session_scope(state.sessions) as session:
        update = session.get_one(InferenceJobUpdate, update_id)
        job = session.get_one(InferenceJob, update.inference_job_id)
        train_job = session.get_one(TrainJob, job.train_job_id)
        target = session.get_one(ModelVersion, update.to_version_id)
        old = [s.id for s in session.scalars(select(Service).where(
            Service.inference_job_id == job.id, Service.kind == ServiceKind.INFERENCE_WORKER,
            Service.status.in_(lifecycle.LIVE_SERVICE)))]
        specs = version_worker_specs(job, train_job.app, train_job.app_version, target)
        job_id, number = job.id, target.number
    log.info("update %s: starting %d workers of version #%d beside %d old ones", update_id, len(specs), number,
             len(old))
    new = start_services(state, specs)
    failure = _wait_ready(state, new, state.settings.update_ready_timeout_s)
    if failure is not None:
        with session_scope(state.sessions) as session:
            stop_services(state, session, [session.get_one(Service, s) for s in new], timeout_s=5.0)
            lifecycle.fail_inference_job_update(session, update_id, f"version #{number} did not start: {failure}")
        log.error("update %s ERRORED: version #%d did not start (%s); the old version keeps serving", update_id,
                  number, failure)
        return
    with session_scope(state.sessions) as session:  # the job serves the new version from now on
        job = session.get_one(InferenceJob, job_id, with_for_update=True)
        target = session.get_one(ModelVersion, session.get_one(InferenceJobUpdate, update_id).to_version_id)
        job.model_version_id = target.id
        job.trial_ids = {"trials": [target.trial_id]}
    for index, service_id in enumerate(old):
        # One at a time, and the last only once a new worker is registered live (it holds partitions): the
        # predictor never sees the job without a live worker, so no request is refused during the update.
        leaving = {_worker_id(s) for s in old[:index + 1]}
        if not _wait_another_live(state, job_id, leaving, state.settings.update_ready_timeout_s):
            log.warning("update %s: no other live worker registered before stopping %s", update_id, service_id)
        with session_scope(state.sessions) as session:
            stop_services(state, session, [session.get_one(Service, service_id)],
                          timeout_s=state.settings.serving_drain_s + 5.0)
    with session_scope(state.sessions) as session:
        lifecycle.complete_inference_job_update(session, update_id)
    log.info("update %s COMPLETED: version #%d serves; %d old workers drained and stopped", update_id, number,
             len(old))


def _wait_ready(state: AdminState, service_ids: list[str], timeout_s: float) -> str | None:
    """None once every service has loaded its model (its row has a heartbeat); else why not."""
    give_up = time.monotonic() + timeout_s
    while True:
        for service_id in service_ids:
            state.launcher.status(service_id)  # records a process that has ended
        with session_scope(state.sessions) as session:
            rows = [session.get_one(Service, s) for s in service_ids]
            ended = [r for r in rows if r.status not in lifecycle.LIVE_SERVICE]
            if ended:
                return _why(ended[0])
            if all(r.heartbeat_at is not None for r in rows):
                return None
        if time.monotonic() > give_up:
            return f"not ready within {timeout_s:g} s"
        time.sleep(POLL_S)


def _worker_id(service_id: str) -> str:
    """The id an inference worker registers under (``inference_worker.__main__``)."""
    return f"worker-{service_id[:8]}"


def _wait_another_live(state: AdminState, job_id: str, leaving: set[str], timeout_s: float) -> bool:
    """Wait until a worker outside ``leaving`` is registered live in the job's worker registry."""
    give_up = time.monotonic() + timeout_s
    client = make_redis(state.settings)
    try:
        while True:
            try:
                if set(live_workers(client.hgetall(workers_key(job_id)), time.time())) - leaving:
                    return True
            except redis.RedisError as error:
                log.warning("reading the worker registry failed: %s", error)
            if time.monotonic() > give_up:
                return False
            time.sleep(POLL_S)
    finally:
        client.close()


def _why(row: Service) -> str:
    """The last line a failed worker logged (its exception), else its exit code."""
    reason = f"{row.name} exited with code {row.exit_code}"
    if row.log_path:
        try:
            lines = [line.strip() for line in Path(row.log_path).read_text(errors="replace").splitlines()
                     if line.strip()]
        except OSError:
            return reason
        if lines:
            return f"{reason}: {lines[-1][:500]}"
    return reason


def fail_interrupted_updates(state: AdminState) -> int:
    """At start-up: updates left RUNNING by an admin that stopped are ERRORED. The job serves the version it
    recorded; its live workers launched for another version are stopped."""
    with session_scope(state.sessions) as session:
        updates = session.scalars(select(InferenceJobUpdate).where(
            InferenceJobUpdate.status == UpdateStatus.RUNNING)).all()
        for update in updates:
            job = session.get_one(InferenceJob, update.inference_job_id)
            strays = [s for s in session.scalars(select(Service).where(
                Service.inference_job_id == job.id, Service.kind == ServiceKind.INFERENCE_WORKER,
                Service.status.in_(lifecycle.LIVE_SERVICE))) if worker_version_id(s.command) != job.model_version_id]
            stop_services(state, session, strays, timeout_s=state.settings.serving_drain_s + 5.0)
            lifecycle.fail_inference_job_update(session, update.id, "admin stopped during the update")
    return len(updates)


__all__ = ["fail_interrupted_updates", "run_update", "start_update"]
