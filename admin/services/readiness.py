"""Is an inference job at full strength? What the supervisor grades RUNNING ⇄ DEGRADED on.

A process that *exists* is not yet serving: a relaunched worker still imports torch, loads and calibrates the
model and joins the consumer group; a relaunched predictor still loads the job and binds its port. So a
service counts as ready only when it says so itself:

* an inference worker — its record in the job's worker registry (Redis, :mod:`easel.serving`) is live: it
  writes it once it holds partitions, and refreshes it while it serves;
* the predictor — its ``/health`` answers for this job from the service that runs now (``service_id``).

:func:`gaps` is the pure rule (what is missing, in words); :class:`Readiness` reads the facts.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import redis

from easel.serving import live_workers, workers_key
from easel.settings import Settings

HEALTH_TIMEOUT_S = 1.0


def worker_id(service_id: str) -> str:
    """The id a worker registers under (``inference_worker.__main__`` derives it from its service id)."""
    return f"worker-{service_id[:8]}"


@dataclass(frozen=True)
class Facts:
    """One inference job as the supervisor sees it in one tick."""

    wanted_workers: int
    predictors_alive: int
    workers_alive: list[str]  # service ids of live worker processes
    registered: set[str] | None  # live registry ids; None when the registry cannot be read
    predictor_ready: bool | None  # None: not asked (only asked when everything else is ready)


def gaps(facts: Facts) -> list[str] | None:
    """What keeps the job from full strength, in words ([] at full strength); None when it cannot be told
    (the registry is unreadable, or the predictor was not asked)."""
    missing = []
    if facts.predictors_alive < 1:
        missing.append("no predictor")
    if facts.registered is None:
        return missing or None
    ready = sum(worker_id(s) in facts.registered for s in facts.workers_alive)
    if ready < facts.wanted_workers:
        missing.append(f"{ready} of {facts.wanted_workers} inference workers ready")
    if not missing and facts.predictor_ready is False:
        missing.append("predictor not ready")
    if not missing and facts.predictor_ready is None:
        return None
    return missing


class Readiness:
    """Reads the worker registry and asks the predictor's ``/health``."""

    def __init__(self, settings: Settings) -> None:
        self._redis = redis.Redis.from_url(settings.resolved_redis_url, socket_connect_timeout=1, socket_timeout=2)

    def registered(self, job_id: str) -> set[str] | None:
        try:
            return set(live_workers(self._redis.hgetall(workers_key(job_id)), time.time()))
        except redis.RedisError:
            return None

    @staticmethod
    def predictor_ready(url: str | None, job_id: str, service_ids: Iterable[str]) -> bool:
        """The predictor at ``url`` answers ``/health`` for this job (200 ok or 503 without workers: either
        way it serves) from one of ``service_ids``, the live predictor services."""
        if not url:
            return False
        try:
            body: Mapping[str, Any] = httpx.get(f"{url}/health", timeout=HEALTH_TIMEOUT_S).json()
        except (httpx.HTTPError, ValueError):
            return False
        return body.get("inference_job_id") == job_id and body.get("service_id") in set(service_ids)

    def close(self) -> None:
        self._redis.close()


__all__ = ["Facts", "Readiness", "gaps", "worker_id"]
