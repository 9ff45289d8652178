"""Test session fixtures: the real local stack (PostgreSQL, Redis, Kafka broker) started once, on demand.

The stack is started through :class:`easel.local_stack.LocalStack` — the same code as ``easel up`` — in a
temporary data dir on free loopback ports, and only when a test asks for it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from s3_server import S3Server, start_s3_server

from easel.local_stack import LocalStack
from easel.settings import Settings, get_settings
from easel.stack.process import free_port


@pytest.fixture(scope="session")
def stack_settings() -> Iterator[Settings]:
    data_dir = Path(tempfile.mkdtemp(prefix="easel-test-"))
    env = {
        "EASEL_DATA_DIR": str(data_dir),
        "EASEL_POSTGRES_PORT": str(free_port()),
        "EASEL_REDIS_PORT": str(free_port()),
        "EASEL_KAFKA_PORT": str(free_port()),
        "EASEL_SECRET_KEY": "test-secret-key-0123456789",
        # A warm standby worker per inference job is the default (issue #12), but it is a whole extra model
        # process: tests opt in where they test it (tests/serving/test_chaos_serving.py).
        "EASEL_SERVING_STANDBY_WORKERS": "0",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    for key in ("EASEL_DATABASE_URL", "EASEL_REDIS_URL", "EASEL_KAFKA_BOOTSTRAP"):
        os.environ.pop(key, None)
    try:
        yield get_settings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def local_stack(stack_settings: Settings) -> Iterator[LocalStack]:
    """The running stack for the whole test session; stopped at the end."""
    stack = LocalStack(stack_settings)
    stack.up()
    try:
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="session")
def settings(local_stack: LocalStack) -> Settings:
    """Settings whose URLs point at the running test stack."""
    return local_stack.settings


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A local S3-compatible server (moto's standalone server), started once on demand."""
    server = start_s3_server("127.0.0.1", free_port())
    try:
        yield server
    finally:
        server.stop()
