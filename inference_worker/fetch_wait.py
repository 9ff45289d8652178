"""How long the worker's Kafka fetches wait for requests: short while requests come, long once idle.

Why (issue #15 (c), ``benchmarks/kafka_hop.py``): the local broker (Tansu 0.6) answers a fetch at once only if data
is there when the fetch comes in; otherwise it sleeps and looks at the log again at W/2, 3W/4, ... of the fetch's
wait W (measured: fetches that brought a message took ~52, ~78, ~90 ms at W = 100). A request produced while the
worker's fetch is parked waits for the next look, so the fetch wait sets part of the produce→consume hop (a mean
of roughly W/6 plus the client's turnaround). A short wait costs a fetch round trip (client and broker CPU; ~1.2 ms
of Python per fetch on kafka-python) every few ms, worth paying while requests flow, never while the worker idles:
the wait is ``hot_ms`` from a poll that returned requests until ``hot_s`` pass without one, then ``idle_ms``.
Off by default (``EASEL_SERVING_HOT_S`` = 0): at load 7-10 it did not move the 1-instance overhead (README).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FetchWait:
    idle_ms: int
    hot_ms: int
    hot_s: float
    _last_request_at: float = float("-inf")

    def __post_init__(self) -> None:
        if self.idle_ms < 1:
            raise ValueError(f"idle_ms must be >= 1, got {self.idle_ms}")
        if self.hot_ms < 1:
            raise ValueError(f"hot_ms must be >= 1, got {self.hot_ms}")
        if self.hot_s < 0:
            raise ValueError(f"hot_s must be >= 0, got {self.hot_s}")

    def after_poll(self, got_requests: bool, now: float) -> int:
        """The wait (ms) the next fetch should carry, after a poll at ``now`` (monotonic seconds)."""
        if got_requests:
            self._last_request_at = now
        return self.hot_ms if now - self._last_request_at < self.hot_s else self.idle_ms
