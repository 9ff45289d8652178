"""Redis client factory: one place that knows how services connect to the fast channel."""

from __future__ import annotations

import redis

from easel.settings import Settings

MAX_BLOCK_S = 5.0  # the longest blocking Redis read any service makes (kept below the socket timeout)


def make_redis(settings: Settings, *, decode_responses: bool = False, **kwargs: object) -> redis.Redis:
    """A client for ``settings``' Redis with bounded connect/read timeouts and health checks.

    The read timeout is ``EASEL_REDIS_SOCKET_TIMEOUT_S`` (at least 10 s): it must exceed every blocking wait
    (:data:`MAX_BLOCK_S`), or an idle BRPOP/XREAD times out as if the server were gone.
    """
    options: dict[str, object] = {
        "socket_connect_timeout": 5,
        "socket_timeout": settings.redis_socket_timeout_s,
        "health_check_interval": 30,
        "decode_responses": decode_responses,
    }
    options.update(kwargs)
    return redis.Redis.from_url(settings.resolved_redis_url, **options)
