"""Kafka producer/consumer helpers (kafka-python) with the settings the brokers we run need.

Tansu (the local broker) and kafka-python only complete a consumer-group join quickly with a short
rebalance timeout, which kafka-python takes from ``max_poll_interval_ms``; hence the small default here.
Consumers commit offsets explicitly (at-least-once): callers commit after their results are published.
Values travel as the bytes the caller encoded (the serving wire format is :mod:`easel.serving`'s); keys
may be given as text.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.serializer import DeserializeWrapper, SerializeWrapper

from easel.settings import Settings

# A few seconds: long enough for one scheduled batch, short enough that a group join is quick on Tansu.
GROUP_MAX_POLL_INTERVAL_MS = 5000
GROUP_SESSION_TIMEOUT_MS = 6000
GROUP_HEARTBEAT_MS = 1000


def make_producer(settings: Settings, **kwargs: object) -> KafkaProducer:
    options: dict[str, object] = {
        "bootstrap_servers": settings.resolved_kafka_bootstrap.split(","),
        "key_serializer": SerializeWrapper(lambda key: key.encode() if isinstance(key, str) else key),
        "acks": "all",
        "linger_ms": 0,
    }
    options.update(kwargs)
    return KafkaProducer(**options)


def make_consumer(settings: Settings, *topics: str, group_id: str | None, **kwargs: object) -> KafkaConsumer:
    options: dict[str, object] = {
        "bootstrap_servers": settings.resolved_kafka_bootstrap.split(","),
        "group_id": group_id,
        "key_deserializer": DeserializeWrapper(lambda key: key.decode() if key is not None else None),
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_interval_ms": GROUP_MAX_POLL_INTERVAL_MS,
        "session_timeout_ms": GROUP_SESSION_TIMEOUT_MS,
        "heartbeat_interval_ms": GROUP_HEARTBEAT_MS,
    }
    options.update(kwargs)
    return KafkaConsumer(*topics, **options)


def ensure_topics(settings: Settings, topics: Iterable[str], partitions: int = 1) -> None:
    """Create topics that do not exist yet (idempotent)."""
    admin = KafkaAdminClient(bootstrap_servers=settings.resolved_kafka_bootstrap.split(","))
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(name, partitions, 1) for name in topics if name not in existing]
        if wanted:
            # Another service may create it between our list and create.
            with suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
    finally:
        admin.close()


def delete_topics(settings: Settings, topics: Iterable[str]) -> list[str]:
    """Delete those of ``topics`` that exist; returns the ones deleted."""
    admin = KafkaAdminClient(bootstrap_servers=settings.resolved_kafka_bootstrap.split(","))
    try:
        doomed = sorted(set(topics) & set(admin.list_topics()))
        if doomed:
            admin.delete_topics(doomed)
        return doomed
    finally:
        admin.close()
