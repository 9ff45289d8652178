"""Round trips through the real Redis server and the real Kafka-protocol broker."""

from __future__ import annotations

import time
import uuid

import msgpack
from kafka import TopicPartition

from easel.kafka_io import ensure_topics, make_consumer, make_producer
from easel.redis_client import make_redis
from easel.settings import Settings


def test_redis_round_trip(settings: Settings) -> None:
    client = make_redis(settings, decode_responses=True)
    key = f"test:{uuid.uuid4()}"
    client.set(key, "value", ex=60)
    assert client.get(key) == "value"
    client.xadd(f"{key}:stream", {"event": "epoch", "score": "0.5"})
    entries = client.xrange(f"{key}:stream")
    assert entries[0][1] == {"event": "epoch", "score": "0.5"}


def _consume(consumer, want: int, timeout_s: float = 60.0) -> list:
    got: list = []
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500, max_records=want - len(got)).values():
            got.extend(records)
    return got


def test_kafka_consumer_group_commits_and_resumes(settings: Settings) -> None:
    topic = f"test-{uuid.uuid4().hex[:8]}"
    group = f"group-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [topic], partitions=2)

    producer = make_producer(settings)
    for index in range(1000):
        producer.send(topic, msgpack.packb({"index": index, "payload": [1.0, 2.0]}), key=f"task-{index % 10}")
    producer.flush()
    producer.close()

    first = make_consumer(settings, topic, group_id=group, value_deserializer=msgpack.unpackb)
    head = _consume(first, 400)
    assert len(head) == 400
    first.commit()
    partitions = {record.partition for record in head}
    first.close()

    second = make_consumer(settings, topic, group_id=group, value_deserializer=msgpack.unpackb)
    tail = _consume(second, 600)
    second.commit()
    second.close()

    seen = [record.value["index"] for record in head + tail]
    assert len(tail) == 600
    assert sorted(seen) == list(range(1000)), "every message exactly once across the two consumers"
    all_partitions = partitions | {record.partition for record in tail}
    assert all_partitions == {0, 1}

    # The committed offsets add up to every message.
    checker = make_consumer(settings, group_id=group, value_deserializer=msgpack.unpackb)
    committed = sum(checker.committed(TopicPartition(topic, p)) or 0 for p in (0, 1))
    checker.close()
    assert committed == 1000
