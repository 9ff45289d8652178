"""How long the worker's Kafka fetches wait for requests: short while requests come, long once idle.

Why (issue #15 (c), ``benchmarks/kafka_hop.py``): the local broker (Tansu 0.6) answers a fetch that found nothing
only when its max wait runs out (it re-reads the log after sleeping; below ~20 ms it sleeps the whole wait). A
request produced meanwhile waits for the end of the worker's current fetch — on average half the wait plus the
client's turnaround — so the fetch wait is most of the produce→consume hop. A short wait costs one fetch round
trip (client and broker CPU) every few ms, which is worth paying while requests flow, not while the worker idles:
so the wait is ``hot_ms`` from a poll that returned requests until ``hot_s`` pass without one, then ``idle_ms``.
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
