"""The train worker service: announce, then take proposals (blocking) and run them one at a time."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time

from easel.backoff import Backoff, Throttle
from easel.faults import INFRASTRUCTURE_ERRORS, InfrastructureError
from easel.redis_client import MAX_BLOCK_S
from easel.tuning import STOP, TuningChannel
from train_worker.runner import TrialRunner

log = logging.getLogger("easel.train_worker")

TAKE_WAIT_S = MAX_BLOCK_S  # BRPOP wait; the Redis socket timeout is longer, so an idle wait is not an error


def serve(channel: TuningChannel, runner: TrialRunner, idle_timeout_s: float = 3600.0,
          backoff: Backoff | None = None) -> int:
    """Run trials until the advisor says stop (or nothing arrives for ``idle_timeout_s``). Returns the
    number of trials this worker ran.

    An infrastructure outage (Redis or PostgreSQL restarting) does not end the worker: it waits (capped,
    jittered backoff), announces itself again (a restarted Redis may have lost the registry) and goes on;
    a trial it was running is re-issued by the advisor.
    """
    runner.prepare()
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
                item = channel.take(timeout_s=TAKE_WAIT_S)
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
                log.info("trial %d: %s", item.no, status.value)
            idle_since = time.monotonic()
    finally:
        with contextlib.suppress(*INFRASTRUCTURE_ERRORS):
            channel.retire(runner.worker_id)
    return ran
