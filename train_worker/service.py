"""The train worker service: announce, then take proposals (blocking) and run them one at a time."""

from __future__ import annotations

import logging
import os
import socket
import time

from easel.tuning import STOP, TuningChannel
from train_worker.runner import TrialRunner

log = logging.getLogger("easel.train_worker")


def serve(channel: TuningChannel, runner: TrialRunner, idle_timeout_s: float = 3600.0) -> int:
    """Run trials until the advisor says stop (or nothing arrives for ``idle_timeout_s``). Returns the
    number of trials this worker ran."""
    runner.prepare()
    channel.announce(runner.worker_id, {"service_id": runner.service_id, "pid": os.getpid(),
                                        "host": socket.gethostname(), "since": time.time()})
    ran = 0
    idle_since = time.monotonic()
    try:
        while time.monotonic() - idle_since < idle_timeout_s:
            item = channel.take(timeout_s=5)
            if item == STOP:
                break
            if item is None:
                continue
            status = runner.run(item)
            if status is not None:
                ran += 1
                log.info("trial %d: %s", item.no, status.value)
            idle_since = time.monotonic()
    finally:
        channel.retire(runner.worker_id)
    return ran
