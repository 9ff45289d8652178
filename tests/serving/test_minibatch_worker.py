"""Mini-batch messages through a real inference worker, the session's Kafka broker and Redis.

The worker is the production one (``minibatch_worker.make_worker``) with a tiny template that echoes each
instance's sum, so every answer proves its instance's bytes arrived intact. Assertions are counts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from kafka import TopicPartition
from minibatch_worker import BATCH, make_worker
from serving_helpers import wait_until

from easel.kafka_io import delete_topics, ensure_topics, make_producer, topic_config
from easel.redis_client import make_redis
from easel.serving import dead_letters_stream, deal_mini_batches, job_keys, requests_topic, results_stream
from easel.serving_wire import Results, decode_entry, encode_mini_batch, message_key
from easel.settings import Settings
from inference_worker.service import InferenceWorker
from predictor.gather import DROPPED_CODE, SERVED_CODE, TaskWaiter

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.fixture
def job(settings: Settings) -> Iterator[str]:
    job_id = f"wire{uuid.uuid4().hex[:10]}"
    ensure_topics(settings, [requests_topic(job_id)], partitions=1, config=topic_config(settings))
    yield job_id
    delete_topics(settings, [requests_topic(job_id)])
    client = make_redis(settings)
    client.delete(*job_keys(job_id))
    client.close()


@pytest.fixture(params=["kafka-python", "confluent-kafka"])
def client_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """Both Kafka clients a worker can consume with (``EASEL_SERVING_KAFKA_CLIENT``)."""
    return settings.model_copy(update={"serving_kafka_client": request.param})


def task_messages(task: str, x: np.ndarray, per_message: int = 1) -> list[tuple[bytes, bytes]]:
    """The messages the predictor sends for a task of ``x`` on one partition (the last mini-batch partial), with
    ``per_message`` mini-batches in each."""
    deadline_at, now = time.time() + 60, time.time()
    return [(message_key(task, start, stop - start), encode_mini_batch(task, start, deadline_at, len(x), share, now,
                                                                       x[start:stop]))
            for _part, start, stop, share in deal_mini_batches(len(x), [0], BATCH, per_message=per_message)]


def produce(settings: Settings, job_id: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = make_producer(settings, value_serializer=None)
    try:
        for key, value in messages:
            producer.send(requests_topic(job_id), key=key, value=value, partition=0)
        producer.flush(10)
    finally:
        producer.close(5)


def collect(settings: Settings, job_id: str, task: str, n: int, until_report_from: str | None = None,
            timeout_s: float = 60.0) -> TaskWaiter:
    """Read the job's results stream as the predictor does, into a waiter for ``task``: until every instance
    has an answer (and, if asked, the named worker has sent its share's report)."""
    waiter = TaskWaiter(n, time.perf_counter())
    client = make_redis(settings)
    last = "0-0"
    give_up = time.monotonic() + timeout_s
    try:
        while waiter.remaining or (until_report_from and not any(r.get("worker") == until_report_from
                                                                  for r in waiter.reports)):
            assert time.monotonic() < give_up, f"{waiter.remaining} of {n} instances unanswered"
            for _stream, entries in client.xread({results_stream(job_id): last}, block=500) or ():
                for entry_id, fields in entries:
                    last = entry_id
                    message = decode_entry(fields[b"m"])
                    if isinstance(message, Results) and message.task == task:
                        waiter.answer(message, time.perf_counter())
                        if message.report:
                            waiter.reports.append(message.report)
    finally:
        client.close()
    return waiter


def echoed_sums(waiter: TaskWaiter) -> dict[int, float]:
    return {i: float(row[1]) for block in waiter.blocks for i, row in zip(block.indices.tolist(), block.outputs,
                                                                          strict=True)}


def run_in_thread(worker: InferenceWorker) -> threading.Thread:
    thread = threading.Thread(target=worker.run, name="test-worker", daemon=True)
    thread.start()
    return thread


def test_a_corrupt_header_is_dead_lettered_and_its_instances_answered_dropped(client_settings: Settings,
                                                                            job: str) -> None:
    settings = client_settings
    n = 10  # mini-batches of 4, 4 and 2: the instances do not divide into mini-batches
    x = np.arange(n * 6, dtype=np.float32).reshape(n, 6)
    messages = task_messages("bad", x)
    key, value = messages[0]
    messages[0] = (key, value[:14] + bytes([value[14] ^ 0xFF]) + value[15:])  # one bit pattern of the header
    worker = make_worker(settings, job)
    thread = run_in_thread(worker)
    try:
        produce(settings, job, messages)
        waiter = collect(settings, job, "bad", n)
        assert waiter.status.tolist() == [DROPPED_CODE] * 4 + [SERVED_CODE] * 6
        assert echoed_sums(waiter) == {i: float(x[i].sum()) for i in range(4, n)}, "the rest served intact"
        assert worker.metrics.registry.get_sample_value("easel_worker_dead_letters_total") == 1
        client = make_redis(settings)
        try:
            letters = client.xrange(dead_letters_stream(job))
        finally:
            client.close()
        assert len(letters) == 1 and b"checksum" in letters[0][1][b"reason"] and letters[0][1][b"key"] == key
        # The worker survived: the next task is served whole, and the dead letter's offset was committed.
        produce(settings, job, task_messages("good", x))
        assert collect(settings, job, "good", n).status.tolist() == [SERVED_CODE] * n
        assert thread.is_alive()
        wait_until(lambda: worker.offsets.committed_offset(TopicPartition(requests_topic(job), 0)) == 2 * len(messages), 20, "every offset committed",
                   every_s=0.05)
    finally:
        worker.stop.set()
        thread.join(30)


def test_a_mini_batch_redelivered_after_its_worker_died_is_answered_once(client_settings: Settings,
                                                                         job: str) -> None:
    redelivered_after_a_death_answered_once(client_settings, job, per_message=1)


def test_a_message_of_several_mini_batches_redelivered_after_its_worker_died_is_answered_once(
        settings: Settings, job: str) -> None:
    """One message holds the task's three mini-batches: the victim answers the first and dies, so the message's
    offset is not answered (two parts left) and the survivor is redelivered all of it."""
    redelivered_after_a_death_answered_once(settings, job, per_message=3)


def redelivered_after_a_death_answered_once(settings: Settings, job: str, per_message: int) -> None:
    n = 10
    x = np.arange(n * 6, dtype=np.float32).reshape(n, 6)
    messages = task_messages("task", x, per_message)
    assert len(messages) == (3 if per_message == 1 else 1)
    produce(settings, job, messages)
    # The victim publishes its first mini-batch's answers and dies (SIGKILL) before committing anything.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "EASEL_SERVING_KAFKA_CLIENT": settings.serving_kafka_client}
    victim = subprocess.run([sys.executable, str(HERE / "minibatch_worker.py"), job, "--worker-id", "worker-victim",
                             "--die-on-call", "2", "--no-commit"], env=env, timeout=120, capture_output=True)
    assert victim.returncode == -9, victim.stderr.decode()[-2000:]
    survivor = make_worker(settings, job, worker_id="worker-survivor")
    thread = run_in_thread(survivor)
    try:
        waiter = collect(settings, job, "task", n, until_report_from="worker-survivor", timeout_s=90)
        # Everything was redelivered to the survivor (nothing was committed), so it answered all three
        # mini-batches; the first was answered by the victim too, and each instance counts once.
        assert waiter.status.tolist() == [SERVED_CODE] * n
        names = [waiter.worker_names[w] for w in waiter.workers.tolist()]
        assert names == ["worker-victim"] * 4 + ["worker-survivor"] * 6
        assert waiter.duplicates == 4
        assert echoed_sums(waiter) == {i: float(x[i].sum()) for i in range(n)}
        report = next(r for r in waiter.reports if r.get("worker") == "worker-survivor")
        assert (report["instances"], report["served"]) == (n, n)
        wait_until(lambda: survivor.offsets.committed_offset(TopicPartition(requests_topic(job), 0)) == len(messages),
                   20, "the survivor's commit", every_s=0.05)
    finally:
        survivor.stop.set()
        thread.join(30)


def test_a_share_s_served_mini_batches_go_out_in_one_results_entry(settings: Settings, job: str) -> None:
    """Three mini-batches of one width, one entry: their adjacent ranges as one, its outputs one block, the share's report."""
    n = 10
    x = np.arange(n * 6, dtype=np.float32).reshape(n, 6)
    worker = make_worker(settings, job, publish={"publish_after_s": 600.0})
    thread = run_in_thread(worker)
    try:
        produce(settings, job, task_messages("one", x, per_message=3))
        waiter = collect(settings, job, "one", n, until_report_from=worker.config.worker_id)
        assert waiter.status.tolist() == [SERVED_CODE] * n
        assert echoed_sums(waiter) == {i: float(x[i].sum()) for i in range(n)}
        client = make_redis(settings)
        try:
            entries = [decode_entry(fields[b"m"]) for _id, fields in client.xrange(results_stream(job))]
        finally:
            client.close()
        served = [e for e in entries if isinstance(e, Results) and e.task == "one"]
        assert len(served) == 1 and served[0].ranges == [(0, 10)] and served[0].report is not None  # adjacent: merged
    finally:
        worker.stop.set()
        thread.join(30)


class SlowToClose:
    """Stands in for a finished generation's consumer whose close takes a while (leaving a group can)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def close(self, autocommit: bool = False) -> None:
        self.release.wait(30)


def test_a_worker_names_an_old_generation_until_its_consumer_is_closed(settings: Settings, job: str) -> None:
    """The predictor deletes a generation only below every live worker's named one; a consumer still open on a
    deleted topic would crash librdkafka, so the old generation stays named until its close returns."""
    worker = make_worker(settings, job)
    reader = worker._readers.pop(0)  # as if it had moved on to generation 3 and closed its generation 2
    reader.generation, worker._generation = 3, 3
    worker._readers[3] = reader
    old = SlowToClose()
    worker._close_in_background(old, 2)
    assert worker.reading_generation() == 2
    old.release.set()
    wait_until(lambda: worker.reading_generation() == 3, 10, "the old generation no longer named", every_s=0.01)
    assert worker._reannounce.is_set(), "the registry is told at the next poll"
