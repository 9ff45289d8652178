"""Admin test fixtures: the real app served by uvicorn on a loopback port, over the session's PostgreSQL.

Every test starts from clean tables (superadmins and built-in templates are kept) and talks to the server
over real HTTP, through the SDK.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from admin_helpers import MAX_UPLOAD, PASSWORD, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD, fake_safetensors
from fake_launcher import FakeLauncher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from admin.app import create_app
from easel.blobstore import LocalBlobStore
from easel.db.enums import JobStatus, TrialStatus
from easel.db.models import TrainJob, Trial, TrialLog, new_id
from easel.db.session import make_engine, make_sessionmaker, session_scope
from easel.settings import Settings
from sdk import Client, User
from tests.support import ServerThread, reset_database, reset_login_guard

_counter = itertools.count()


@pytest.fixture(scope="session")
def admin_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={
        "superadmin_email": SUPERADMIN_EMAIL,
        "superadmin_password": SUPERADMIN_PASSWORD,
        "password_hash_rounds": 4,
        "max_upload_bytes": MAX_UPLOAD,
        "max_unpacked_bytes": 8 * 1024 * 1024,
        "max_template_bytes": 64 * 1024,
        "template_check_timeout_s": 4.0,
        "template_check_memory_mb": 2048,
    })


@pytest.fixture(scope="session")
def admin_server(admin_settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(create_app(admin_settings, FakeLauncher)) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean_tables(admin_settings: Settings, admin_server: ServerThread) -> Iterator[None]:
    reset_database(admin_settings.resolved_database_url)
    reset_login_guard(admin_settings.resolved_redis_url)
    yield
    reset_login_guard(admin_settings.resolved_redis_url)  # later suites log in from the same address


@pytest.fixture
def url(admin_server: ServerThread) -> str:
    return admin_server.url


@pytest.fixture
def anonymous(url: str) -> Iterator[Client]:
    with Client(url) as client:
        yield client


@pytest.fixture
def root(url: str) -> Iterator[Client]:
    with Client(url) as client:
        client.login(SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
        yield client


UserFactory = Callable[[str], tuple[Client, User]]


@pytest.fixture
def make_user(root: Client, url: str) -> Iterator[UserFactory]:
    """``make_user("MODEL_DEVELOPER") -> (logged-in client, user)``; clients are closed afterwards."""
    clients: list[Client] = []

    def make(role: str) -> tuple[Client, User]:
        email = f"{role.lower()}-{next(_counter)}@easel.test"
        user = root.create_user(email, PASSWORD, role)
        client = Client(url)
        client.login(email, PASSWORD)
        clients.append(client)
        return client, user

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture(scope="session")
def sessions(admin_settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(admin_settings.resolved_database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def blobs(admin_settings: Settings) -> LocalBlobStore:
    return LocalBlobStore(admin_settings.blob_dir)


TrialSeeder = Callable[..., list[str]]


@pytest.fixture
def seed_trials(sessions: sessionmaker[Session], blobs: LocalBlobStore) -> TrialSeeder:
    """Write trials as a train worker would: ``seed_trials(app, version, [(status, score, with_params)])``.

    Also marks the train job ``finish_as`` (e.g. COMPLETED) when given. Returns the trial ids in order.
    """

    def seed(app: str, version: int, trials: list[tuple[str, float | None, bool]],
             finish_as: str | None = None) -> list[str]:
        ids = []
        with session_scope(sessions) as session:
            job = session.scalars(select(TrainJob).where(TrainJob.app == app, TrainJob.app_version == version)).one()
            subs = sorted(job.sub_train_jobs, key=lambda s: s.created_at)
            for index, (status, score, with_params) in enumerate(trials):
                sub = subs[index % len(subs)]
                trial = Trial(id=new_id(), sub_train_job_id=sub.id, no=index + 1, knobs={"lr": 0.01 * (index + 1)},
                              status=TrialStatus(status), score=score, attempts=1)
                if with_params:
                    trial.params_key = f"params/{sub.id}/{trial.id}.safetensors"
                    blobs.put_bytes(trial.params_key, fake_safetensors(index))
                session.add(trial)
                session.flush()
                session.add(TrialLog(trial_id=trial.id, message=f"epoch 1 of trial {index + 1}",
                                     metrics={"epoch": 1.0, "loss": 0.5}))
                ids.append(trial.id)
            if finish_as is not None:
                job.status = JobStatus(finish_as)
        return ids

    return seed
