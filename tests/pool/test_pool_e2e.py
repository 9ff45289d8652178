"""The shared train pool on the real stack: admin (real local launcher) runs two generic train workers and
allocates them among two users' jobs, each with its own real advisor; trials run sandboxed as usual."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from admin.app import create_app
from admin.services import orchestration
from easel.blobstore import LocalBlobStore
from easel.db.enums import DatasetFormat, JobStatus, ModelSource, TrialStatus, UserRole
from easel.db.models import Dataset, Model, Service, SubTrainJob, TrainJob, Trial, User
from easel.db.session import make_engine, make_sessionmaker, session_scope
from easel.model import knob_config_to_dict
from easel.settings import Settings
from sdk import Client, Invalid
from sdk.cli import main as easel
from tests.support import ServerThread, npz_file

TEMPLATE = Path(__file__).parents[1] / "tuning" / "quadratic_template.py"
EMAIL, PASSWORD = "pool-root@easel.test", "pool-root-password"
POOL = 2


@pytest.fixture(scope="module")
def pool_admin(settings: Settings) -> Iterator[tuple[ServerThread, Any]]:
    admin_settings = settings.model_copy(update={
        "superadmin_email": EMAIL, "superadmin_password": PASSWORD, "password_hash_rounds": 4,
        "train_pool_workers": POOL, "train_pool_policy": "regret_rate",
    })
    app = create_app(admin_settings)
    with ServerThread(app) as server:
        yield server, app.state.admin


@pytest.fixture(scope="module")
def sessions(settings: Settings) -> sessionmaker[Session]:
    return make_sessionmaker(make_engine(settings.resolved_database_url))


@pytest.fixture
def root(pool_admin: tuple[ServerThread, Any]) -> Iterator[Client]:
    with Client(pool_admin[0].url) as client:
        client.login(EMAIL, PASSWORD)
        yield client


def submit(state: Any, sessions: sessionmaker[Session], trials: int) -> tuple[str, str, str]:
    """A new user's train job over the quadratic template (``trials`` trials), launched as admin launches one.
    Returns (app, train job id, sub-train-job id)."""
    sys.path.insert(0, str(TEMPLATE.parent))
    from quadratic_template import Quadratic

    blobs = LocalBlobStore(state.settings.blob_dir)
    suffix = os.urandom(4).hex()
    blobs.put_bytes(f"models/quadratic-{suffix}.py", TEMPLATE.read_bytes())
    blobs.put_bytes(f"datasets/{suffix}.npz", b"unused by this template")
    with session_scope(sessions) as session:
        user = User(email=f"pool-{suffix}@example.com", password_hash="x", role=UserRole.APP_DEVELOPER)
        session.add(user)
        session.flush()
        dataset = Dataset(name="d", task="TEST", format=DatasetFormat.NPZ, blob_key=f"datasets/{suffix}.npz",
                          size_bytes=1, num_samples=1, num_classes=1, owner_id=user.id)
        model = Model(name=f"quadratic-{suffix}", task="TEST", source=ModelSource.UPLOADED, model_class="Quadratic",
                      module_ref=f"models/quadratic-{suffix}.py",
                      knob_config=knob_config_to_dict(Quadratic.get_knob_config()), owner_id=user.id)
        session.add_all([dataset, model])
        session.flush()
        job = TrainJob(app=f"pool-{suffix}", app_version=1, task="TEST", status=JobStatus.STARTED,
                       budget={"MODEL_TRIAL_COUNT": trials, "TIME_HOURS": 1, "EARLY_STOP": False},
                       train_dataset_id=dataset.id, val_dataset_id=dataset.id, owner_id=user.id)
        session.add(job)
        session.flush()
        sub = SubTrainJob(train_job_id=job.id, model_id=model.id, status=JobStatus.STARTED)
        session.add(sub)
        session.flush()
        app, job_id, sub_id = job.app, job.id, sub.id
    orchestration.launch_train_job(state, job_id)
    return app, job_id, sub_id


def trials_of(sessions: sessionmaker[Session], sub_id: str) -> list[Trial]:
    with session_scope(sessions) as session:
        return list(session.scalars(select(Trial).where(Trial.sub_train_job_id == sub_id).order_by(Trial.no)))


def pool_services(sessions: sessionmaker[Session]) -> set[str]:
    with session_scope(sessions) as session:
        return set(session.scalars(select(Service.id).where(Service.name.like("train-pool-%"))).all())


def wait_for(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s  # a hang guard, not a speed assertion
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_two_jobs_share_two_pool_workers_and_every_trial_is_accounted(
        pool_admin: tuple[ServerThread, Any], sessions: sessionmaker[Session], root: Client) -> None:
    state = pool_admin[1]
    jobs = [submit(state, sessions, trials=4) for _ in range(2)]
    for app, _job_id, sub_id in jobs:
        wait_for(lambda app=app: root.get_train_job(app, 1).status in ("COMPLETED", "ERRORED", "STOPPED"), 300,
                 f"{app} to end")
        job = root.get_train_job(app, 1)
        assert job.status == "COMPLETED"
        assert [s.kind for s in job.sub_train_jobs[0].services] == ["ADVISOR"], "a pooled job owns no workers"
        assert job.pool_share is not None and job.pool_share.pool_size == POOL
        assert job.pool_share.assignments >= 4
        trials = trials_of(sessions, sub_id)
        assert [t.no for t in trials] == [1, 2, 3, 4], "the trial budget is respected"
        assert all(t.status == TrialStatus.COMPLETED for t in trials), [(t.no, t.status, t.error) for t in trials]
        assert {t.worker_service_id for t in trials} <= pool_services(sessions), "every trial ran on a pool worker"
    pool = root.get_pool()
    assert pool.enabled and pool.size == POOL and pool.policy == "regret_rate"
    users = {u.user_id: u for u in pool.users}
    with session_scope(sessions) as session:
        owners = [session.get_one(TrainJob, job_id).owner_id for _app, job_id, _sub in jobs]
    assert all(users[owner].assignments >= 4 for owner in owners)
    # every assignment was one of the default policy's (regret_rate) reasons
    assert {users[owner].last_reason for owner in owners} <= {"first result", "highest regret reduction per second",
                                                               "round-robin turn", "fairness floor"}


@pytest.mark.slow
def test_a_stopped_job_returns_its_workers_to_the_others(
        pool_admin: tuple[ServerThread, Any], sessions: sessionmaker[Session], root: Client) -> None:
    state = pool_admin[1]
    long_app, long_id, long_sub = submit(state, sessions, trials=40)
    wait_for(lambda: any(t.status == TrialStatus.COMPLETED for t in trials_of(sessions, long_sub)), 120,
             "the long job's first trial")
    short_app, short_id, short_sub = submit(state, sessions, trials=8)
    stopped = root.stop_train_job(long_app, 1)
    assert stopped.status == "STOPPED"
    wait_for(lambda: not any(w.train_job_id == long_id for w in root.get_pool().workers), 60,
             "the stopped job's workers to go back to the pool")
    wait_for(lambda: root.get_train_job(short_app, 1).status in ("COMPLETED", "ERRORED", "STOPPED"), 300,
             "the other job to end")
    assert root.get_train_job(short_app, 1).status == "COMPLETED"

    with session_scope(sessions) as session:
        stopped_at = session.get_one(TrainJob, long_id).stopped_at
    assert stopped_at is not None
    long_trials = trials_of(sessions, long_sub)
    assert len(long_trials) < 40
    assert all(t.status in (TrialStatus.COMPLETED, TrialStatus.TERMINATED) for t in long_trials), \
        [(t.no, t.status) for t in long_trials]
    assert not [t.no for t in long_trials if t.started_at and t.started_at > stopped_at], "no trial began after stop"
    short_trials = trials_of(sessions, short_sub)
    assert [t.status for t in short_trials] == [TrialStatus.COMPLETED] * 8
    after = {t.worker_service_id for t in short_trials if t.started_at and t.started_at > stopped_at}
    assert len(after) == POOL, "after the stop both pool workers ran the other job's trials"


def test_mop_needs_own_workers_and_is_refused_with_a_pool(root: Client, tmp_path: Path) -> None:
    data = root.upload_dataset("pool-mop", "IMAGE_CLASSIFICATION", npz_file(tmp_path / "d.npz", n=30))
    mlp = next(m.id for m in root.list_models() if m.name == "SlicedMLP")
    with pytest.raises(Invalid, match="MOP"):
        root.create_train_job("pool-mop", "IMAGE_CLASSIFICATION", data.id, data.id, [mlp],
                              budget={"MODEL_TRIAL_COUNT": 1, "MOP": True})


def test_easel_pool_shows_the_workers_and_the_floor(pool_admin: tuple[ServerThread, Any], root: Client,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    wait_for(lambda: root.get_pool().live_workers == POOL, 120, "the pool's workers to be live")
    monkeypatch.setenv("EASEL_DATA_DIR", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_ADMIN_URL", pool_admin[0].url)
    monkeypatch.setenv("EASEL_PASSWORD", PASSWORD)
    assert easel(["login", "--email", EMAIL], plugins=[]) == 0
    capsys.readouterr()
    assert easel(["pool"], plugins=[]) == 0
    out = capsys.readouterr().out
    assert f"Train pool: {POOL}/{POOL} workers live, policy regret_rate" in out and "1/(2U)" in out
    assert easel(["pool", "--json"], plugins=[]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["enabled"], shown["size"], len(shown["workers"])) == (True, POOL, POOL)
