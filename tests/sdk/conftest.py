"""SDK test fixtures: a real admin server (uvicorn on a loopback port) over the session's PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
from fake_launcher import FakeLauncher

from admin.app import create_app
from easel.settings import Settings
from sdk import Client, User
from tests.support import ServerThread, reset_database

SDK_SUPERADMIN = ("sdk-root@easel.test", "sdk-root-password")
SDK_PASSWORD = "sdk-user-password"
_counter = itertools.count()


@pytest.fixture(scope="session")
def sdk_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={
        "superadmin_email": SDK_SUPERADMIN[0], "superadmin_password": SDK_SUPERADMIN[1],
        "password_hash_rounds": 4, "max_upload_bytes": 512 * 1024, "template_check_timeout_s": 10.0,
    })


@pytest.fixture(scope="session")
def sdk_server(sdk_settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(create_app(sdk_settings, FakeLauncher)) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean_tables(sdk_settings: Settings, sdk_server: ServerThread) -> None:
    reset_database(sdk_settings.resolved_database_url)


@pytest.fixture
def url(sdk_server: ServerThread) -> str:
    return sdk_server.url


@pytest.fixture
def root(url: str) -> Iterator[Client]:
    with Client(url) as client:
        client.login(*SDK_SUPERADMIN)
        yield client


@pytest.fixture
def make_user(root: Client, url: str) -> Iterator[Callable[[str], tuple[Client, User]]]:
    clients: list[Client] = []

    def make(role: str) -> tuple[Client, User]:
        email = f"sdk-{role.lower()}-{next(_counter)}@easel.test"
        user = root.create_user(email, SDK_PASSWORD, role)
        client = Client(url)
        client.login(email, SDK_PASSWORD)
        clients.append(client)
        return client, user

    yield make
    for client in clients:
        client.close()
