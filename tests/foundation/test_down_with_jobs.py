"""`easel down` with live jobs (a private stack): it refuses and names them, `status` shows their services as
they really are, and `down --force` drains them, marks the jobs STOPPED and leaves no process behind."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from easel.cli import main as cli_main
from easel.db.enums import DatasetFormat, JobStatus, ModelSource, ServiceKind, ServiceStatus, UserRole
from easel.db.models import Dataset, Model, Service, SubTrainJob, TrainJob, User
from easel.db.session import make_engine, make_sessionmaker, session_scope
from easel.launcher import LocalLauncher, ServiceSpec
from easel.local_stack import LocalStack
from easel.settings import Settings, get_settings
from easel.stack.process import free_port


@pytest.fixture
def private_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, LocalStack]]:
    monkeypatch.setenv("EASEL_DATA_DIR", str(tmp_path / "easel"))
    for part in ("POSTGRES", "REDIS", "KAFKA", "ADMIN"):
        monkeypatch.setenv(f"EASEL_{part}_PORT", str(free_port()))
    settings = get_settings()
    stack = LocalStack(settings)
    stack.up()
    try:
        yield settings, stack
    finally:
        stack.down()


def live_train_job(settings: Settings) -> tuple[str, str]:
    sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
    with session_scope(sessions) as session:
        user = User(email="down@example.com", password_hash="x", role=UserRole.MODEL_DEVELOPER)
        session.add(user)
        session.flush()
        data = Dataset(name="d", task="T", format=DatasetFormat.NPZ, blob_key="k", size_bytes=1, num_samples=1,
                       num_classes=1, owner_id=user.id)
        model = Model(name="m", task="T", source=ModelSource.UPLOADED, model_class="M", module_ref="x",
                      knob_config={}, owner_id=user.id)
        session.add_all([data, model])
        session.flush()
        job = TrainJob(app="busy", app_version=1, task="T", status=JobStatus.RUNNING, budget={},
                       train_dataset_id=data.id, val_dataset_id=data.id, owner_id=user.id)
        session.add(job)
        session.flush()
        sub = SubTrainJob(train_job_id=job.id, model_id=model.id, status=JobStatus.RUNNING)
        session.add(sub)
        session.flush()
        return job.id, sub.id


def sleeper(sub_id: str, name: str) -> ServiceSpec:
    return ServiceSpec(name=name, kind=ServiceKind.ADVISOR, sub_train_job_id=sub_id,
                       argv=[sys.executable, "-c", "import time; time.sleep(600)"])


def test_down_refuses_live_jobs_and_force_drains_them(private_stack, capsys: pytest.CaptureFixture[str]) -> None:
    settings, stack = private_stack
    job_id, sub_id = live_train_job(settings)
    sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
    launcher = LocalLauncher(settings, sessions)
    doomed = launcher.start(sleeper(sub_id, "advisor-busy-doomed"))
    os.kill(doomed.pid, signal.SIGKILL)
    psutil.Process(doomed.pid).wait(10)
    kept = launcher.start(sleeper(sub_id, "advisor-busy-kept"))

    assert cli_main(["down"]) == 1
    refusal = capsys.readouterr().err
    assert "train job busy v1" in refusal and "--force" in refusal
    assert all(part.running for part in stack.status()), "a refused down stops nothing"
    assert psutil.Process(kept.pid).is_running()

    assert cli_main(["status"]) == 1, "a job service is not running"
    shown = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[2] for line in shown.splitlines() if line.startswith("advisor-busy")}
    # the killed one is shown as it really is (recorded ended on the way), not as the RUNNING it was recorded
    assert rows == {"advisor-busy-kept": "RUNNING", "advisor-busy-doomed": "ERRORED"}, shown
    assert "live: train job busy v1" in shown

    assert cli_main(["down", "--force"]) == 0
    assert not psutil.pid_exists(kept.pid) or psutil.Process(kept.pid).status() == psutil.STATUS_ZOMBIE
    assert not any(part.running for part in stack.status())
    stack.up()  # the metadata says what happened
    with session_scope(make_sessionmaker(make_engine(settings.resolved_database_url))) as session:
        assert session.get_one(TrainJob, job_id).status == JobStatus.STOPPED
        assert session.get_one(SubTrainJob, sub_id).status == JobStatus.STOPPED
        assert session.get_one(Service, kept.id).status == ServiceStatus.STOPPED
