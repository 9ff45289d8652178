"""Sending a predict again when the predictor could not answer it.

A predict is a pure function of its instances, so sending it twice is harmless. An attempt is repeated when it
got no answer — the connection was refused (the predictor is being relaunched) or broke before the answer (it
died under the request) — or a 503 (no inference worker alive yet). Other answers are final: a 429 says the
job is overloaded, and repeating would add to the load; a 4xx is the caller's.

Attempts wait a jittered, exponentially growing delay (or the server's ``Retry-After``, if longer), and a new
attempt starts only while the *retry window* lasts (``window_s`` from the first send): the caller knows the
longest it can wait, ``window_s`` plus the deadline of the attempt that answers. Every attempt carries the
same ``Idempotency-Key``, so a server could answer a repeat from its first answer.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRIED_STATUS = frozenset({503})


@dataclass(frozen=True)
class RetryPolicy:
    """``window_s``: how long after the first send a new attempt may start (0: never retry); delays start at
    ``base_s`` and double per attempt up to ``cap_s``, jittered into ``[delay/2, delay]``."""

    window_s: float = 10.0
    base_s: float = 0.1
    cap_s: float = 1.0

    def __post_init__(self) -> None:
        if self.window_s < 0:
            raise ValueError(f"window_s must be >= 0, got {self.window_s}")
        if not 0 < self.base_s <= self.cap_s:
            raise ValueError(f"retry delays need 0 < base_s <= cap_s, got base_s={self.base_s}, cap_s={self.cap_s}")

    def delay_s(self, attempt: int, retry_after: str | None = None) -> float:
        """The wait after failed attempt number ``attempt`` (1, 2, ...)."""
        ceiling = min(self.cap_s, self.base_s * 2.0 ** (attempt - 1))
        delay = random.uniform(ceiling / 2, ceiling)
        try:
            return max(delay, min(float(retry_after), self.cap_s)) if retry_after else delay
        except ValueError:  # an HTTP date, or junk: our own delay
            return delay


@dataclass
class Attempts:
    """What happened to one predict: ``attempts`` sent, how many failed without an answer (``lost``: sent and
    broken; ``refused``: not connected) or with a 503, and the last response (None when none came)."""

    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    attempts: int = 0
    lost: int = 0
    refused: int = 0
    unavailable: int = 0
    response: httpx.Response | None = None
    error: httpx.TransportError | None = None


def send_with_retry(post: Callable[[dict[str, str]], httpx.Response], policy: RetryPolicy,
                    sleep: Callable[[float], object] = time.sleep,
                    clock: Callable[[], float] = time.monotonic) -> Attempts:
    """Call ``post(headers)`` until it answers anything but a 503, or the window closes. Returns the record;
    ``response`` is the final answer (a 503 if the window closed on one), or None with ``error`` set."""
    record = Attempts()
    headers = {IDEMPOTENCY_HEADER: record.request_id}
    give_up = clock() + policy.window_s
    while True:
        record.attempts += 1
        retry_after = None
        try:
            record.response, record.error = post(headers), None
        except httpx.TransportError as error:
            record.response, record.error = None, error
            if isinstance(error, httpx.ConnectError):
                record.refused += 1
            else:
                record.lost += 1
        else:
            if record.response.status_code not in RETRIED_STATUS:
                return record
            record.unavailable += 1
            retry_after = record.response.headers.get("retry-after")
        delay = policy.delay_s(record.attempts, retry_after)
        if clock() + delay > give_up:
            return record
        sleep(delay)


__all__ = ["IDEMPOTENCY_HEADER", "Attempts", "RetryPolicy", "send_with_retry"]
