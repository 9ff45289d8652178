"""Telling the platform's faults from the user's: an error of the infrastructure (Redis, PostgreSQL, the
broker, the network) means "try again later", never "the template is broken"."""

from __future__ import annotations

import redis
from kafka.errors import KafkaError
from sqlalchemy.exc import InterfaceError, OperationalError

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    redis.RedisError, OperationalError, InterfaceError, KafkaError, ConnectionError, TimeoutError,
)


def is_infrastructure_error(error: BaseException) -> bool:
    """True when ``error`` (or an exception it was raised from, e.g. inside a template) is an infrastructure
    failure rather than the code's own."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, INFRASTRUCTURE_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class InfrastructureError(RuntimeError):
    """Raised by a service when a unit of work failed for an infrastructure reason and must be re-issued."""


__all__ = ["INFRASTRUCTURE_ERRORS", "InfrastructureError", "is_infrastructure_error"]
