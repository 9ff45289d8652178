"""Local launcher: each service is a subprocess in its own session, logging to a file in the data dir."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable

import psutil
from sqlalchemy.orm import Session, sessionmaker

from easel.db.models import Service
from easel.db.session import session_scope
from easel.jobs import lifecycle
from easel.launcher.base import Launcher, ServiceSpec, ServiceState
from easel.launcher.service_env import inherited_env, settings_env
from easel.settings import Settings

log = logging.getLogger("easel.launcher")


class LocalLauncher(Launcher):
    name = "local"

    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self.settings = settings
        self.sessions = sessions
        # Popen handles of the children this process started: they give real exit codes.
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._exit_callbacks: list[Callable[[str], None]] = []
        # Services being stopped on purpose: a death seen meanwhile (the supervisor's status poll racing the
        # stop's SIGTERM) is a stop, not a crash.
        self._stopping: set[str] = set()

    def on_exit(self, callback: Callable[[str], None]) -> None:
        self._exit_callbacks.append(callback)

    def _watch(self, service_id: str, child: subprocess.Popen[bytes]) -> None:
        """Wait on the child in a thread of its own, so a death is known at once (the supervisor's poll is
        the fallback, and the only way for services an earlier admin started)."""
        child.wait()
        for callback in list(self._exit_callbacks):
            try:
                callback(service_id)
            except Exception:  # noqa: BLE001 - a listener's failure must not hide the death from the others
                log.exception("exit listener failed for service %s", service_id)

    def start(self, spec: ServiceSpec) -> ServiceState:
        with session_scope(self.sessions) as session:
            row = lifecycle.new_service(
                name=spec.name, kind=spec.kind, launcher=self.name,
                host=spec.host or "127.0.0.1", port=spec.port, command={"argv": list(spec.argv),
                                                                      "env": dict(spec.env)},
                sub_train_job_id=spec.sub_train_job_id, inference_job_id=spec.inference_job_id,
            )
            session.add(row)
            session.flush()
            service_id = row.id
        log_path = self.settings.log_dir / f"{spec.name}-{service_id[:8]}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # Its own settings and database role only: admin's secrets are not passed on (see service_env).
        env = {**inherited_env(os.environ), **settings_env(self.settings, spec.kind), **spec.env,
               "EASEL_SERVICE_ID": service_id}
        try:
            with open(log_path, "ab") as log:
                child = subprocess.Popen(list(spec.argv), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        except OSError as error:
            with session_scope(self.sessions) as session:
                row = session.get_one(Service, service_id)
                lifecycle.mark_service_failed(row)
                row.log_path = str(log_path)
            raise ValueError(f"cannot start service {spec.name!r}: {error}") from error
        self._children[service_id] = child
        threading.Thread(target=self._watch, args=(service_id, child), name=f"wait-{service_id[:8]}",
                         daemon=True).start()
        created = psutil.Process(child.pid).create_time()
        with session_scope(self.sessions) as session:
            row = session.get_one(Service, service_id)
            # The start time tells our process apart from a later one that reuses the pid.
            lifecycle.mark_service_running(row, pid=child.pid, log_path=str(log_path),
                                           command={**row.command, "create_time": created})
            return ServiceState.of(row)

    def stop(self, service_id: str, timeout_s: float = 10.0) -> ServiceState:
        with session_scope(self.sessions) as session:
            row = session.get_one(Service, service_id)
            if row.status in lifecycle.LIVE_SERVICE and row.pid is not None:
                self._stopping.add(service_id)
                try:
                    exit_code = self._terminate(service_id, row, timeout_s)
                finally:
                    self._stopping.discard(service_id)
                lifecycle.mark_service_exited(row, exit_code, stopped=True)
            return ServiceState.of(row)

    def status(self, service_id: str) -> ServiceState:
        with session_scope(self.sessions) as session:
            row = session.get_one(Service, service_id)
            if row.status in lifecycle.LIVE_SERVICE and not self._alive(service_id, row):
                # Conditional: a stop racing this poll may have committed STOPPED since the row was read.
                lifecycle.record_service_exit(session, service_id, self._exit_code(service_id),
                                              stopped=service_id in self._stopping)
                session.refresh(row)
            return ServiceState.of(row)

    # -- process plumbing ----------------------------------------------------------------------------
    def _process(self, row: Service) -> psutil.Process | None:
        if row.pid is None:
            return None
        try:
            process = psutil.Process(row.pid)
            same = abs(process.create_time() - float(row.command.get("create_time", 0))) < 0.01
            if not same or process.status() == psutil.STATUS_ZOMBIE:
                return None
            return process
        except psutil.NoSuchProcess:
            return None

    def _alive(self, service_id: str, row: Service) -> bool:
        child = self._children.get(service_id)
        if child is not None:
            return child.poll() is None
        return self._process(row) is not None

    def _exit_code(self, service_id: str) -> int | None:
        child = self._children.get(service_id)
        return child.poll() if child is not None else None

    def _terminate(self, service_id: str, row: Service, timeout_s: float) -> int | None:
        if not self._alive(service_id, row):
            return self._exit_code(service_id)
        # The service runs in its own session: signal the whole group so its children go too.
        try:
            os.killpg(row.pid, signal.SIGTERM)
        except ProcessLookupError:
            return self._exit_code(service_id)
        child = self._children.get(service_id)
        try:
            if child is not None:
                return child.wait(timeout_s)
            psutil.Process(row.pid).wait(timeout_s)
            return None
        except (subprocess.TimeoutExpired, psutil.TimeoutExpired):
            os.killpg(row.pid, signal.SIGKILL)
            return child.wait(5) if child is not None else None
        except psutil.NoSuchProcess:
            return None
