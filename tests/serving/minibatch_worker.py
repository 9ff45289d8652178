"""A real inference worker with a tiny template, for the wire tests (imported by name, like ``serving_helpers``).

:func:`make_worker` is the production :class:`~inference_worker.service.InferenceWorker` on the test session's
Kafka broker and Redis; only the model is small: :class:`EchoTemplate` answers each instance with
``[rate, sum of its values]``, so a test can tell that every instance's bytes arrived intact.

Run as a script, it is a worker process a test can kill: ``python minibatch_worker.py JOB --die-on-call 2
--no-commit`` publishes the results of its first mini-batch (it publishes each mini-batch's answers alone) and
is SIGKILLed by its template on the second, never having committed — the window between publishing and
committing in which a worker can die.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import uuid
from typing import Any

import numpy as np

from easel.kafka_io import make_serving_consumer
from easel.redis_client import make_redis
from easel.serving import consumer_group, requests_topic
from easel.settings import Settings, get_settings
from inference_worker.metrics import WorkerMetrics
from inference_worker.model import ServedModel
from inference_worker.policy import LivePolicy
from inference_worker.service import InferenceWorker, WorkerConfig

BATCH = 4
RATES, ACCURACIES, TIMES = (1.0, 0.5), (0.9, 0.8), (0.002, 0.001)


class EchoTemplate:
    def __init__(self, die_on_call: int | None = None) -> None:
        self.calls = 0
        self.die_on_call = die_on_call

    def predict(self, queries: Any, rate: float) -> list[list[float]]:
        self.calls += 1
        if self.calls == self.die_on_call:
            os.kill(os.getpid(), signal.SIGKILL)
        rows = np.asarray(queries, dtype=np.float64).reshape(len(queries), -1)
        return [[rate, float(total)] for total in rows.sum(axis=1)]


def make_worker(settings: Settings, job_id: str, template: EchoTemplate | None = None,
                worker_id: str | None = None, every_generation: bool = False, publish: dict[str, Any] | None = None,
                **consumer_options: Any) -> InferenceWorker:
    """``every_generation``: follow the generations of the job's requests topic the predictor lists, as the
    production worker does, instead of reading its first generation alone. ``publish``: the ``publish_*`` fields
    of :class:`WorkerConfig` (how served answers are gathered into results entries)."""
    model = ServedModel(template or EchoTemplate(), RATES, ACCURACIES, TIMES)  # type: ignore[arg-type]
    live = LivePolicy("scheduler", RATES, ACCURACIES, TIMES)

    def consumer_for(generation: int) -> Any:
        return make_serving_consumer(settings, group_id=consumer_group(job_id, generation),
                                     fetch_max_wait_ms=settings.serving_fetch_wait_ms, **consumer_options)

    config = WorkerConfig(job_id=job_id, worker_id=worker_id or f"worker-{uuid.uuid4().hex[:8]}",
                          topic=requests_topic(job_id), batch_size=BATCH, policy="scheduler", margin_s=0.0,
                          drain_s=2.0, consumer_for=consumer_for if every_generation else None, **(publish or {}))
    consumer = consumer_for(0)
    return InferenceWorker(config, consumer, model, live, make_redis(settings), WorkerMetrics(RATES))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("job_id")
    parser.add_argument("--worker-id", default=None)
    parser.add_argument("--die-on-call", type=int, default=None)
    parser.add_argument("--no-commit", action="store_true")
    args = parser.parse_args()
    worker = make_worker(get_settings(), args.job_id, EchoTemplate(args.die_on_call), args.worker_id,
                         publish={"publish_mini_batches": 1})
    if args.no_commit:
        worker.commit = lambda partitions=None: None  # type: ignore[method-assign]
    signal.signal(signal.SIGTERM, lambda _signum, _frame: worker.stop.set())
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
