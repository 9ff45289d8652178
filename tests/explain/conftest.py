"""End-to-end explanation fixtures: admin (in-thread) launching real services, and one run of the demo's life
cycle (:data:`demo.life_cycle.QUICK`: upload digits, tune the built-in sliced CNN for one trial, deploy it with two
inference workers and an explainer, predict, explain). The end-to-end tests then use that deployment.

Launched services inherit this process's environment: the explainers here hand over a silent explainer's
work after 3 s (not 10), and the predictor accepts large LIME requests (the killed-explainer test needs one
that runs for a while).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from explain_helpers import ROOT, DemoRun
from sqlalchemy.orm import Session, sessionmaker

from admin.app import create_app
from demo.life_cycle import QUICK, run_life_cycle, write_digits
from easel.db.session import make_engine, make_sessionmaker
from easel.settings import Settings
from sdk import Client
from tests.support import ServerThread

SERVICE_ENV = {"EASEL_EXPLAIN_RECLAIM_S": "3", "EASEL_EXPLAIN_MAX_SAMPLES": "100000", "TQDM_DISABLE": "1"}


@pytest.fixture(scope="module")
def explain_settings(settings: Settings) -> Iterator[Settings]:
    saved = {key: os.environ.get(key) for key in SERVICE_ENV}
    os.environ.update(SERVICE_ENV)
    try:
        yield settings.model_copy(update={
            "superadmin_email": ROOT[0], "superadmin_password": ROOT[1], "password_hash_rounds": 4,
            "serving_drain_s": 5.0, "explain_timeout_s": 240.0,
        })
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def explain_admin(explain_settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(create_app(explain_settings)) as server:
        yield server


@pytest.fixture(scope="module")
def sessions(explain_settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(explain_settings.resolved_database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def show_service_logs(log_dir: Path, app: str, lines: int = 40) -> None:
    """The end of each of the app's service logs (the services run in other processes: their tracebacks are
    only there)."""
    for path in sorted(log_dir.glob(f"*{app}*.log")):
        print(f"----- {path.name} -----\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))


@pytest.fixture(scope="module")
def demo_run(explain_admin: ServerThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    client = Client(explain_admin.url, timeout=300)
    client.login(*ROOT)
    app = f"explain-{uuid.uuid4().hex[:6]}"
    out = tmp_path_factory.mktemp("overlays")
    with np.load(write_digits(tmp_path_factory.mktemp("digits"))[1]) as data:
        x, y = data["x"], data["y"]
    try:
        try:
            result = run_life_cycle(client, QUICK, out, app=app)
        except BaseException:
            show_service_logs(explain_admin.app.state.admin.settings.log_dir, app)
            raise
        yield DemoRun(client, result, out, x, y)
    finally:
        try:
            for job in client.list_inference_jobs(app=app).items:
                if job.status in ("STARTED", "RUNNING"):
                    client.stop_inference_job(job.app, job.app_version)
            for job in client.list_train_jobs(app=app).items:
                if job.status in ("STARTED", "RUNNING"):
                    client.stop_train_job(job.app, job.app_version)
        finally:
            client.close()
