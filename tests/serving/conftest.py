"""Serving test fixtures: admin (in-thread uvicorn) that launches real services, and one trained, deployed app.

``deployed`` trains for real and deploys for real, through admin and the SDK: the digits dataset is uploaded,
the ``WideSlicedMLP`` template (``wide_mlp_template.py``: the built-in sliced MLP, wider) is uploaded, a
train job of one trial runs in a real advisor and train worker (about two epochs on CPU), and its best trial
is deployed with one predictor and two inference workers (local launcher, real Kafka-protocol broker, Redis
and PostgreSQL from the test session's stack).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from serving_helpers import Deployed, wait_until
from sqlalchemy.orm import Session, sessionmaker

from admin.app import create_app
from easel.db.session import make_engine, make_sessionmaker
from easel.demo import write_digits
from easel.settings import Settings
from sdk import Client, TrainBudget
from tests.support import ServerThread

ROOT = ("serving-root@easel.test", "serving-root-password")
TEMPLATE = Path(__file__).with_name("wide_mlp_template.py")
TASK = "IMAGE_CLASSIFICATION"


@pytest.fixture(scope="module")
def serving_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={
        "superadmin_email": ROOT[0], "superadmin_password": ROOT[1], "password_hash_rounds": 4,
        "template_check_timeout_s": 30.0, "template_check_memory_mb": 4096,
        "serving_drain_s": 5.0, "explainers": 0,  # explanations have their own tests (tests/explain)
    })


@pytest.fixture(scope="module")
def serving_admin(serving_settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(create_app(serving_settings)) as server:
        yield server


@pytest.fixture(scope="module")
def sessions(serving_settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(serving_settings.resolved_database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def deployed(serving_admin: ServerThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    client = Client(serving_admin.url, timeout=120)
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
    job = None
    try:
        wait_until(lambda: client.get_train_job(app, version).status in ("COMPLETED", "STOPPED", "ERRORED"), 300,
                   "the train job to finish")
        trials = client.list_trials(app, version, best=1).items
        assert trials and trials[0].status == "COMPLETED", f"training failed: {trials}"
        job = client.create_inference_job(app, version, workers=2)
        job = client.wait_inference_job(app, version, timeout_s=120)
        with np.load(val_path) as data:
            x, y = data["x"], data["y"]
        yield Deployed(client, app, version, job, x, y)
    finally:
        try:
            if client.get_train_job(app, version).status in ("STARTED", "RUNNING"):
                client.stop_train_job(app, version)
            if job is not None and client.get_inference_job(app, version).status in ("STARTED", "RUNNING"):
                client.stop_inference_job(app, version)
        finally:
            client.close()

