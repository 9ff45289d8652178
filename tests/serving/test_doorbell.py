"""The requests doorbell (``inference_worker.doorbell``): an idle worker waits on Redis with its partitions paused
and reads a request as soon as it is rung, with either Kafka client; without a ring it still reads it, one idle
wait later; without Redis it does not idle at all. Real broker and Redis; assertions are counts of how each idle
wait ended, never times.
"""

from __future__ import annotations

import threading

import numpy as np
import redis
from minibatch_worker import make_worker
from test_minibatch_worker import (
    client_settings,
    collect,
    echoed_sums,
    job,
    produce,
    run_in_thread,
    task_messages,
)

from easel.redis_client import make_redis
from easel.serving import doorbell_channel
from easel.settings import Settings
from easel.stack.process import free_port
from inference_worker.doorbell import Doorbell
from inference_worker.service import InferenceWorker

__all__ = ["client_settings", "job"]  # fixtures, used by name


def idle_waits(worker: InferenceWorker, ended: str) -> float:
    return worker.metrics.idle_waits.labels(ended)._value.get()


def waiting_for_a_ring(worker: InferenceWorker) -> threading.Event:
    """Set once the worker is in an idle wait (the real ``Doorbell.wait``, observed, not replaced)."""
    assert worker.doorbell is not None
    entered, wait = threading.Event(), worker.doorbell.wait

    def observed(timeout_s: float, stop: threading.Event | None = None) -> bool | None:
        entered.set()
        return wait(timeout_s, stop)

    worker.doorbell.wait = observed  # type: ignore[method-assign]
    return entered


def test_a_ring_wakes_an_idle_worker_before_its_wait_ends(client_settings: Settings, job: str) -> None:
    # An idle wait far longer than the test: the request can only be read this soon because the ring woke it.
    worker = make_worker(client_settings, job, idle_wait_s=120.0)
    entered = waiting_for_a_ring(worker)
    thread = run_in_thread(worker)
    try:
        assert entered.wait(60), "the worker never went idle"
        x = np.arange(6 * 2, dtype=np.float32).reshape(6, 2)
        produce(client_settings, job, task_messages("rung", x))  # flushed: on the broker before the ring
        ringer = make_redis(client_settings)
        assert ringer.publish(doorbell_channel(job), b"1") == 1  # the worker is subscribed
        ringer.close()
        waiter = collect(client_settings, job, "rung", len(x), timeout_s=60)
        assert echoed_sums(waiter) == {i: float(x[i].sum()) for i in range(len(x))}
        assert idle_waits(worker, "rung") >= 1 and idle_waits(worker, "timeout") == 0
    finally:
        worker.stop.set()
        thread.join(30)


def test_a_request_without_a_ring_is_read_after_one_idle_wait(settings: Settings, job: str) -> None:
    worker = make_worker(settings, job, idle_wait_s=0.2)
    entered = waiting_for_a_ring(worker)
    thread = run_in_thread(worker)
    try:
        assert entered.wait(60)
        x = np.ones((3, 2), np.float32)
        produce(settings, job, task_messages("unrung", x))
        waiter = collect(settings, job, "unrung", len(x), timeout_s=60)
        assert waiter.remaining == 0 and len(echoed_sums(waiter)) == 3
        assert idle_waits(worker, "timeout") >= 1 and idle_waits(worker, "rung") == 0
    finally:
        worker.stop.set()
        thread.join(30)


def test_without_redis_the_doorbell_says_so_instead_of_waiting() -> None:
    unreachable = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    doorbell = Doorbell(unreachable, "easel:inference:none:doorbell")
    assert doorbell.ready() is False
    assert doorbell.wait(30.0) is None  # at once, not after 30 s: the worker polls the broker meanwhile


def test_zero_idle_wait_means_no_doorbell(settings: Settings, job: str) -> None:
    worker = make_worker(settings, job, idle_wait_s=0.0)
    assert worker.doorbell is None
    worker.consumer.close()
