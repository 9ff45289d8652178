"""The two Kafka clients the predictor can send requests with (``EASEL_SERVING_KAFKA_CLIENT``) behave alike on the
session's real broker: records land on the partition asked with their keys and values, ``partitions_for`` knows
the topic's partitions, and a send the client refuses marks the :class:`ResilientProducer` broken so that
the next send goes through a fresh producer. (The whole predictor runs on both in ``test_topic_rotation.py``.)"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import confluent_kafka as ck
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from easel.kafka_confluent_producer import SendFuture
from easel.kafka_io import ResilientProducer, delete_topics, ensure_topics, make_serving_producer
from easel.settings import Settings

CLIENTS = ["kafka-python", "confluent-kafka"]
LIMIT = 64 << 10  # the largest request either producer is allowed here


@pytest.fixture
def topic(settings: Settings) -> Iterator[str]:
    name = f"easel.test.producers.{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [name], partitions=2)
    yield name
    delete_topics(settings, [name])


def read_all(settings: Settings, topic: str, count: int, timeout_s: float = 30.0) -> list[tuple[int, bytes, bytes]]:
    """``(partition, key, value)`` of the topic's first ``count`` records, in offset order per partition."""
    consumer = KafkaConsumer(bootstrap_servers=settings.resolved_kafka_bootstrap.split(","), group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    got: list[tuple[int, bytes, bytes]] = []
    give_up = time.monotonic() + timeout_s
    try:
        while len(got) < count:
            assert time.monotonic() < give_up, f"{len(got)} of {count} records"
            for tp, records in consumer.poll(timeout_ms=200).items():
                got += [(tp.partition, r.key, r.value) for r in records]
    finally:
        consumer.close()
    return got


@pytest.mark.parametrize("client", CLIENTS)
def test_both_clients_deliver_to_the_partition_asked_and_know_the_partitions(settings: Settings, topic: str,
                                                                             client: str) -> None:
    settings = settings.model_copy(update={"serving_kafka_client": client})
    producer = make_serving_producer(settings, max_request_size=LIMIT)
    try:
        assert producer.partitions_for(topic) == {0, 1}
        sent = [(i % 2, f"task/{i}+1".encode(), bytes([i]) * (i + 1)) for i in range(6)]
        for partition, key, value in sent:
            producer.send(topic, value=value, key=key, partition=partition)
        producer.flush(10)
    finally:
        producer.close(5)
    got = read_all(settings, topic, len(sent))
    assert sorted(got) == sorted(sent)
    assert [g for g in got if g[0] == 1] == [s for s in sent if s[0] == 1], "one partition's records in send order"


@pytest.mark.parametrize("client", CLIENTS)
def test_a_refused_send_replaces_the_producer(settings: Settings, topic: str, client: str) -> None:
    """A message over the producer's request limit is refused by both clients as a ``KafkaError``: the error reaches
    the caller's ``on_error``, the producer is replaced, and the next send is delivered by the new one."""
    settings = settings.model_copy(update={"serving_kafka_client": client})
    made: list[object] = []

    def factory() -> object:
        made.append(make_serving_producer(settings, max_request_size=LIMIT))
        return made[-1]

    resilient = ResilientProducer(factory)  # type: ignore[arg-type]
    errors: list[Exception] = []
    try:
        resilient.send(topic, value=b"x" * (2 * LIMIT), key=b"big", partition=0, on_error=errors.append)
        assert len(errors) == 1 and isinstance(errors[0], KafkaError)
        assert not resilient.healthy and resilient.failed_sends == 1
        resilient.send(topic, value=b"small", key=b"ok", partition=1, on_error=errors.append)
        resilient.flush(10)
        assert len(made) == 2 and resilient.replaced == 1, "the next send went through a fresh producer"
        assert len(errors) == 1
    finally:
        resilient.close(5)
    assert read_all(settings, topic, 1) == [(1, b"ok", b"small")]


def test_a_delivery_failure_reaches_every_errback_once() -> None:
    """librdkafka reports a failed delivery later, on the producer's delivery thread: errbacks added before it are
    called with a ``KafkaError`` then, one added after it at once (kafka-python's future does the same)."""
    future = SendFuture()
    early: list[Exception] = []
    late: list[Exception] = []
    future.add_errback(early.append)
    future._delivered(None, None)  # a delivery that succeeded calls nothing
    assert early == []
    failure = threading.Thread(target=future._delivered, args=(ck.KafkaError(ck.KafkaError._MSG_TIMED_OUT), None))
    failure.start()
    failure.join()
    future.add_errback(late.append)
    assert len(early) == 1 and isinstance(early[0], KafkaError) and "timed out" in str(early[0]).lower()
    assert late == early
