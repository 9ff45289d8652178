"""The predictor's requests producer on librdkafka (confluent-kafka), behind the KafkaProducer methods it uses.

Why (issue #15 item 3, benchmarks/results/kafka_hop.json ``producer_check_note``): a kafka-python producer's
send→ack on the local broker has a p50 of ~2.3 ms against librdkafka's ~0.6 ms. kafka-python's sender is a Python
thread that must win the GIL from the predictor's event loop before a request's mini-batches leave the process;
librdkafka sends from its own C threads. ``EASEL_SERVING_KAFKA_CLIENT=confluent-kafka`` puts librdkafka on both
ends of the requests hop (this producer and the workers' :class:`easel.kafka_confluent.ConfluentConsumer`).

Only what :class:`easel.kafka_io.ResilientProducer` calls is here, with kafka-python's shapes:
``send(topic, value, key, partition) -> future`` with ``add_errback``, ``partitions_for``, ``flush``, ``close``.
Failures surface as ``kafka.errors.KafkaError``: at once (a full buffer is kafka-python's ``KafkaTimeoutError``,
as when its ``max_block_ms`` runs out) or through the future's errbacks, so the predictor replaces a failing
producer the same way for both clients. librdkafka reports deliveries inside ``poll``; a thread of this producer
polls so that errbacks run without the event loop's help.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import confluent_kafka as ck
from kafka.errors import KafkaError, KafkaTimeoutError

from easel.settings import Settings

log = logging.getLogger("easel.kafka")

# A request's messages are worth nothing after its deadline (the predictor has answered them dropped by then), and
# a producer that cannot deliver for this long is replaced (ResilientProducer).
MESSAGE_TIMEOUT_MS = 30_000
# The most bytes queued in the client before a send is refused (kafka-python's buffer_memory is 32 MiB; whole
# mini-batch messages can be several MiB each).
BUFFER_KIB = 256 << 10
POLL_S = 0.1  # how often the delivery thread looks at its stop flag when nothing is delivered


class SendFuture:
    """What ``send`` returns: kafka-python's ``FutureRecordMetadata``, the part the predictor uses
    (``add_errback``). An errback added after the failure is called at once."""

    __slots__ = ("_errbacks", "_error", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._errbacks: list[Callable[[Exception], None]] = []
        self._error: Exception | None = None

    def add_errback(self, errback: Callable[[Exception], None]) -> SendFuture:
        with self._lock:
            error = self._error
            if error is None:
                self._errbacks.append(errback)
        if error is not None:
            errback(error)
        return self

    def _delivered(self, error: ck.KafkaError | None, _message: Any) -> None:
        if error is None:
            return
        failure = KafkaError(str(error))
        with self._lock:
            self._error, errbacks = failure, self._errbacks
            self._errbacks = []
        for errback in errbacks:
            try:
                errback(failure)
            except Exception:  # noqa: BLE001 - one errback's bug must not stop the delivery thread
                log.exception("a send's errback failed")


class ConfluentProducer:
    """A producer on librdkafka; see the module docstring. ``max_request_size`` and ``acks`` as kafka-python's."""

    def __init__(self, settings: Settings, *, max_request_size: int = 1 << 20, acks: str = "all") -> None:
        self._producer = ck.Producer({
            "bootstrap.servers": settings.resolved_kafka_bootstrap,
            "acks": acks,
            "linger.ms": 0,  # librdkafka's default waits 5 ms to fill a batch: a 1-instance request would wait too
            "enable.idempotence": False,  # as the predictor's kafka-python producer (see PredictorState.start)
            "message.max.bytes": max_request_size,
            "message.timeout.ms": MESSAGE_TIMEOUT_MS,
            "queue.buffering.max.kbytes": BUFFER_KIB,
            "socket.nagle.disable": True,  # a small request must not wait for the previous one's ACK
            "topic.metadata.refresh.interval.ms": 5000,  # a topic re-created after a broker restart is seen soon
            "allow.auto.create.topics": False,  # a topic made by a metadata request would have one partition
        }, logger=logging.getLogger("easel.kafka.librdkafka"))
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._deliver, name="confluent-producer-deliveries", daemon=True)
        self._poller.start()

    def _deliver(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(POLL_S)

    def send(self, topic: str, value: bytes | None = None, key: str | bytes | None = None,
             partition: int | None = None) -> SendFuture:
        future = SendFuture()
        try:
            if partition is None:
                self._producer.produce(topic, value=value, key=key, on_delivery=future._delivered)
            else:
                self._producer.produce(topic, value=value, key=key, partition=partition,
                                       on_delivery=future._delivered)
        except BufferError as error:
            raise KafkaTimeoutError(f"the producer's buffer is full: {error}") from None
        except ck.KafkaException as error:
            raise KafkaError(str(error)) from None
        return future

    def partitions_for(self, topic: str, timeout_s: float = 5.0) -> set[int] | None:
        """The topic's partitions, None when the broker does not know it."""
        try:
            metadata = self._producer.list_topics(topic, timeout=timeout_s)
        except ck.KafkaException as error:
            raise KafkaError(str(error)) from None
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            return None
        return set(found.partitions)

    def flush(self, timeout: float | None = None) -> None:
        """Waits up to ``timeout`` seconds (for ever with None) until every queued message is delivered or failed."""
        left = self._producer.flush(-1 if timeout is None else timeout)
        if left:
            raise KafkaTimeoutError(f"{left} messages not delivered within {timeout} s")

    def close(self, timeout: float | None = None) -> None:
        """Delivers what is queued (up to ``timeout`` s), then stops the delivery thread; the client is freed with
        this object."""
        try:
            self._producer.flush(-1 if timeout is None else timeout)
        finally:
            self._closed.set()
            self._poller.join()


__all__ = ["ConfluentProducer", "SendFuture"]
