"""The local stack: real PostgreSQL, Redis and a Kafka-protocol broker on loopback, under one data dir.

``easel up`` / ``easel down`` / ``easel status`` and the test session all go through :class:`LocalStack`,
so tests exercise the same start-up code users run.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from easel.db.migrate import upgrade
from easel.settings import Settings
from easel.stack.base import PartHealth, StackPart
from easel.stack.kafka_broker import KafkaPart
from easel.stack.postgres_server import PostgresPart
from easel.stack.process import StackError
from easel.stack.redis_server import RedisPart

__all__ = ["LocalStack", "StackError", "UpReport"]


@dataclass
class UpReport:
    started: list[str] = field(default_factory=list)
    already_running: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)


class LocalStack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        root = settings.stack_dir
        self.postgres = PostgresPart(root, settings.postgres_port, settings.data_dir)
        self.redis = RedisPart(root, settings.redis_port)
        self.kafka = KafkaPart(root, settings.kafka_port)

    @property
    def parts(self) -> list[StackPart]:
        return [self.postgres, self.redis, self.kafka]

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """One ``up``/``down`` at a time per data dir, so two callers never start the same part twice."""
        self.settings.stack_dir.mkdir(parents=True, exist_ok=True)
        with open(self.settings.stack_dir / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def up(self, progress: Callable[[str], None] = lambda _msg: None) -> UpReport:
        """Start every part that is not running, wait until each answers, apply migrations."""
        report = UpReport()
        with self._lock():
            for part in self.parts:
                began = time.perf_counter()
                try:
                    started = part.start()
                except StackError:
                    part.stop()  # it may have spawned before failing to answer
                    self._stop_started(report)
                    raise
                report.seconds[part.name] = time.perf_counter() - began
                (report.started if started else report.already_running).append(part.name)
                progress(f"{part.name}: {'started' if started else 'already running'} at {part.url}")
            began = time.perf_counter()
            upgrade(self.postgres.url)  # as the schema's owner
            self.postgres.grant_service_roles()
            report.seconds["migrations"] = time.perf_counter() - began
            progress("metadata schema: migrated to head; service roles granted")
        report.urls = self.urls()
        return report

    def _stop_started(self, report: UpReport) -> None:
        # A failed `up` leaves nothing half-started behind.
        for part in reversed(self.parts):
            if part.name in report.started:
                part.stop()

    def down(self, progress: Callable[[str], None] = lambda _msg: None) -> list[str]:
        """Stop every running part (broker first, database last); returns the names stopped."""
        stopped = []
        with self._lock():
            for part in reversed(self.parts):
                if part.stop():
                    stopped.append(part.name)
                    progress(f"{part.name}: stopped")
                else:
                    progress(f"{part.name}: was not running")
        return stopped

    def status(self) -> list[PartHealth]:
        return [part.health() for part in self.parts]

    def urls(self) -> dict[str, str]:
        """Where the parts listen (shown to the user: the database URL without its password, which local
        processes read from the data dir's ``database.json`` when ``EASEL_DATABASE_URL`` is unset)."""
        return {
            "EASEL_DATABASE_URL": self.postgres.url.replace(f":{self.postgres.passwords['admin']}@", ":***@"),
            "EASEL_REDIS_URL": self.redis.url,
            "EASEL_KAFKA_BOOTSTRAP": self.kafka.url,
        }
