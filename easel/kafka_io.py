"""Kafka producer/consumer helpers (kafka-python) with the settings the brokers we run need.

Tansu (the local broker) and kafka-python only complete a consumer-group join quickly with a short
rebalance timeout, which kafka-python takes from ``max_poll_interval_ms``; hence the small default here.
Consumers commit offsets explicitly (at-least-once): callers commit after their results are published.
Values travel as the bytes the caller encoded (the serving wire format is :mod:`easel.serving`'s); keys
may be given as text.

Faults: kafka-python runs rebalance callbacks on its IO thread, where any blocking call (a synchronous
``commit``, a Redis round trip) either raises "Cannot block on net.run() from the IO thread" or stalls the
heartbeats, so :class:`PartitionEvents` only *records* what was revoked or assigned and the poll thread acts on
it (and commits) after ``poll`` returns. :class:`ResilientProducer` replaces a producer that hit a fatal
error (a broker restart can leave one with an unknown producer id for good) instead of failing forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import Any, Protocol

from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.serializer import DeserializeWrapper, SerializeWrapper

from easel.backoff import Throttle
from easel.settings import Settings

log = logging.getLogger("easel.kafka")

# A few seconds: long enough for one scheduled batch, short enough that a group join is quick on Tansu.
GROUP_MAX_POLL_INTERVAL_MS = 5000


class SendsRecords(Protocol):
    """What :class:`ResilientProducer` needs of a producer: kafka-python's ``KafkaProducer`` shape, which
    :class:`easel.kafka_confluent_producer.ConfluentProducer` has too."""

    def send(self, topic: str, value: Any = None, key: Any = None, partition: int | None = None) -> Any: ...

    def partitions_for(self, topic: str) -> set[int] | None: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self, timeout: float | None = None) -> None: ...


def make_producer(settings: Settings, **kwargs: object) -> KafkaProducer:
    options: dict[str, object] = {
        "bootstrap_servers": settings.resolved_kafka_bootstrap.split(","),
        "key_serializer": SerializeWrapper(lambda key: key.encode() if isinstance(key, str) else key),
        "acks": "all",
        "linger_ms": 0,
        "allow_auto_create_topics": False,  # a topic made by a metadata request would have one partition
    }
    options.update(kwargs)
    return KafkaProducer(**options)


def make_serving_producer(settings: Settings, *, max_request_size: int) -> SendsRecords:
    """The predictor's requests producer on the client ``EASEL_SERVING_KAFKA_CLIENT`` names: kafka-python's
    ``KafkaProducer`` (the default) or :class:`easel.kafka_confluent_producer.ConfluentProducer` (librdkafka, the same
    methods). Values are bytes; a key may be str."""
    if settings.serving_kafka_client == "confluent-kafka":
        from easel.kafka_confluent_producer import ConfluentProducer

        return ConfluentProducer(settings, max_request_size=max_request_size)
    return make_producer(settings, value_serializer=None, batch_size=1 << 20, max_block_ms=2000,
                         enable_idempotence=False, max_request_size=max_request_size)


def make_consumer(settings: Settings, *topics: str, group_id: str | None, **kwargs: object) -> KafkaConsumer:
    options: dict[str, object] = {
        "bootstrap_servers": settings.resolved_kafka_bootstrap.split(","),
        "group_id": group_id,
        "key_deserializer": DeserializeWrapper(lambda key: key.decode() if key is not None else None),
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_interval_ms": GROUP_MAX_POLL_INTERVAL_MS,
        # A killed member holds its partitions until its session times out: this is most of the time a
        # worker's death costs (on Tansu: ~10 s at 6 s, ~3 s at 2 s). Heartbeats (a thread of their own) at a
        # quarter of it leave room for three late ones on a busy machine.
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": max(100, settings.kafka_session_timeout_ms // 4),
        # a topic re-created after a broker restart (the local broker keeps topics in memory) is noticed soon
        "metadata_max_age_ms": 5000,
        "allow_auto_create_topics": False,  # a topic made by a metadata request would have one partition
    }
    options.update(kwargs)
    return KafkaConsumer(*topics, **options)


def make_serving_consumer(settings: Settings, *, group_id: str, fetch_max_wait_ms: int,
                          max_partition_fetch_bytes: int = 1 << 20, fetch_max_bytes: int = 50 << 20) -> Any:
    """An inference worker's consumer on the client ``EASEL_SERVING_KAFKA_CLIENT`` names: kafka-python's
    ``KafkaConsumer`` (the default) or :class:`easel.kafka_confluent.ConfluentConsumer` (librdkafka, the same
    methods). Keys and values come as bytes."""
    if settings.serving_kafka_client == "confluent-kafka":
        from easel.kafka_confluent import ConfluentConsumer

        return ConfluentConsumer(settings, group_id=group_id, fetch_max_wait_ms=fetch_max_wait_ms,
                                 max_partition_fetch_bytes=max_partition_fetch_bytes, fetch_max_bytes=fetch_max_bytes,
                                 max_poll_interval_ms=GROUP_MAX_POLL_INTERVAL_MS)
    return make_consumer(settings, group_id=group_id, key_deserializer=None, fetch_max_wait_ms=fetch_max_wait_ms,
                         max_partition_fetch_bytes=max_partition_fetch_bytes, fetch_max_bytes=fetch_max_bytes)


REVOKED = "revoked"
ASSIGNED = "assigned"


class PartitionEvents(ConsumerRebalanceListener):
    """A rebalance listener that never blocks: it queues ``(REVOKED|ASSIGNED, {TopicPartition, ...})`` in the order
    the group protocol delivers them, and the poll thread handles them with :meth:`drain` after each ``poll``
    (before the records that poll returned, which belong to the new assignment)."""

    def __init__(self) -> None:
        self._events: deque[tuple[str, set[TopicPartition]]] = deque()
        self._lock = threading.Lock()

    def on_partitions_revoked(self, revoked: Any) -> None:
        with self._lock:
            self._events.append((REVOKED, set(revoked)))

    def on_partitions_assigned(self, assigned: Any) -> None:
        with self._lock:
            self._events.append((ASSIGNED, set(assigned)))

    def on_partitions_lost(self, lost: Any) -> None:  # evicted from the group: the same as revoked for us
        self.on_partitions_revoked(lost)

    def drain(self) -> list[tuple[str, set[TopicPartition]]]:
        with self._lock:
            events = list(self._events)
            self._events.clear()
        return events


class ResilientProducer:
    """A producer that is replaced, not given up on, after a fatal error.

    ``send`` failures (raised at once or reported later through the future) mark the current producer broken;
    the next ``send`` builds a fresh one with ``factory``. Failures are logged at most once per
    ``log_every_s`` with a count, so a broker outage cannot flood the log.
    """

    def __init__(self, factory: Callable[[], SendsRecords], log_every_s: float = 5.0,
                 suspect_s: float = 30.0) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._producer: SendsRecords | None = None
        self._broken = False
        self._renew = False
        self._throttle = Throttle(log_every_s)
        self._suspect_s = suspect_s
        self._failed_at = float("-inf")
        self.replaced = 0
        self.failed_sends = 0

    @property
    def healthy(self) -> bool:
        """No send failed in the last ``suspect_s``: a send will not block (callers on an event loop send
        inline only then, and from a thread otherwise)."""
        return not self._broken and time.monotonic() - self._failed_at > self._suspect_s

    def renew(self) -> None:
        """Send with a fresh producer from the next send on (the current one is closed in the background). A
        producer keeps asking the broker about every topic it has sent to, and the local broker re-creates a
        deleted topic that a client asks about: after moving to a new topic, the old one must be forgotten."""
        with self._lock:
            self._renew = self._producer is not None

    def _current(self) -> SendsRecords:
        with self._lock:
            if self._producer is None or self._broken or self._renew:
                old, self._producer = self._producer, None
                if old is not None:
                    self.replaced += 0 if self._renew and not self._broken else 1
                    threading.Thread(target=_close_quietly, args=(old,), daemon=True).start()
                self._renew = False
                self._producer = self._factory()
                self._broken = False
            return self._producer

    def partitions_for(self, topic: str) -> set[int] | None:
        return self._current().partitions_for(topic)

    def send(self, topic: str, *, value: Any, key: Any = None, partition: int | None = None,
             on_error: Callable[[Exception], None] | None = None) -> None:
        producer = self._current()
        try:
            future = producer.send(topic, value=value, key=key, partition=partition)
        except KafkaError as error:
            self._failed(producer, error)
            if on_error is not None:
                on_error(error)
            return

        def errback(error: Exception) -> None:
            self._failed(producer, error)
            if on_error is not None:
                on_error(error)

        future.add_errback(errback)

    def _failed(self, producer: SendsRecords, error: Exception) -> None:
        with self._lock:
            self.failed_sends += 1
            self._failed_at = time.monotonic()
            if producer is self._producer:
                self._broken = True
        held = self._throttle.ready()
        if held is not None:
            log.error("send failed (%s); the producer will be replaced%s", error,
                      f" ({held} more failures since the last report)" if held else "")

    def flush(self, timeout_s: float | None = None) -> None:
        with self._lock:
            producer = self._producer
        if producer is not None:
            producer.flush(timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout_s)


def _close_quietly(producer: SendsRecords) -> None:
    with suppress(Exception):
        producer.close(1)


def topic_config(settings: Settings) -> dict[str, str]:
    """A requests topic's settings: a request message is worth nothing after its deadline, so the broker
    keeps it only ``EASEL_SERVING_TOPIC_RETENTION_S`` (not for the job's whole life)."""
    retention_ms = str(int(settings.serving_topic_retention_s * 1000))
    return {"retention.ms": retention_ms, "cleanup.policy": "delete", "segment.ms": retention_ms}


def ensure_topics(settings: Settings, topics: Iterable[str], partitions: int = 1,
                  config: dict[str, str] | None = None) -> None:
    """Create topics that do not exist yet (idempotent), with ``config`` (e.g. retention) if given."""
    admin = KafkaAdminClient(bootstrap_servers=settings.resolved_kafka_bootstrap.split(","))
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(name, partitions, 1, topic_configs=dict(config or {})) for name in topics
                  if name not in existing]
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
