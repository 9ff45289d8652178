"""Admin's supervisor keeps a train job alive: a SIGKILLed advisor or worker is relaunched, the advisor
resumes from the trials table without repeating numbers, and the job completes (real processes)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from sqlalchemy import select

from admin.app import create_app
from easel.db.enums import ServiceKind, ServiceStatus
from easel.db.models import Service
from easel.db.session import make_engine, make_sessionmaker, session_scope
from easel.settings import Settings
from sdk import Client, TrainBudget
from tests.support import ServerThread, npz_file

EMAIL, PASSWORD = "supervised-root@easel.test", "supervised-root-password"
TEMPLATE = Path(__file__).with_name("quadratic_template.py")


def _live(sessions, sub_id: str, kind: ServiceKind) -> list[Service]:
    with session_scope(sessions) as session:
        return list(session.scalars(select(Service).where(
            Service.sub_train_job_id == sub_id, Service.kind == kind,
            Service.status == ServiceStatus.RUNNING)))


def _wait(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_killed_advisor_and_worker_are_replaced(settings: Settings, tmp_path: Path) -> None:
    admin_settings = settings.model_copy(update={
        "superadmin_email": EMAIL, "superadmin_password": PASSWORD,
        "password_hash_rounds": 4,
    })
    sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
    with ServerThread(create_app(admin_settings)) as server, Client(server.url) as client:
        client.login(EMAIL, PASSWORD)
        data = client.upload_dataset("q", "TEST_TASK", npz_file(tmp_path / "q.npz"))
        model = client.upload_model("quadratic-supervised", "TEST_TASK", TEMPLATE, class_name="Quadratic")
        job = client.create_train_job("supervised", "TEST_TASK", data.id, data.id, [model.id],
                                      budget=TrainBudget(model_trial_count=5, workers=1, early_stop=False))
        sub_id = job.sub_train_jobs[0].id

        _wait(lambda: any(t.status == "COMPLETED" for t in client.list_trials(job.app, 1)), 90, "a first trial")
        advisor = _live(sessions, sub_id, ServiceKind.ADVISOR)[0]
        os.kill(advisor.pid, signal.SIGKILL)
        _wait(lambda: any(s.id != advisor.id for s in _live(sessions, sub_id, ServiceKind.ADVISOR)), 30,
              "a replacement advisor")

        worker = _live(sessions, sub_id, ServiceKind.TRAIN_WORKER)[0]
        os.kill(worker.pid, signal.SIGKILL)
        _wait(lambda: any(s.id != worker.id for s in _live(sessions, sub_id, ServiceKind.TRAIN_WORKER)), 30,
              "a replacement worker")

        _wait(lambda: client.get_train_job(job.app, 1).status == "COMPLETED", 180, "the job to complete")
        trials = list(client.list_trials(job.app, 1))
        assert sorted(t.no for t in trials) == [1, 2, 3, 4, 5], "no trial number repeated or skipped"
        assert all(t.status == "COMPLETED" for t in trials), [(t.no, t.status, t.error) for t in trials]

        def advisor_statuses() -> list[str]:
            with session_scope(sessions) as session:
                return sorted(s.value for s in session.scalars(select(Service.status).where(
                    Service.sub_train_job_id == sub_id, Service.kind == ServiceKind.ADVISOR)))

        # the killed advisor is recorded ERRORED; its replacement finished the job and exited cleanly
        _wait(lambda: advisor_statuses() == ["ERRORED", "STOPPED"], 30, "the advisors' final states")
