"""Prometheus metrics of one inference worker (served on ``/metrics`` of its metrics port).

* ``easel_worker_queue_lag_messages{partition}`` — messages on the partition not yet answered and committed;
* ``easel_worker_queued_instances`` / ``easel_worker_inflight_instances`` — waiting for / inside the executor;
* ``easel_worker_batch_seconds{rate}`` — measured time per mini-batch (histogram), and
  ``easel_worker_batch_time_estimate_seconds{rate}`` — the EWMA the planner uses;
* ``easel_worker_minibatches_total{rate}`` — the plan mix actually run; ``easel_worker_dropped_minibatches_total``;
* ``easel_worker_instances_total{status}`` — served, dropped (by the plan or out of time), expired (the
  deadline passed before the task was taken), and ``easel_worker_expected_correct_total`` — the sum of the
  profile accuracy of each served instance: with ``instances_total`` it gives effective accuracy;
* ``easel_worker_tasks_total``, ``easel_worker_replans_total``, ``easel_worker_profile_rebuilds_total``;
* ``easel_worker_dead_letters_total`` — request messages that could not be read (dead-lettered, answered dropped).
* where the time goes (issue #15 (b)): ``easel_worker_planned_batch_seconds_total`` (what the plans expected of the
  mini-batches run), ``easel_worker_share_seconds_total`` (the executor's wall time on shares),
  ``easel_worker_share_wait_seconds_total`` (a share's first poll to its first plan), ``easel_worker_predict_seconds_total``
  / ``easel_worker_predict_thread_cpu_seconds_total`` / ``easel_worker_answer_seconds_total`` (a mini-batch's model
  call, the executor thread's own CPU in it, its answers), ``easel_worker_predict_device_seconds_total`` (the model
  calls' GPU time by CUDA events, on a GPU), and ``easel_worker_share_time_left_at_arrival_seconds``
  (histogram: a share's time left as its first mini-batch reached the worker — the most any plan of it can have).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

ARRIVAL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def rate_label(rate: float) -> str:
    return f"{rate:g}"


@dataclass(frozen=True, slots=True)
class RateMetrics:
    """The labelled series one served mini-batch at one width updates (``labels()`` looks them up under a lock
    each time: a few microseconds a mini-batch, so the worker keeps them)."""

    batch_seconds: Any
    batch_estimate: Any
    minibatches: Any


class WorkerMetrics:
    def __init__(self, rates: Sequence[float]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.queue_lag = Gauge("easel_worker_queue_lag_messages", "messages not yet answered and committed",
                               ["partition"], registry=r)
        self.queued = Gauge("easel_worker_queued_instances", "instances waiting for the executor", registry=r)
        self.inflight = Gauge("easel_worker_inflight_instances", "instances taken by the executor, not yet answered",
                              registry=r)
        self.batch_seconds = Histogram("easel_worker_batch_seconds", "measured seconds per mini-batch", ["rate"],
                                       buckets=BATCH_BUCKETS, registry=r)
        self.batch_estimate = Gauge("easel_worker_batch_time_estimate_seconds",
                                    "EWMA of seconds per full mini-batch the planner uses", ["rate"], registry=r)
        self.minibatches = Counter("easel_worker_minibatches", "mini-batches run, by slice rate", ["rate"],
                                   registry=r)
        self.dropped_minibatches = Counter("easel_worker_dropped_minibatches", "mini-batches dropped", registry=r)
        self.instances = Counter("easel_worker_instances", "instances by outcome", ["status"], registry=r)
        self.expected_correct = Counter("easel_worker_expected_correct",
                                        "sum of the profile accuracy of every served instance", registry=r)
        self.tasks = Counter("easel_worker_tasks", "task shares planned", registry=r)
        # What the plans expected against what the pipeline carried (issue #15 (b)): beside batch_seconds (the
        # recorded time of each mini-batch), the planned seconds of the mini-batches run, and the executor's wall
        # time on its shares (first plan to last answer: the gaps between mini-batches and the re-plans included).
        self.planned_seconds = Counter("easel_worker_planned_batch_seconds",
                                       "seconds the plan in use expected of the mini-batches run", registry=r)
        # Where a mini-batch's recorded time goes: the model call (its wall seconds, and the executor thread's own
        # CPU in it: the rest is the sandbox child's compute and waiting for the CPU or the GIL) and the answers.
        self.predict_seconds = Counter("easel_worker_predict_seconds",
                                       "wall seconds in the model call (buffers loaded, template predict)", registry=r)
        self.predict_thread_cpu_seconds = Counter("easel_worker_predict_thread_cpu_seconds",
                                                  "CPU seconds of the executor thread itself in the model call",
                                                  registry=r)
        self.predict_device_seconds = Counter("easel_worker_predict_device_seconds",
                                              "GPU seconds of the model calls (CUDA events; stays 0 on a CPU)",
                                              registry=r)
        self.answer_seconds = Counter("easel_worker_answer_seconds",
                                      "wall seconds holding and publishing a served mini-batch's answers", registry=r)
        self.share_seconds = Counter("easel_worker_share_seconds",
                                     "executor wall seconds on task shares, first plan to last answer", registry=r)
        self.share_wait_seconds = Counter("easel_worker_share_wait_seconds",
                                          "seconds from a share's first message polled to its first plan (the rest "
                                          "of it awaited in the book, or work ahead of it run)", registry=r)
        # The time a share's plans can have at most: its deadline less when its first mini-batch reached this worker
        # (the request path before it — the predictor, the broker — took the rest).
        self.time_left_at_arrival = Histogram("easel_worker_share_time_left_at_arrival_seconds",
                                              "seconds left until a task share's deadline when its first mini-batch "
                                              "was polled", buckets=ARRIVAL_BUCKETS, registry=r)
        self.replans = Counter("easel_worker_replans", "mid-task re-plans after overruns", registry=r)
        self.rebuilds = Counter("easel_worker_profile_rebuilds", "profile rebuilds from measured times", registry=r)
        self.dead_letters = Counter("easel_worker_dead_letters", "request messages that could not be read "
                                    "(a corrupt header): dead-lettered, their instances answered dropped",
                                    registry=r)
        for rate in rates:
            self.minibatches.labels(rate_label(rate))
            self.batch_seconds.labels(rate_label(rate))
        for status in ("served", "dropped", "expired"):
            self.instances.labels(status)
        self.served = self.instances.labels("served")
        self._by_rate: dict[float, RateMetrics] = {}

    def at_rate(self, rate: float) -> RateMetrics:
        found = self._by_rate.get(rate)
        if found is None:
            label = rate_label(rate)
            found = self._by_rate[rate] = RateMetrics(self.batch_seconds.labels(label),
                                                      self.batch_estimate.labels(label), self.minibatches.labels(label))
        return found

    def set_estimates(self, rates: Sequence[float], times: Sequence[float]) -> None:
        for rate, t in zip(rates, times, strict=True):
            self.batch_estimate.labels(rate_label(rate)).set(t)

    def serve(self, host: str, port: int) -> int:
        """Start the ``/metrics`` HTTP server in a daemon thread; returns the port it listens on."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)
