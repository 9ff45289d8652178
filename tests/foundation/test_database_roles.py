"""Least privilege for the data services (issue #13 Build 2), on the session's real PostgreSQL: passwords are
required, each service role has only its grants, and a launched service's environment holds only its own
database URL — never the token-signing key."""

from __future__ import annotations

import json
import stat
import sys
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from easel.db.enums import ServiceKind
from easel.db.passwords import passwords_path
from easel.db.roles import GRANTS
from easel.db.session import make_engine, make_sessionmaker
from easel.launcher import LocalLauncher, ServiceSpec
from easel.local_stack import LocalStack
from easel.settings import Settings

SERVICE_ROLES = ("advisor", "train", "inference", "predictor")


def _run(settings: Settings, role: str, statement: str) -> None:
    engine = make_engine(settings.database_url_for(role))
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


def test_every_connection_needs_a_password_and_the_passwords_are_private(local_stack: LocalStack,
                                                                        settings: Settings) -> None:
    port = local_stack.postgres.port
    for user in ("postgres", "easel_admin", "easel_train"):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(f"host=127.0.0.1 port={port} user={user} dbname=easel connect_timeout=3")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f"host=127.0.0.1 port={port} user=postgres password=postgres dbname=easel connect_timeout=3")
    path = passwords_path(settings.data_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(set(json.loads(path.read_text()).values())) == 6, "one random password per role"


@pytest.mark.parametrize("role", SERVICE_ROLES)
def test_a_service_role_cannot_read_password_hashes_or_write_models(settings: Settings, role: str) -> None:
    for statement in ("SELECT password_hash FROM users", "UPDATE models SET name = name",
                      "DELETE FROM datasets", "UPDATE users SET role = 'SUPERADMIN'", "DROP TABLE trials",
                      "CREATE TABLE spy (x int)"):
        with pytest.raises(ProgrammingError, match="permission denied|must be owner"):
            _run(settings, role, statement)
    for table in GRANTS[role]:  # what it was granted, it can read
        _run(settings, role, f"SELECT count(*) FROM {table}")


def test_only_the_predictor_reads_api_keys_and_admin_owns_everything(settings: Settings) -> None:
    _run(settings, "predictor", "SELECT secret_hash FROM predictor_keys")
    for role in ("advisor", "train", "inference"):
        with pytest.raises(ProgrammingError, match="permission denied"):
            _run(settings, role, "SELECT secret_hash FROM predictor_keys")
    _run(settings, "admin", "SELECT password_hash FROM users")


def test_a_launched_service_gets_its_own_database_role_and_no_signing_key(settings: Settings,
                                                                          tmp_path: Path) -> None:
    import os

    assert os.environ.get("EASEL_SECRET_KEY"), "the test session's (admin's) environment holds the key"
    dumped = tmp_path / "env.json"
    code = f"import json, os; json.dump(dict(os.environ), open({str(dumped)!r}, 'w'))"
    sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
    launcher = LocalLauncher(settings, sessions)
    state = launcher.start(ServiceSpec(name="env-dump", kind=ServiceKind.TRAIN_WORKER, argv=[sys.executable, "-c", code]))
    give_up = time.monotonic() + 60
    while launcher.status(state.id).status.value in ("PENDING", "RUNNING") and time.monotonic() < give_up:
        time.sleep(0.1)
    env = json.loads(dumped.read_text())
    assert "EASEL_SECRET_KEY" not in env and "EASEL_SUPERADMIN_PASSWORD" not in env
    assert env["EASEL_DATABASE_URL"] == settings.database_url_for("train")
    assert "easel_train:" in env["EASEL_DATABASE_URL"] and settings.database_url_for("admin") not in env.values()
    sessions.kw["bind"].dispose()
