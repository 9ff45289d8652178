"""The Alembic migration upgrades and downgrades on real PostgreSQL and on SQLite."""

from pathlib import Path

import psycopg
import pytest
from sqlalchemy import inspect

from easel.db.migrate import current_revision, downgrade, upgrade
from easel.db.session import make_engine
from easel.local_stack import LocalStack

TABLES = {
    "users", "datasets", "models", "train_jobs", "sub_train_jobs", "trials", "trial_logs",
    "inference_jobs", "services", "explanations", "predictor_keys", "model_versions", "model_stage_changes", "promotion_verdicts",
    "inference_job_updates", "feedback", "serving_samples", "apps",
}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


@pytest.fixture
def scratch_postgres_url(local_stack: LocalStack) -> str:
    """A throw-away database on the session's PostgreSQL, so downgrades don't touch the shared one."""
    with psycopg.connect(local_stack.postgres.superuser_conninfo("postgres"), autocommit=True) as connection:
        connection.execute("DROP DATABASE IF EXISTS easel_migrations")
        connection.execute("CREATE DATABASE easel_migrations OWNER easel_admin")
    return local_stack.postgres.url.rsplit("/", 1)[0] + "/easel_migrations"


def test_upgrade_and_downgrade_on_postgres(scratch_postgres_url: str) -> None:
    upgrade(scratch_postgres_url)
    assert current_revision(scratch_postgres_url) is not None
    assert _tables(scratch_postgres_url) == TABLES
    downgrade(scratch_postgres_url, "base")
    assert current_revision(scratch_postgres_url) is None
    assert _tables(scratch_postgres_url) == set()
    upgrade(scratch_postgres_url)  # and back up again: the downgrade left nothing behind
    assert _tables(scratch_postgres_url) == TABLES


def test_upgrade_and_downgrade_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    upgrade(url)
    assert _tables(url) == TABLES
    downgrade(url, "base")
    assert _tables(url) == set()


def test_foreign_keys_are_real(scratch_postgres_url: str) -> None:
    upgrade(scratch_postgres_url)
    engine = make_engine(scratch_postgres_url)
    try:
        inspector = inspect(engine)
        referred = {
            (table, fk["referred_table"])
            for table in TABLES
            for fk in inspector.get_foreign_keys(table)
        }
    finally:
        engine.dispose()
    for edge in [
        ("datasets", "users"), ("train_jobs", "datasets"), ("sub_train_jobs", "train_jobs"),
        ("sub_train_jobs", "models"), ("trials", "sub_train_jobs"), ("trials", "services"),
        ("trial_logs", "trials"), ("inference_jobs", "train_jobs"), ("services", "sub_train_jobs"),
        ("services", "inference_jobs"),
    ]:
        assert edge in referred
