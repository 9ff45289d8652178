"""Fixtures of the hopping tests: sessions on the session's real PostgreSQL, and a launcher of real services."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from easel.db.session import make_engine, make_sessionmaker
from easel.launcher import LocalLauncher
from easel.settings import Settings


@pytest.fixture(scope="module")
def sessions(settings: Settings) -> sessionmaker[Session]:
    return make_sessionmaker(make_engine(settings.resolved_database_url))


@pytest.fixture
def launcher(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[LocalLauncher]:
    """Starts services; stops every one it started at the end of the test."""
    launcher = LocalLauncher(settings, sessions)
    yield launcher
    for service_id in list(launcher._children):
        launcher.stop(service_id, timeout_s=5)
