"""Serving test fixtures: admin (in-thread uvicorn) that launches real services, and one trained, deployed app.

``trained_app`` trains for real, once for the session, and ``deployed`` deploys for real, through admin and the SDK:
the digits dataset is uploaded, the ``WideSlicedMLP`` template (``wide_mlp_template.py``: the built-in sliced MLP,
wider) is uploaded, a train job of one trial runs in a real advisor and train worker (about two epochs on CPU), and
its best trial is deployed with one predictor and two inference workers (local launcher, real Kafka-protocol
broker, Redis and PostgreSQL from the test session's stack). Each module has its own admin (``serving_settings``
may differ per module) and deploys the session's trained app from it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import pytest
from serving_helpers import Deployed, wait_until
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from admin.app import create_app
from demo.life_cycle import write_digits
from easel.db.models import Service
from easel.db.session import make_engine, make_sessionmaker, session_scope
from easel.settings import Settings
from sdk import Client, TrainBudget
from tests.support import ServerThread

ROOT = ("serving-root@easel.test", "serving-root-password")
TEMPLATE = Path(__file__).with_name("wide_mlp_template.py")
TASK = "IMAGE_CLASSIFICATION"


def base_serving_settings(settings: Settings) -> Settings:
    """What every serving admin here runs with (a module may add its own, e.g. a warm standby)."""
    return settings.model_copy(update={
        "superadmin_email": ROOT[0], "superadmin_password": ROOT[1], "password_hash_rounds": 4,
        "template_check_timeout_s": 30.0, "template_check_memory_mb": 4096,
        "serving_drain_s": 5.0, "explainers": 0,  # explanations have their own tests (tests/explain)
        "supervisor_backoff_base_s": 0.5, "supervisor_backoff_cap_s": 4.0,  # relaunch quickly in chaos tests
        "metrics_interval_s": 2.0,  # admin's serving samples, scraped by the monitoring check
    })


@pytest.fixture(scope="module")
def serving_settings(settings: Settings) -> Settings:
    return base_serving_settings(settings)


@pytest.fixture(scope="module")
def serving_admin(serving_settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(create_app(serving_settings)) as server:
        yield server


@pytest.fixture(scope="module")
def sessions(serving_settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(serving_settings.resolved_database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@dataclass(frozen=True)
class TrainedApp:
    """The app trained once for the session (its train job COMPLETED, its best trial's parameters stored)."""
    app: str
    version: int
    x: np.ndarray
    y: np.ndarray


@dataclass
class Trained:
    client: Client
    app: str
    version: int
    x: np.ndarray
    y: np.ndarray
    #: the deployment the module's tests share while it stays healthy
    current: Deployed | None = None


@pytest.fixture(scope="session")
def trained_app(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> TrainedApp:
    """Trains the app once for every serving module (training is the costly part of their set-up; each module
    deploys it from its own admin). The training admin is stopped once the train job is done: a module's admin
    is then the only supervisor of what it deploys."""
    with ServerThread(create_app(base_serving_settings(settings))) as server, \
            Client(server.url, timeout=120) as client:
        client.login(*ROOT)
        folder = tmp_path_factory.mktemp("digits")
        train_path, val_path = write_digits(folder)
        suffix = uuid.uuid4().hex[:6]
        train = client.upload_dataset(f"digits-train-{suffix}", TASK, train_path)
        val = client.upload_dataset(f"digits-val-{suffix}", TASK, val_path)
        model = client.upload_model(f"wide-sliced-mlp-{suffix}", TASK, TEMPLATE, class_name="WideSlicedMLP")
        app = f"serve-{suffix}"
        train_job = client.create_train_job(app, TASK, train.id, val.id, [model.id],
                                            budget=TrainBudget(model_trial_count=1, workers=1, time_hours=0.2))
        version = train_job.app_version
        try:
            wait_until(lambda: client.get_train_job(app, version).status in ("COMPLETED", "STOPPED", "ERRORED"),
                       300, "the train job to finish")
        finally:
            if client.get_train_job(app, version).status in ("STARTED", "RUNNING"):
                client.stop_train_job(app, version)
        trials = client.list_trials(app, version, best=1).items
        assert trials and trials[0].status == "COMPLETED", f"training failed: {trials}"
    with np.load(val_path) as data:
        return TrainedApp(app, version, data["x"], data["y"])


@pytest.fixture(scope="module")
def trained(trained_app: TrainedApp, serving_admin: ServerThread) -> Iterator[Trained]:
    """The session's trained app, seen through this module's admin; what the module deployed is stopped at its
    end (the next module's admin supervises its own deployment)."""
    client = Client(serving_admin.url, timeout=120)
    client.login(*ROOT)
    app, version = trained_app.app, trained_app.version
    try:
        yield Trained(client, app, version, trained_app.x, trained_app.y)
    finally:
        try:
            if any(j.status in ("STARTED", "RUNNING", "DEGRADED") for j in client.list_inference_jobs(app=app)):
                client.stop_inference_job(app, version)
        finally:
            client.close()


def _healthy(deployed: Deployed, sessions: sessionmaker[Session]) -> bool:
    """RUNNING, with every one of its services' processes alive (a test may have killed one or stopped it)."""
    job = deployed.client.get_inference_job(deployed.app, deployed.version)
    if job.id != deployed.job.id or job.status != "RUNNING":
        return False
    with session_scope(sessions) as session:
        pids = session.scalars(select(Service.pid).where(Service.inference_job_id == job.id)).all()
    return all(pid is not None and _alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def deployed(trained: Trained, sessions: sessionmaker[Session]) -> Deployed:
    """The trained app deployed with one predictor and two inference workers, RUNNING. Shared by the tests
    while it stays healthy; a test that kills a worker or stops the job leaves the next one a fresh deployment,
    so the tests hold in any order."""
    client, app, version = trained.client, trained.app, trained.version
    if trained.current is not None and _healthy(trained.current, sessions):
        return trained.current
    if trained.current is not None and client.get_inference_job(app, version).status in ("STARTED", "RUNNING",
                                                                                           "DEGRADED"):
        client.stop_inference_job(app, version)
    client.create_inference_job(app, version, workers=2)
    job = client.wait_inference_job(app, version, timeout_s=120)
    client.api_key = client.create_api_key(app, version, "serving-tests").key
    trained.current = Deployed(client, app, version, job, trained.x, trained.y, client.api_key or "")
    return trained.current
