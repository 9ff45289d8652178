"""Local launcher: each service is a process in its own session, logging to a file in the data dir.

A subprocess of the launcher, or — for the kinds in :data:`WARM_KINDS` while ``EASEL_WARM_START`` is on — a child
forked by a zygote that imported the kind's modules once (:mod:`easel.launcher.zygote`): the same command line,
environment, session, log and death notice, without paying the interpreter's start and the imports again."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import psutil
from sqlalchemy.orm import Session, sessionmaker

from easel.db.enums import ServiceKind
from easel.db.models import Service
from easel.db.session import session_scope
from easel.jobs import lifecycle
from easel.launcher.base import Launcher, ServiceSpec, ServiceState
from easel.launcher.service_env import inherited_env, settings_env
from easel.launcher.zygote import Zygote, ZygoteError, module_of
from easel.settings import Settings

log = logging.getLogger("easel.launcher")

#: kinds started from a zygote, and what it imports for them (the heavy part of their start; scikit-optimize is
#: imported by the GP sampler only when it is built, so it is named here), ``module:function`` a warm-up it calls
WARM_KINDS: dict[ServiceKind, tuple[str, ...]] = {
    ServiceKind.ADVISOR: ("advisor.service", "advisor.records", "skopt", "sklearn.gaussian_process",
                          "advisor.warmup:warm_up"),
}


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
        # Services forked by a zygote: pid -> service id, and their exit codes (the zygote reports them).
        self._zygotes: dict[tuple[ServiceKind, str | None], Zygote] = {}
        self._forked: dict[int, str] = {}
        self._forked_exits: dict[str, int] = {}
        self._early_exits: dict[int, int] = {}  # reported before the start that forked it had recorded its pid
        self._forks_lock = threading.Lock()
        # Services this launcher is starting (row committed, pid not yet recorded): alive to a status poll, which
        # would otherwise read "no pid" as dead; a death heard meanwhile is told to the listeners once recorded.
        self._starting: set[str] = set()
        self._exits_while_starting: set[str] = set()
        self._starting_lock = threading.Lock()

    def on_exit(self, callback: Callable[[str], None]) -> None:
        self._exit_callbacks.append(callback)

    def _watch(self, service_id: str, child: subprocess.Popen[bytes]) -> None:
        """Wait on the child in a thread of its own, so a death is known at once (the supervisor's poll is
        the fallback, and the only way for services an earlier admin started)."""
        child.wait()
        self._notify_exit(service_id)

    def _notify_exit(self, service_id: str) -> None:
        with self._starting_lock:
            if service_id in self._starting:
                self._exits_while_starting.add(service_id)
                return
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
            self._starting.add(service_id)  # before the commit: a poll may see the row as soon as it is committed
        try:
            return self._start(spec, service_id)
        finally:
            with self._starting_lock:
                self._starting.discard(service_id)
                exited = service_id in self._exits_while_starting
                self._exits_while_starting.discard(service_id)
            if exited:
                self._notify_exit(service_id)

    def _start(self, spec: ServiceSpec, service_id: str) -> ServiceState:
        log_path = self.settings.log_dir / f"{spec.name}-{service_id[:8]}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # Its own settings and database role only: admin's secrets are not passed on (see service_env).
        env = {**inherited_env(os.environ), **settings_env(self.settings, spec.kind), **spec.env,
               "EASEL_SERVICE_ID": service_id}
        pid = self._fork_warm(spec, env, log_path, service_id)
        if pid is None:
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
            pid = child.pid
        try:
            created = psutil.Process(pid).create_time()
        except psutil.NoSuchProcess:  # a forked child that already ended (and was reaped): recorded as dead
            created = 0.0
        with session_scope(self.sessions) as session:
            row = session.get_one(Service, service_id)
            # The start time tells our process apart from a later one that reuses the pid.
            lifecycle.mark_service_running(row, pid=pid, log_path=str(log_path),
                                           command={**row.command, "create_time": created})
            return ServiceState.of(row)

    # -- warm starts -----------------------------------------------------------------------------------------
    def warm_up(self, kind: ServiceKind, pythonpath: str | None = None) -> None:
        """Start the zygote of ``kind`` now (it imports in the background), so the first service of that kind
        starts warm too. Nothing when warm starts are off or the kind has none."""
        if self.settings.warm_start and kind in WARM_KINDS:
            self._zygote(kind, pythonpath)

    def close(self) -> None:
        """End the zygotes (the services they started go on)."""
        with self._forks_lock:
            zygotes, self._zygotes = list(self._zygotes.values()), {}
        for zygote in zygotes:
            zygote.close()

    def _zygote(self, kind: ServiceKind, pythonpath: str | None) -> Zygote:
        """The live zygote of ``kind`` for services with this ``PYTHONPATH`` (it fixes their ``sys.path``)."""
        key = (kind, pythonpath)
        with self._forks_lock:
            zygote = self._zygotes.get(key)
            if zygote is None or not zygote.alive():
                env = {**inherited_env(os.environ), **settings_env(self.settings, kind)}
                if pythonpath is not None:
                    env["PYTHONPATH"] = pythonpath
                zygote = self._zygotes[key] = Zygote(
                    WARM_KINDS[kind], env, self.settings.log_dir / f"zygote-{kind.value.lower()}.log", self._forked_exit)
        return zygote

    def _fork_warm(self, spec: ServiceSpec, env: dict[str, str], log_path: Path,
                   service_id: str) -> int | None:
        """The pid of ``spec``'s process forked by its kind's zygote, or None to start it the cold way."""
        if not (self.settings.warm_start and spec.kind in WARM_KINDS and module_of(spec.argv)):
            return None
        try:
            zygote = self._zygote(spec.kind, env.get("PYTHONPATH"))
            pid = zygote.spawn(spec.argv, env, log_path)
        except (OSError, ZygoteError) as error:
            log.info("no warm start for %s (%s): starting it cold", spec.name, error)
            return None
        with self._forks_lock:
            self._forked[pid] = service_id
            early = self._early_exits.pop(pid, None)
        if early is not None:
            self._forked_exit(pid, early)
        return pid

    def _forked_exit(self, pid: int, code: int) -> None:
        with self._forks_lock:
            service_id = self._forked.pop(pid, None)
            if service_id is None:
                self._early_exits[pid] = code
                return
            self._forked_exits[service_id] = code
        self._notify_exit(service_id)

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
        if service_id in self._starting:
            return True
        child = self._children.get(service_id)
        if child is not None:
            return child.poll() is None
        if service_id in self._forked_exits:
            return False
        return self._process(row) is not None

    def _exit_code(self, service_id: str) -> int | None:
        child = self._children.get(service_id)
        return child.poll() if child is not None else self._forked_exits.get(service_id)

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
            return self._exit_code(service_id)
        except (subprocess.TimeoutExpired, psutil.TimeoutExpired):
            os.killpg(row.pid, signal.SIGKILL)
            return child.wait(5) if child is not None else None
        except psutil.NoSuchProcess:
            return None
