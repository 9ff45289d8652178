"""The two Kafka clients an inference worker can consume with (``EASEL_SERVING_KAFKA_CLIENT``) behave alike on
the session's real broker: the same records, positions and end offsets, commits that stick, and a pause that
stops delivery. (The worker itself runs on both in ``test_minibatch_worker.py``.)"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from easel.kafka_io import PartitionEvents, delete_topics, ensure_topics, make_producer, make_serving_consumer
from easel.settings import Settings


@pytest.fixture
def topic(settings: Settings) -> Iterator[str]:
    name = f"easel.test.consumers.{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [name], partitions=1)
    yield name
    delete_topics(settings, [name])


def produce(settings: Settings, topic: str, values: list[bytes]) -> None:
    producer = make_producer(settings, value_serializer=None)
    try:
        for value in values:
            producer.send(topic, key=b"k", value=value, partition=0)
        producer.flush(10)
    finally:
        producer.close(5)


def poll_until(consumer: object, count: int, timeout_s: float = 30.0) -> list[tuple[int, bytes, bytes]]:
    got: list[tuple[int, bytes, bytes]] = []
    give_up = time.monotonic() + timeout_s
    while len(got) < count:
        assert time.monotonic() < give_up, f"{len(got)} of {count} records"
        for tp, records in consumer.poll(timeout_ms=200, max_records=100).items():  # type: ignore[attr-defined]
            assert tp.partition == 0
            got += [(r.offset, r.key, r.value) for r in records]
    return got


@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
def test_both_clients_read_commit_report_offsets_and_pause_alike(settings: Settings, topic: str, client: str) -> None:
    settings = settings.model_copy(update={"serving_kafka_client": client})
    group = f"g-{uuid.uuid4().hex[:8]}"
    produce(settings, topic, [b"a", b"b", b"c"])
    consumer = make_serving_consumer(settings, group_id=group, fetch_max_wait_ms=10)
    events = PartitionEvents()
    consumer.subscribe([topic], listener=events)
    tp = TopicPartition(topic, 0)
    try:
        assert poll_until(consumer, 3) == [(0, b"k", b"a"), (1, b"k", b"b"), (2, b"k", b"c")]
        assert ("assigned", {tp}) in events.drain()
        assert consumer.assignment() == {tp}
        assert consumer.position(tp) == 3
        assert consumer.highwater(tp) == 3
        consumer.commit({tp: OffsetAndMetadata(2, "", -1)})  # c stays unanswered: redelivered below
        consumer.pause(*consumer.assignment())
        produce(settings, topic, [b"d"])
        assert consumer.poll(timeout_ms=500, max_records=100) == {}, "paused: nothing delivered"
        # the broker's end offset, asked now: d counts though no fetch has seen it (what a drain check relies on)
        assert consumer.end_offsets([tp], timeout_ms=10_000) == {tp: 4}
    finally:
        consumer.close()
    again = make_serving_consumer(settings, group_id=group, fetch_max_wait_ms=10)
    again.subscribe([topic], listener=PartitionEvents())
    try:
        assert [value for _offset, _key, value in poll_until(again, 2)] == [b"c", b"d"]
    finally:
        again.close()


def test_a_topic_deleted_and_re_created_is_consumed_again(settings: Settings, topic: str) -> None:
    """kafka-python only: librdkafka 2.16 (confluent-kafka) segfaults when a topic it is fetching from is deleted on
    the local broker, one reason it is not the default (a broker *restart*, which loses the topic without a
    delete, is ridden out by ``ConfluentConsumer``'s renewal; tests/serving/test_chaos_serving.py)."""
    settings = settings.model_copy(update={"serving_kafka_client": "kafka-python"})
    consumer = make_serving_consumer(settings, group_id=f"g-{uuid.uuid4().hex[:8]}", fetch_max_wait_ms=10)
    consumer.subscribe([topic], listener=PartitionEvents())
    try:
        produce(settings, topic, [b"before"])
        assert [value for *_, value in poll_until(consumer, 1)] == [b"before"]
        delete_topics(settings, [topic])
        ensure_topics(settings, [topic], partitions=1)
        give_up = time.monotonic() + 60
        got: list[bytes] = []
        while b"after" not in got:
            assert time.monotonic() < give_up, f"nothing consumed from the re-created topic ({got})"
            produce(settings, topic, [b"after"])
            for records in consumer.poll(timeout_ms=1000, max_records=100).values():
                got += [r.value for r in records]
    finally:
        consumer.close()
