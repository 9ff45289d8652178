"""A generic train worker of the shared pool (:mod:`easel.pool`): wait for an assignment from admin's
allocator, take one proposal of the assigned sub-job from its channel, run it like a per-job worker does
(same runner, same sandbox, same leases), report itself free, repeat.

It announces itself on the sub-job's channel only while it waits for the proposal, so that sub-job's advisor
knows a worker is waiting; it retires from there as soon as it holds one (the lease then says it is running).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from easel.backoff import Backoff, Throttle
from easel.faults import INFRASTRUCTURE_ERRORS, InfrastructureError
from easel.pool import Assignment, PoolChannel
from easel.redis_client import MAX_BLOCK_S
from easel.tuning import STOP, TuningChannel
from train_worker.runner import TrialRunner
from train_worker.warmup import warm_up_torch

log = logging.getLogger("easel.train_worker")

PROPOSAL_WAIT_S = MAX_BLOCK_S  # an advisor refills its queue within a tick (1 s); past this, back to the pool


class KeepAlive:
    """Renews the worker's liveness key every ``lease_s / 3`` for the worker's whole life, announcing it again
    (``info``) if admin retired it meanwhile."""

    def __init__(self, pool: PoolChannel, worker_id: str, info: dict[str, Any]) -> None:
        self.pool, self.worker_id, self.info = pool, worker_id, info
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pool-keepalive", daemon=True)

    def __enter__(self) -> KeepAlive:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self.pool.lease_s / 3):
            try:
                self.pool.renew(self.worker_id, self.info)
            except Exception as error:  # noqa: BLE001 - an outage must not end the renewal; it tries again
                log.warning("pool keep-alive failed (%s); trying again", error)


def run_assignment(client: redis.Redis, assignment: Assignment, make_runner: Callable[[TuningChannel], TrialRunner],
                   worker_id: str, info: dict[str, Any], lease_s: float) -> Any:
    """One proposal of the assigned sub-job, run to its end; None when the sub-job had none for us."""
    channel = TuningChannel(client, assignment.sub_train_job_id, lease_s)
    channel.announce(worker_id, info)
    try:
        item = channel.take(timeout_s=PROPOSAL_WAIT_S)
    finally:
        channel.retire(worker_id)
    if item is None or item == STOP:
        return None
    assert not isinstance(item, str)
    status = make_runner(channel).run(item)
    if status is not None:
        log.info("trial %d of sub-job %s (%s): %s", item.no, assignment.sub_train_job_id[:8], assignment.reason,
                 status.value)
    return status


def serve_pool(pool: PoolChannel, make_runner: Callable[[TuningChannel], TrialRunner], worker_id: str,
               info: dict[str, Any], stop: threading.Event | None = None) -> int:
    """Serve assignments until ``stop`` is set (or the process is told to end). Returns how many trials ran.

    An infrastructure outage does not end the worker: it waits (capped, jittered backoff) and announces itself
    again (a restarted Redis may have lost the registry); a trial it was running is re-issued by its advisor.
    """
    log.info("warmed up PyTorch in %.2f s", warm_up_torch())
    stop = stop or threading.Event()
    backoff, throttle = Backoff(base_s=0.5, cap_s=10.0), Throttle(10.0)
    announced, ran = False, 0
    registration = {**info, "since": time.time()}
    try:
        with KeepAlive(pool, worker_id, registration):  # ended before the retirement below, which it would undo
            while not stop.is_set():
                try:
                    if not announced:
                        pool.announce(worker_id, registration)
                        announced = True
                    assignment = pool.next_assignment(worker_id, MAX_BLOCK_S)
                    if assignment is None:
                        continue
                    try:
                        if run_assignment(pool.client, assignment, make_runner, worker_id, info,
                                          pool.lease_s) is not None:
                            ran += 1
                    finally:
                        pool.done(worker_id)
                except (InfrastructureError, *INFRASTRUCTURE_ERRORS) as error:
                    if throttle.ready() is not None:
                        log.warning("infrastructure failure (%s); retrying", error)
                    announced = False
                    time.sleep(backoff.next_delay())
                    continue
                backoff.reset()
    finally:
        try:
            pool.retire(worker_id)
        except INFRASTRUCTURE_ERRORS:
            log.warning("could not retire from the pool; its liveness key lapses by itself")
    return ran


__all__ = ["run_assignment", "serve_pool"]
