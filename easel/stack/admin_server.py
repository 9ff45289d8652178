"""The admin API as a part of the local stack: a detached ``python -m admin`` process with a pid file.

``easel`` never imports the ``admin`` package: admin runs as its own process, started here with the
platform's settings in its environment, and is considered up once ``GET /health`` answers.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx

from easel.launcher.service_env import settings_env
from easel.settings import Settings
from easel.stack.base import StackPart
from easel.stack.process import spawn_detached, wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90.0


class AdminPart(StackPart):
    name = "admin"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.stack_dir, settings.admin_port)
        self.settings = settings

    @property
    def url(self) -> str:
        host = self.settings.admin_host
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{self.port}"

    def _env(self) -> dict[str, str]:
        # The superadmin password is admin's alone (it seeds the first account); services never get it.
        env = {**os.environ, **settings_env(self.settings),
               "EASEL_SUPERADMIN_PASSWORD": self.settings.superadmin_password}
        python_path = [str(PROJECT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        env["PYTHONPATH"] = os.pathsep.join(python_path)
        return env

    def _start(self) -> None:
        argv = [sys.executable, "-m", "admin"]
        spawn_detached(argv, self.log_path, self.pid_file, env=self._env(), cwd=PROJECT_ROOT)
        wait_until(self._answers, START_TIMEOUT_S, "admin", self.log_path, alive=lambda: self.pid() is not None)

    def _health(self) -> dict:
        response = httpx.get(f"{self.url}/health", timeout=3.0)
        response.raise_for_status()
        return response.json()

    def _answers(self) -> bool:
        try:
            return self._health().get("status") == "ok"
        except (httpx.HTTPError, ValueError):
            return False

    def version(self) -> str:
        health = self._health()
        return f"Easel admin {health.get('version')} (database {health.get('database')})"
