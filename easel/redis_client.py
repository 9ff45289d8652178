"""Redis client factory: one place that knows how services connect to the fast channel."""

from __future__ import annotations

import redis

from easel.settings import Settings


def make_redis(settings: Settings, *, decode_responses: bool = False, **kwargs: object) -> redis.Redis:
    """A client for ``settings``' Redis with bounded connect/read timeouts and health checks."""
    options: dict[str, object] = {
        "socket_connect_timeout": 5,
        "health_check_interval": 30,
        "decode_responses": decode_responses,
    }
    options.update(kwargs)
    return redis.Redis.from_url(settings.resolved_redis_url, **options)
