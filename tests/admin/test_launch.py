"""With admin's real launcher, a train job's advisor and workers are real local processes."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
from admin_helpers import SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD, TASK
from sqlalchemy import select

from admin.app import create_app
from easel.db.models import Service
from easel.settings import Settings
from sdk import Client, TrainBudget
from tests.support import ServerThread, npz_file


def test_services_are_launched_and_stopped(admin_settings: Settings, sessions, tmp_path: Path) -> None:
    with ServerThread(create_app(admin_settings)) as server, Client(server.url) as client:
        client.login(SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
        data = client.upload_dataset("d", TASK, npz_file(tmp_path / "d.npz", n=30))
        mlp = next(m.id for m in client.list_models() if m.name == "SlicedMLP")
        job = client.create_train_job("launched", TASK, data.id, data.id, [mlp],
                                      budget=TrainBudget(model_trial_count=1, time_hours=0.05, workers=1))
        services = job.sub_train_jobs[0].services
        assert sorted(s.kind for s in services) == ["ADVISOR", "TRAIN_WORKER"]
        assert {s.launcher for s in services} == {"local"}
        with sessions() as session:
            rows = session.scalars(select(Service).where(Service.id.in_([s.id for s in services]))).all()
            pids = [row.pid for row in rows]
            assert all(row.log_path and Path(row.log_path).exists() for row in rows)
        assert all(pid and psutil.pid_exists(pid) for pid in pids)
        stopped = client.stop_train_job("launched", 1)
        assert {s.status for s in stopped.sub_train_jobs[0].services} == {"STOPPED"}
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
