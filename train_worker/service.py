"""The train worker service: announce, then take proposals (blocking) and run them one at a time.

In MOP mode the worker first owns a shard of the training set (:class:`ShardOwnership`, renewed for its whole
life) and then takes the units the advisor places on it."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time

from easel.backoff import Backoff, Throttle
from easel.faults import INFRASTRUCTURE_ERRORS, InfrastructureError
from easel.redis_client import MAX_BLOCK_S
from easel.tuning import STOP, TuningChannel
from train_worker.runner import TrialRunner

log = logging.getLogger("easel.train_worker")

TAKE_WAIT_S = MAX_BLOCK_S  # BRPOP wait; the Redis socket timeout is longer, so an idle wait is not an error


class ShardOwnership:
    """MOP mode: own one shard (the first free one) and keep it by renewing its key every ``lease_s / 3``;
    a worker that dies loses it after ``lease_s``, and its replacement takes it over."""

    def __init__(self, channel: TuningChannel, worker_id: str) -> None:
        self.channel, self.worker_id = channel, worker_id
        self.shard: int | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="shard-ownership", daemon=True)

    def ensure(self) -> int | None:
        """The shard owned now, claiming one if none is (None while every shard has an owner)."""
        if self.shard is None:
            self.shard = self.channel.claim_shard(self.worker_id)
            if self.shard is not None:
                log.info("owning shard %d", self.shard)
                if not self._thread.is_alive():
                    self._thread.start()
        return self.shard

    def release(self) -> None:
        self._done.set()
        if self.shard is not None:
            self.channel.release_shard(self.shard, self.worker_id)

    def _renew(self) -> None:
        while not self._done.wait(self.channel.lease_s / 3):
            shard = self.shard
            try:
                if shard is not None and not self.channel.renew_shard(shard, self.worker_id):
                    log.warning("lost shard %d; claiming one again", shard)
                    self.shard = None
            except Exception as error:  # noqa: BLE001 - an outage must not end the renewal; it tries again
                log.warning("shard renewal failed (%s); trying again", error)


def serve(channel: TuningChannel, runner: TrialRunner, idle_timeout_s: float = 3600.0,
          backoff: Backoff | None = None) -> int:
    """Run trials until the advisor says stop (or nothing arrives for ``idle_timeout_s``). Returns the
    number of trials this worker ran.

    An infrastructure outage (Redis or PostgreSQL restarting) does not end the worker: it waits (capped,
    jittered backoff), announces itself again (a restarted Redis may have lost the registry) and goes on;
    a trial it was running is re-issued by the advisor.
    """
    runner.prepare()
    ownership = ShardOwnership(channel, runner.worker_id) if runner.setup().budget.MOP else None
    backoff = backoff or Backoff(base_s=0.5, cap_s=10.0)
    throttle = Throttle(10.0)
    announced = False
    ran = 0
    idle_since = time.monotonic()
    try:
        while time.monotonic() - idle_since < idle_timeout_s:
            try:
                if not announced:
                    channel.announce(runner.worker_id, {"service_id": runner.service_id, "pid": os.getpid(),
                                                        "host": socket.gethostname(), "since": time.time()})
                    announced = True
                if ownership is not None:
                    ownership.ensure()
                item = channel.take(timeout_s=TAKE_WAIT_S, worker_id=runner.worker_id)
                if item == STOP:
                    break
                if item is None:
                    backoff.reset()
                    continue
                status = runner.run(item)
            except (InfrastructureError, *INFRASTRUCTURE_ERRORS) as error:
                if throttle.ready() is not None:
                    log.warning("infrastructure failure (%s); retrying", error)
                announced = False
                time.sleep(backoff.next_delay())
                idle_since = time.monotonic()
                continue
            backoff.reset()
            if status is not None:
                ran += 1
                log.info("trial %d%s: %s", item.no, "" if item.unit is None else f" unit {item.unit + 1}",
                         status.value)
            idle_since = time.monotonic()
    finally:
        runner.close()
        with contextlib.suppress(*INFRASTRUCTURE_ERRORS):
            if ownership is not None:
                ownership.release()
            channel.retire(runner.worker_id)
    return ran
