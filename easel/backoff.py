"""Retrying politely: exponential, capped, jittered backoff, and log lines that cannot flood a disk.

One owner for "wait before trying again" across the platform: the supervisor (relaunching services), the
advisor and workers (riding out a Redis or broker restart) and the predictor (replacing its producer) all
use :class:`Backoff`; :class:`Throttle` keeps a failure that repeats thousands of times a second down to one
log line per interval, with the count of what it left out.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays ``base * 2**n`` (n = failures so far), capped at ``cap_s``, with "full jitter" in
    ``[delay/2, delay]`` so restarted peers do not retry in lock step. :meth:`reset` after a success."""

    base_s: float = 0.2
    cap_s: float = 10.0
    failures: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError(f"backoff needs 0 < base_s <= cap_s, got base_s={self.base_s}, cap_s={self.cap_s}")

    def peek(self) -> float:
        """The ceiling of the next delay (no jitter), without counting a failure."""
        return min(self.cap_s, self.base_s * 2.0 ** min(self.failures, 60))

    def next_delay(self) -> float:
        """Count one more failure and return how long to wait before the next try."""
        ceiling = self.peek()
        self.failures += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def wait(self, sleep: Callable[[float], object] = time.sleep) -> float:
        delay = self.next_delay()
        sleep(delay)
        return delay

    def reset(self) -> None:
        self.failures = 0


class Throttle:
    """Lets through at most one event per ``interval_s``; :meth:`ready` returns how many were held back
    since the last one let through (so the log line can say "and N more"), or None to stay quiet."""

    def __init__(self, interval_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self._last: float | None = None
        self._held = 0

    def ready(self) -> int | None:
        now = self.clock()
        if self._last is not None and now - self._last < self.interval_s:
            self._held += 1
            return None
        held, self._held, self._last = self._held, 0, now
        return held


__all__ = ["Backoff", "Throttle"]
