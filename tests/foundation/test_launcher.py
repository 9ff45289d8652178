"""The local launcher starts real processes, records them in `services`, stops them."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from easel.db.enums import ServiceKind, ServiceStatus
from easel.db.models import Service
from easel.db.session import make_engine, make_sessionmaker
from easel.launcher import LocalLauncher, ServiceSpec, make_launcher
from easel.settings import Settings

SLEEPER = [sys.executable, "-c", "import os, time; print('up', os.environ['EASEL_SERVICE_ID'], flush=True); "
           "time.sleep(120)"]


@pytest.fixture
def launcher(settings: Settings) -> LocalLauncher:
    launcher = make_launcher(settings, make_sessionmaker(make_engine(settings.resolved_database_url)))
    assert isinstance(launcher, LocalLauncher)
    return launcher


def _row(launcher: LocalLauncher, service_id: str) -> Service:
    with launcher.sessions() as session:
        return session.get_one(Service, service_id)


def test_start_and_stop_a_service(launcher: LocalLauncher) -> None:
    state = launcher.start(ServiceSpec(name="sleeper", kind=ServiceKind.OTHER, argv=SLEEPER,
                                       env={"EXTRA": "1"}))
    row = _row(launcher, state.id)
    assert row.status is ServiceStatus.RUNNING
    assert row.pid == state.pid and psutil.pid_exists(state.pid)
    assert row.command["env"] == {"EXTRA": "1"}

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "up" not in Path(state.log_path).read_text():
        time.sleep(0.1)
    assert f"up {state.id}" in Path(state.log_path).read_text(), "the service got its id and logs to its file"

    stopped = launcher.stop(state.id)
    assert stopped.status is ServiceStatus.STOPPED
    assert not psutil.pid_exists(state.pid) or psutil.Process(state.pid).status() == psutil.STATUS_ZOMBIE
    row = _row(launcher, state.id)
    assert row.status is ServiceStatus.STOPPED and row.stopped_at is not None


def test_a_service_that_crashes_is_errored(launcher: LocalLauncher) -> None:
    state = launcher.start(ServiceSpec(name="crasher", kind=ServiceKind.OTHER,
                                       argv=[sys.executable, "-c", "raise SystemExit(3)"]))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and launcher.status(state.id).status is ServiceStatus.RUNNING:
        time.sleep(0.1)
    final = launcher.status(state.id)
    assert final.status is ServiceStatus.ERRORED
    assert final.exit_code == 3


def test_a_missing_program_is_a_clear_error(launcher: LocalLauncher) -> None:
    with pytest.raises(ValueError, match="cannot start service 'ghost'"):
        launcher.start(ServiceSpec(name="ghost", kind=ServiceKind.OTHER, argv=["/nonexistent/program"]))


def test_bad_spec_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty argv"):
        ServiceSpec(name="x", kind=ServiceKind.OTHER, argv=[])


def test_a_death_is_reported_to_exit_listeners_at_once(launcher: LocalLauncher) -> None:
    """The supervisor's wake-up: the launcher waits on its children, so a listener hears of an exit without
    anyone polling."""
    ended: list[str] = []
    heard = threading.Event()
    launcher.on_exit(lambda service_id: (ended.append(service_id), heard.set()))
    state = launcher.start(ServiceSpec(name="short-lived", kind=ServiceKind.OTHER,
                                       argv=[sys.executable, "-c", "raise SystemExit(4)"]))
    assert heard.wait(30), "the exit listener was called"
    assert ended == [state.id]
    final = launcher.status(state.id)
    assert final.status is ServiceStatus.ERRORED and final.exit_code == 4
