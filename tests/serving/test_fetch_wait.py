"""The worker's hot fetch wait (inference_worker/fetch_wait.py): short while requests come, long once idle.

The rule is pure; that kafka-python's next FetchRequest carries a wait set at run time is checked on the session's
broker (no private attribute is trusted without it), and a real worker is seen to go hot on a request and back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from kafka import TopicPartition
from minibatch_worker import make_worker
from serving_helpers import wait_until
from test_minibatch_worker import collect, produce, run_in_thread, task_messages

from easel.kafka_confluent import ConfluentConsumer
from easel.kafka_io import delete_topics, ensure_topics, make_consumer, set_fetch_wait, topic_config
from easel.redis_client import make_redis
from easel.serving import job_keys, requests_topic
from easel.settings import Settings
from inference_worker.fetch_wait import FetchWait
from predictor.gather import SERVED_CODE


def test_hot_from_a_poll_with_requests_until_hot_s_pass_without_one() -> None:
    wait = FetchWait(idle_ms=10, hot_ms=2, hot_s=1.0)
    assert wait.after_poll(False, 100.0) == 10, "idle before any request"
    assert wait.after_poll(True, 100.0) == 2
    assert wait.after_poll(False, 100.9) == 2, "still within hot_s of the last request"
    assert wait.after_poll(True, 100.95) == 2
    assert wait.after_poll(False, 101.9) == 2, "hot_s counts from the latest request"
    assert wait.after_poll(False, 101.95) == 10
    assert FetchWait(idle_ms=10, hot_ms=2, hot_s=0.0).after_poll(True, 5.0) == 10, "hot_s 0: never hot"


@pytest.mark.parametrize(("field", "kwargs"), [("idle_ms", {"idle_ms": 0}), ("hot_ms", {"hot_ms": 0}),
                                               ("hot_s", {"hot_s": -1.0})])
def test_bad_waits_are_refused_by_name(field: str, kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=field):
        FetchWait(**{"idle_ms": 10, "hot_ms": 2, "hot_s": 1.0, **kwargs})  # type: ignore[arg-type]


@pytest.fixture
def job(settings: Settings) -> Iterator[str]:
    job_id = f"hot{uuid.uuid4().hex[:10]}"
    ensure_topics(settings, [requests_topic(job_id)], partitions=1, config=topic_config(settings))
    yield job_id
    delete_topics(settings, [requests_topic(job_id)])
    client = make_redis(settings)
    client.delete(*job_keys(job_id))
    client.close()


def test_kafka_python_sends_the_wait_set_at_run_time(settings: Settings, job: str) -> None:
    consumer = make_consumer(settings, group_id=None, fetch_max_wait_ms=10)
    try:
        consumer.assign([TopicPartition(requests_topic(job), 0)])
        consumer.seek_to_end()
        consumer.poll(timeout_ms=100)  # positions and the broker's metadata
        manager = consumer._fetcher._manager
        sent_waits: list[int] = []
        real_send = manager.send

        def recording_send(request: Any, *args: Any, **kwargs: Any) -> Any:  # a spy: the real send, recorded
            if type(request).__name__.startswith("FetchRequest"):
                sent_waits.append(request.max_wait_ms)
            return real_send(request, *args, **kwargs)

        manager.send = recording_send
        assert set_fetch_wait(consumer, 3)
        wait_until(lambda: consumer.poll(timeout_ms=20) is not None and 3 in sent_waits, 30,
                   "a fetch with the new wait on the wire", every_s=0.0)
        assert sent_waits[-1] == 3 and set(sent_waits) <= {10, 3}, sent_waits
    finally:
        consumer.close()


def test_librdkafka_keeps_the_wait_it_was_made_with(settings: Settings) -> None:
    consumer = ConfluentConsumer(settings, group_id=f"g-{uuid.uuid4().hex[:8]}", fetch_max_wait_ms=10)
    try:
        assert set_fetch_wait(consumer, 3) is False
    finally:
        consumer.close()


def test_a_worker_goes_hot_on_requests_and_back_to_idle(settings: Settings, job: str) -> None:
    settings = settings.model_copy(update={"serving_fetch_wait_ms": 10, "serving_hot_fetch_wait_ms": 2,
                                           "serving_hot_s": 60.0})

    def wait_ms() -> int:
        return worker.consumer._fetcher.config["fetch_max_wait_ms"]

    worker = make_worker(settings, job)
    thread = run_in_thread(worker)
    try:
        x = np.arange(6 * 6, dtype=np.float32).reshape(6, 6)
        wait_until(lambda: worker.ready.is_set() or bool(worker._assigned), 60, "the worker has its partition",
                   every_s=0.05)
        assert wait_ms() == 10, "idle before any request"
        produce(settings, job, task_messages("t1", x))
        assert collect(settings, job, "t1", len(x)).status.tolist() == [SERVED_CODE] * len(x)
        assert wait_ms() == 2, "hot within hot_s of a request"
        worker.fetch_wait.hot_s = 0.05  # the window ends
        wait_until(lambda: wait_ms() == 10, 30, "back to the idle wait", every_s=0.05)
        produce(settings, job, task_messages("t2", x))  # and serves on, hot again
        assert collect(settings, job, "t2", len(x)).status.tolist() == [SERVED_CODE] * len(x)
    finally:
        worker.stop.set()
        thread.join(30)
