"""The inference worker's consumer on librdkafka (confluent-kafka), behind the KafkaConsumer methods it uses.

Why (issue #15 item 3, measured against the local broker, benchmarks/results/serving-cpu.json): kafka-python
spends ~1 ms of Python CPU per fetch round trip on its IO thread, so an idle worker fetching every
``EASEL_SERVING_FETCH_WAIT_MS`` (10 ms) burns ~14 % of a core doing nothing, and a message's produce→consume
hop has a p50 of ~6.5 ms; librdkafka fetches from its own C threads (~6 ms CPU per second idle, hop p50
~2.8 ms). ``EASEL_SERVING_KAFKA_CLIENT=confluent-kafka`` puts it on the workers' hot path; kafka-python stays the
client everywhere else (producers, admin, tests) and the workers' default, and both are tested on the real broker.

Why it is not the default: with the predictor's producer on librdkafka too (easel/kafka_confluent_producer.py) the
1-instance overhead falls by 1.0-1.8 ms, under issue #15's 2 ms gate for the C client (benchmarks/results/
serving-c-producer-*.json). The chaos tests (tests/serving/test_chaos_serving.py) pass with both ends on it, quiet
and under two CPU hogs; an earlier run of their overload case at load 8-12, with the consumer alone on it, had
answered 1-2 tasks later than deadline + 0.5 s (not understood, not seen since).

Only what :class:`inference_worker.service.InferenceWorker` calls is here, with kafka-python's shapes:
``subscribe(topics, listener)``, ``poll(timeout_ms, max_records) -> {TopicPartition: [record]}``,
``commit({TopicPartition: OffsetAndMetadata})``, ``pause``, ``assignment``, ``highwater``, ``end_offsets``,
``position``, ``close``. Failures surface as ``kafka.errors.KafkaError`` (``CommitFailedError`` for commits), so the
worker's retry and rebalance handling is the same for both clients. librdkafka runs the rebalance callbacks
inside ``poll`` on the calling thread; the listener (:class:`easel.kafka_io.PartitionEvents`) only records
them either way.

Hazard, and how it is kept away: librdkafka 2.16 segfaults when a topic it is fetching from is *deleted* on the
local broker (Tansu). Admin deletes a job's topics only after its workers stopped; the predictor deletes a retired
requests topic generation only when no live worker names it — and a worker names the oldest generation it still
has a consumer open on until that consumer is closed (``InferenceWorker.reading_generation``). A worker the
registry no longer counts as live (no heartbeat for ``LIVE_S``) but that still fetches could crash on such a
delete; the supervisor relaunches it like any dead worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import confluent_kafka as ck
from kafka import TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from easel.backoff import Throttle
from easel.settings import Settings

log = logging.getLogger("easel.kafka")

# After a broker restart that lost the topic (the local broker keeps topics in memory), librdkafka's group
# settles on an empty assignment and does not pick the re-created topic up again, not even on a re-subscribe;
# a fresh client does. So a consumer that had partitions and has had none for this long is rebuilt (once
# per loss: a member that is simply one too many for the partitions stays as it is).
RENEW_AFTER_S = 5.0


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed message, with the attributes of kafka-python's ``ConsumerRecord`` the worker reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class ConfluentConsumer:
    """A consumer-group member on librdkafka; see the module docstring."""

    def __init__(self, settings: Settings, *, group_id: str, fetch_max_wait_ms: int,
                 max_partition_fetch_bytes: int = 1 << 20, fetch_max_bytes: int = 50 << 20,
                 max_poll_interval_ms: int = 5000) -> None:
        session_ms = settings.kafka_session_timeout_ms
        self._config = {
            "bootstrap.servers": settings.resolved_kafka_bootstrap,
            "group.id": group_id,
            "enable.auto.commit": False,  # at-least-once: the worker commits once results are published
            "auto.offset.reset": "earliest",
            "session.timeout.ms": session_ms,
            "heartbeat.interval.ms": max(100, session_ms // 4),
            "max.poll.interval.ms": max(max_poll_interval_ms, session_ms),  # librdkafka wants >= the session
            "fetch.wait.max.ms": fetch_max_wait_ms,
            "max.partition.fetch.bytes": max_partition_fetch_bytes,
            "fetch.max.bytes": fetch_max_bytes,
            "receive.message.max.bytes": fetch_max_bytes + (1 << 20),
            "topic.metadata.refresh.interval.ms": 5000,  # a topic re-created after a broker restart is seen soon
            "allow.auto.create.topics": False,  # a topic made by a metadata request would have one partition
        }
        self._consumer = self._new_client()
        self._throttle = Throttle(5.0)
        self._subscription: tuple[list[str], Any] | None = None
        self._had_partitions = False
        self._stranded_since: float | None = None  # when a consumer that had partitions was left with none
        self._checked_at = 0.0
        self.renewals = 0

    def _new_client(self) -> ck.Consumer:
        return ck.Consumer(self._config, logger=logging.getLogger("easel.kafka.librdkafka"))

    # -- the group --------------------------------------------------------------------------------------
    def subscribe(self, topics: Iterable[str], listener: Any) -> None:
        """``listener``: kafka-python's ConsumerRebalanceListener shape (given kafka-python's TopicPartition, as
        the worker keys its offsets by them); called from :meth:`poll`."""
        self._subscription = (list(topics), listener)
        self._subscribe()

    def _subscribe(self) -> None:
        assert self._subscription is not None
        topics, listener = self._subscription
        self._consumer.subscribe(
            topics,
            on_assign=lambda _consumer, parts: listener.on_partitions_assigned(_ours(parts)),
            on_revoke=lambda _consumer, parts: listener.on_partitions_revoked(_ours(parts)),
            on_lost=lambda _consumer, parts: listener.on_partitions_lost(_ours(parts)))

    def _renew_if_stranded(self) -> None:
        """See :data:`RENEW_AFTER_S`; checked at most once a second."""
        now = time.monotonic()
        if self._subscription is None or now - self._checked_at < 1.0:
            return
        self._checked_at = now
        if self._consumer.assignment():
            self._had_partitions, self._stranded_since = True, None
            return
        if not self._had_partitions:
            return
        if self._stranded_since is None:
            self._stranded_since = now
            return
        if now - self._stranded_since < RENEW_AFTER_S:
            return
        log.warning("no partitions for %.0f s since a rebalance took them: renewing the consumer",
                    now - self._stranded_since)
        self._had_partitions, self._stranded_since = False, None
        # The old client is dropped, not closed: close() leaves the group, and the local broker (Tansu) can wedge a
        # group whose members leave explicitly (the new members never get their SyncGroup answer: the chaos test's
        # broker restart stayed unserved for minutes). Dropped, confluent-kafka destroys it without leaving
        # (RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE) and the broker expires the old member after the session timeout,
        # as it does for a kafka-python worker that exits.
        self._consumer = self._new_client()
        self.renewals += 1
        self._subscribe()

    def poll(self, timeout_ms: int = 0, max_records: int = 500) -> dict[TopicPartition, list[Record]]:
        """Waits up to ``timeout_ms`` for the first message only, then takes what is already fetched (librdkafka's
        batch ``consume`` would wait out the whole timeout to fill the batch)."""
        try:
            self._renew_if_stranded()
            first = self._consumer.poll(timeout_ms / 1000)
            if first is None:
                return {}
            messages = [first, *self._consumer.consume(max_records - 1, 0)] if max_records > 1 else [first]
        except ck.KafkaException as error:
            raise KafkaError(str(error)) from None
        out: dict[TopicPartition, list[Record]] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaError(str(error))
                if self._throttle.ready() is not None:  # e.g. the topic is gone after a broker restart
                    log.warning("consumer: %s", error)
                continue
            tp = TopicPartition(message.topic(), message.partition())
            out.setdefault(tp, []).append(Record(tp.topic, tp.partition, message.offset(), message.key(),
                                                 message.value()))
        return out

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata], timeout_ms: int | None = None) -> None:
        """Synchronous, like kafka-python's; ``CommitFailedError`` when the broker refuses (a rebalance).
        ``timeout_ms`` is accepted for kafka-python's signature: librdkafka bounds a commit by its own request
        timeout."""
        try:
            self._consumer.commit(offsets=[ck.TopicPartition(tp.topic, tp.partition, meta.offset)
                                           for tp, meta in offsets.items()], asynchronous=False)
        except ck.KafkaException as error:
            raise CommitFailedError(str(error)) from None

    def pause(self, *partitions: TopicPartition) -> None:
        if partitions:
            try:
                self._consumer.pause([ck.TopicPartition(tp.topic, tp.partition) for tp in partitions])
            except ck.KafkaException as error:
                raise KafkaError(str(error)) from None

    def assignment(self) -> set[TopicPartition]:
        try:
            return {TopicPartition(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        except ck.KafkaException as error:
            raise KafkaError(str(error)) from None

    def highwater(self, tp: TopicPartition) -> int | None:
        """The partition's end offset as of the last fetch (no broker round trip), None before one."""
        try:
            _low, high = self._consumer.get_watermark_offsets(ck.TopicPartition(tp.topic, tp.partition), cached=True)
        except ck.KafkaException:
            return None
        return high if high >= 0 else None

    def end_offsets(self, partitions: list[TopicPartition], timeout_ms: int | None = None) -> dict[TopicPartition, int]:
        """The partitions' end offsets asked of the broker now (kafka-python's shape); ``KafkaError`` when it does
        not answer within ``timeout_ms``."""
        timeout = -1 if timeout_ms is None else timeout_ms / 1000
        out: dict[TopicPartition, int] = {}
        for tp in partitions:
            try:
                _low, high = self._consumer.get_watermark_offsets(ck.TopicPartition(tp.topic, tp.partition),
                                                                  timeout=timeout, cached=False)
            except ck.KafkaException as error:
                raise KafkaError(str(error)) from None
            out[tp] = high
        return out

    def position(self, tp: TopicPartition) -> int | None:
        """The next offset this consumer will read, None while it has none (nothing fetched yet)."""
        try:
            (where,) = self._consumer.position([ck.TopicPartition(tp.topic, tp.partition)])
        except ck.KafkaException:
            return None
        return where.offset if where.offset >= 0 else None

    def close(self, autocommit: bool = False) -> None:
        """Leaves the group (librdkafka always does); the worker calls it only when leaving is wanted, or on a
        requests topic generation it has finished. Offsets are committed explicitly, never here."""
        del autocommit
        self._consumer.close()


def _ours(parts: list[ck.TopicPartition]) -> list[TopicPartition]:
    """librdkafka's partitions as kafka-python's (hashable, compared by topic and partition only)."""
    return [TopicPartition(tp.topic, tp.partition) for tp in parts]


__all__ = ["ConfluentConsumer", "Record"]
