"""A contract fake of :class:`easel.launcher.Launcher` for tests of admin's REST surface.

It keeps the launcher's contract — every service it "starts" is a row in the ``services`` table, RUNNING,
with the exact argv and environment it would run with; ``stop`` ends it STOPPED; ``status`` reads it —
but runs no process, so tests of jobs and permissions need no advisor, worker or predictor.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from easel.db.models import Service
from easel.db.session import session_scope
from easel.jobs import lifecycle
from easel.launcher import Launcher, ServiceSpec, ServiceState


class FakeLauncher(Launcher):
    """Records services as a launcher would and starts nothing (contract fake)."""

    name = "fake"

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def start(self, spec: ServiceSpec) -> ServiceState:
        with session_scope(self.sessions) as session:
            row = lifecycle.new_service(
                name=spec.name, kind=spec.kind, launcher=self.name, host=spec.host, port=spec.port,
                command={"argv": list(spec.argv), "env": dict(spec.env)},
                sub_train_job_id=spec.sub_train_job_id, inference_job_id=spec.inference_job_id,
            )
            session.add(row)
            lifecycle.mark_service_running(row)
            session.flush()
            return ServiceState.of(row)

    def stop(self, service_id: str, timeout_s: float = 10.0) -> ServiceState:
        with session_scope(self.sessions) as session:
            row = session.get_one(Service, service_id)
            if row.status in lifecycle.LIVE_SERVICE:
                lifecycle.mark_service_exited(row, None, stopped=True)
            return ServiceState.of(row)

    def status(self, service_id: str) -> ServiceState:
        with session_scope(self.sessions) as session:
            return ServiceState.of(session.get_one(Service, service_id))
