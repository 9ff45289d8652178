"""A second, private stack: restart keeps metadata, `up` is idempotent, a taken port is a clear error."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from easel.cli import main as cli_main
from easel.credentials import apply_local_credentials
from easel.db.enums import UserRole
from easel.db.models import User
from easel.db.session import make_engine, make_sessionmaker, session_scope
from easel.local_stack import LocalStack, StackError
from easel.settings import DEV_SUPERADMIN_PASSWORD, Settings, get_settings
from easel.stack.admin_server import AdminPart
from easel.stack.process import free_port
from sdk import Client


@pytest.fixture
def private_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("EASEL_DATA_DIR", str(tmp_path / "easel"))
    for part in ("POSTGRES", "REDIS", "KAFKA", "ADMIN"):
        monkeypatch.setenv(f"EASEL_{part}_PORT", str(free_port()))
    return get_settings()


@pytest.fixture
def private_stack(private_settings: Settings) -> Iterator[LocalStack]:
    stack = LocalStack(private_settings)
    try:
        yield stack
    finally:
        stack.down()


def test_metadata_survives_down_and_up(private_stack: LocalStack) -> None:
    report = private_stack.up()
    assert report.started == ["postgres", "redis", "kafka"]
    engine = make_engine(private_stack.postgres.url)
    with session_scope(make_sessionmaker(engine)) as session:
        session.add(User(email="keep@example.com", password_hash="x", role=UserRole.APP_USER))
    engine.dispose()

    assert private_stack.down() == ["kafka", "redis", "postgres"]
    assert not any(part.running for part in private_stack.status())

    private_stack.up()
    engine = make_engine(private_stack.postgres.url)
    with session_scope(make_sessionmaker(engine)) as session:
        emails = session.scalars(select(User.email)).all()
    engine.dispose()
    assert emails == ["keep@example.com"]


def test_up_twice_does_not_start_twice(private_stack: LocalStack) -> None:
    private_stack.up()
    pids = {part.name: part.pid() for part in private_stack.parts}
    second = private_stack.up()
    assert second.started == []
    assert second.already_running == ["postgres", "redis", "kafka"]
    assert {part.name: part.pid() for part in private_stack.parts} == pids
    health = private_stack.status()
    assert all(part.healthy for part in health)
    versions = {part.name: part.version for part in health}
    assert versions["postgres"].startswith("PostgreSQL ")
    assert versions["redis"].startswith("Redis ")
    assert "tansu" in versions["kafka"]


def test_taken_port_is_a_clear_error_and_nothing_is_left_running(private_settings: Settings) -> None:
    stack = LocalStack(private_settings)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", private_settings.redis_port))
        squatter.listen()
        with pytest.raises(StackError, match=rf"port {private_settings.redis_port} .* already taken"):
            stack.up()
    # postgres had started before redis failed: the failed `up` stopped it again.
    assert not any(part.running for part in stack.status())


def test_cli_status_reports_each_part(private_stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["status"]) == 1  # nothing running yet
    assert cli_main(["up"]) == 0
    first = capsys.readouterr().out
    # the first `up` generated the superadmin password, printed it once, and admin seeded it
    generated = apply_local_credentials(private_stack.settings).superadmin_password
    assert generated != DEV_SUPERADMIN_PASSWORD and f"password: {generated}" in first
    with Client(AdminPart(private_stack.settings).url) as client:
        assert client.login(private_stack.settings.superadmin_email, generated).user.role == "SUPERADMIN"
    assert cli_main(["up"]) == 0
    assert generated not in capsys.readouterr().out
    assert cli_main(["status"]) == 0
    out = capsys.readouterr().out
    for name in ("postgres", "redis", "kafka"):
        assert name in out
    assert "healthy" in out
    assert cli_main(["down"]) == 0


def test_a_trust_cluster_of_an_older_version_is_converted_to_passwords(private_settings: Settings) -> None:
    import os
    import pwd

    import psycopg

    postgres = LocalStack(private_settings).postgres
    postgres.root.mkdir(parents=True)
    if postgres.run_as is not None:  # as root the cluster belongs to the system user, as `_start` arranges
        from easel.stack.postgres_server import _allow_traversal, postgres_bin_dir

        _allow_traversal(postgres_bin_dir())
        _allow_traversal(postgres.root)
        user = pwd.getpwnam(postgres.run_as)
        os.chown(postgres.root, user.pw_uid, user.pw_gid)
    postgres._run("initdb", "-D", str(postgres.pgdata), "--auth=trust", "--encoding=UTF8", "--no-locale",
                  "-U", "postgres")  # what `easel up` did before issue #13
    try:
        postgres.start()
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(f"host=127.0.0.1 port={postgres.port} user=postgres dbname=easel connect_timeout=3")
        with psycopg.connect(postgres.superuser_conninfo("postgres")) as connection:
            owner = connection.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'easel'")
            assert owner.fetchone() == ("easel_admin",)
    finally:
        postgres.stop()
