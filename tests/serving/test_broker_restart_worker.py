"""A real inference worker rides out a restart of the session's Kafka broker (which loses its topics: the local
broker keeps them in memory) on both consumer clients: once the requests topic is back, it serves again."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from minibatch_worker import make_worker
from test_minibatch_worker import collect, produce, run_in_thread, task_messages

from easel.kafka_io import delete_topics, ensure_topics, topic_config
from easel.redis_client import make_redis
from easel.serving import job_keys, requests_topic
from easel.settings import Settings
from predictor.gather import SERVED_CODE


@pytest.fixture
def job(settings: Settings) -> Iterator[str]:
    job_id = f"restart{uuid.uuid4().hex[:10]}"
    ensure_topics(settings, [requests_topic(job_id)], partitions=1, config=topic_config(settings))
    yield job_id
    delete_topics(settings, [requests_topic(job_id)])
    client = make_redis(settings)
    client.delete(*job_keys(job_id))
    client.close()


@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
def test_a_worker_serves_again_after_the_broker_restarted(settings: Settings, local_stack, job: str,  # noqa: ANN001
                                                          client: str) -> None:
    settings = settings.model_copy(update={"serving_kafka_client": client})
    x = np.arange(10 * 6, dtype=np.float32).reshape(10, 6)
    worker = make_worker(settings, job)

    def ensure() -> None:  # what the production worker does when it has had no partitions for a while
        ensure_topics(settings, [requests_topic(job)], partitions=1, config=topic_config(settings))

    worker.config.ensure_topic = ensure
    thread = run_in_thread(worker)
    try:
        produce(settings, job, task_messages("before", x))
        assert collect(settings, job, "before", len(x)).status.tolist() == [SERVED_CODE] * len(x)
        broker = next(p for p in local_stack.parts if p.name == "kafka")
        broker.stop()
        broker.start()
        ensure()  # the predictor re-makes its requests topic when its producer is replaced
        give_up = time.monotonic() + 120
        k = 0
        while True:
            assert time.monotonic() < give_up, "the worker did not serve again within 120 s of the restart"
            task = f"after{k}"
            try:
                produce(settings, job, task_messages(task, x))
            except Exception:  # noqa: BLE001 - the broker may not take it yet
                time.sleep(1)
                continue
            try:
                waiter = collect(settings, job, task, len(x), timeout_s=10)
            except AssertionError:
                k += 1
                continue
            if waiter.status.tolist() == [SERVED_CODE] * len(x):
                break
            k += 1
        assert thread.is_alive()
    finally:
        worker.stop.set()
        thread.join(30)
