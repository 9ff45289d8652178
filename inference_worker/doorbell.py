"""The requests doorbell: an idle worker waits on a Redis channel instead of on a Kafka fetch the broker holds.

Why (issue #15 (c), measured with ``benchmarks/serving.py --sections c``): the local broker (Tansu) holds an empty
fetch for its whole ``fetch.max.wait`` even when a message arrives meanwhile, so a request reaching an idle worker
waited on average half the fetch wait (5 ms at 10 ms), and a shorter wait costs CPU in the broker and, with
kafka-python, in every idle worker (~1 ms of Python per fetch). Instead, once a poll comes back empty, the worker
*pauses* its partitions (no fetch is sent) and blocks on ``doorbell_channel(job)`` for at most
``EASEL_SERVING_IDLE_WAIT_MS``; the predictor publishes there once the broker has *acknowledged* a request message
(so the fetch that follows the ring finds it), and the worker resumes and fetches at once.

The ring is only a hint: a message that comes without one (a lost ring, a redelivery after a rebalance) is read
at the next wake-up at the latest, one idle wait later. Kafka stays the only carrier of requests; nothing is read
from the channel but the wake-up itself. While Redis cannot be reached the worker does not idle at all (it polls
as before) and retries the subscription after ``RETRY_S``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import redis
from redis.client import PubSub

from easel.backoff import Throttle

log = logging.getLogger("easel.inference_worker")

RETRY_S = 1.0  # after a Redis error, how long the worker polls plainly before subscribing again
STOP_CHECK_S = 0.25  # a long idle wait looks at the stop flag this often


class Doorbell:
    """The worker's side of the doorbell: ``wait`` until rung or timed out."""

    def __init__(self, client: redis.Redis, channel: str) -> None:
        self._client = client
        self.channel = channel
        self._pubsub: PubSub | None = None
        self._retry_at = 0.0
        self._throttle = Throttle(30.0)

    def _subscribed(self) -> PubSub | None:
        if self._pubsub is None and time.monotonic() >= self._retry_at:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
            except redis.RedisError as error:
                self._failed(pubsub, error)
                return None
            self._pubsub = pubsub
        return self._pubsub

    def ready(self) -> bool:
        """Subscribed (or subscribing now succeeded): a wait can be rung."""
        return self._subscribed() is not None

    def wait(self, timeout_s: float, stop: threading.Event | None = None) -> bool | None:
        """True when rung (every ring already queued is consumed with it), False after ``timeout_s`` without a
        ring (or once ``stop`` is set, looked at every ``STOP_CHECK_S``), None when the doorbell cannot be used
        now (Redis away): then the caller should not idle."""
        pubsub = self._subscribed()
        if pubsub is None:
            return None
        give_up = time.monotonic() + timeout_s
        try:
            while True:
                left = give_up - time.monotonic()
                if left <= 0 or (stop is not None and stop.is_set()):
                    return False
                # None also for the subscription's own confirmation (ignored): wait on until the time is up
                if pubsub.get_message(timeout=min(left, STOP_CHECK_S)) is not None:
                    break
            while pubsub.get_message(timeout=0.0) is not None:  # rings queued while the worker was busy
                pass
            return True
        except (redis.RedisError, OSError) as error:
            self._failed(pubsub, error)
            self._pubsub = None
            return None

    def _failed(self, pubsub: PubSub, error: Exception) -> None:
        self._retry_at = time.monotonic() + RETRY_S
        with contextlib.suppress(redis.RedisError, OSError):
            pubsub.close()
        if self._throttle.ready() is not None:
            log.warning("the requests doorbell is unavailable (%s): polling the broker plainly meanwhile", error)

    def close(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                self._pubsub.close()
            self._pubsub = None
