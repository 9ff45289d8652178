"""What one admin process holds: settings, the database engine and sessions, the blob store, the launcher."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from admin.services.login_guard import LoginGuard
from admin.services.predictor_access import PredictorAccess
from easel.blobstore import BlobStore, make_blob_store
from easel.db.session import make_engine, make_sessionmaker
from easel.launcher import Launcher, make_launcher
from easel.settings import Settings


@dataclass
class AdminState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: BlobStore
    login_guard: LoginGuard
    # Template checks are child processes of seconds each: a few at a time, the rest told to retry (429).
    template_checks: threading.BoundedSemaphore
    predictor_access: PredictorAccess
    _launcher: Launcher | None = field(default=None, repr=False)
    boot: dict[str, float] = field(default_factory=dict)  # start-up phase times (UNIX), shown by /health
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings,
                      launcher: Callable[[sessionmaker[Session]], Launcher] | None = None) -> AdminState:
        """``launcher`` makes the service launcher from the sessions (default: the one ``EASEL_LAUNCHER``
        names); tests of the REST surface pass a contract fake."""
        engine = make_engine(settings.resolved_database_url)
        sessions = make_sessionmaker(engine)
        return cls(settings, engine, sessions, make_blob_store(settings), LoginGuard.from_settings(settings),
                   threading.BoundedSemaphore(settings.template_check_concurrency), PredictorAccess(sessions),
                   launcher(sessions) if launcher is not None else None)

    @property
    def launcher(self) -> Launcher:
        """The service launcher (made on first use)."""
        with self._lock:
            if self._launcher is None:
                self._launcher = make_launcher(self.settings, self.sessions)
            return self._launcher

    def close(self) -> None:
        with self._lock:
            launcher, self._launcher = self._launcher, None
        if launcher is not None:
            launcher.close()
        self.engine.dispose()
