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


def test_a_status_poll_during_the_start_does_not_call_the_service_dead(launcher: LocalLauncher,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The supervisor polls every live row; between the row's commit and its pid being recorded (a wide window
    on a busy machine) the poll must not read "no pid yet" as a death — that wrote ERRORED and the start then
    failed with "cannot go from ERRORED to RUNNING"."""
    seen: list[ServiceStatus] = []

    def poll_mid_start(spec: ServiceSpec, env: dict[str, str], log_path: Path, service_id: str) -> None:
        seen.append(launcher.status(service_id).status)
        return None  # then started the cold way

    monkeypatch.setattr(launcher, "_fork_warm", poll_mid_start)
    state = launcher.start(ServiceSpec(name="polled", kind=ServiceKind.OTHER, argv=SLEEPER))
    try:
        assert seen == [ServiceStatus.STARTED]
        assert state.status is ServiceStatus.RUNNING and launcher.status(state.id).status is ServiceStatus.RUNNING
    finally:
        launcher.stop(state.id)


def test_a_death_during_the_start_is_recorded_after_it(launcher: LocalLauncher,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A child that dies before its start is recorded: the listeners hear of it once the row says RUNNING, and
    their status poll then records the crash (not a failed start)."""
    import easel.launcher.local as local

    heard: list[tuple[str, ServiceStatus, int | None]] = []
    done = threading.Event()

    def listener(service_id: str) -> None:
        state = launcher.status(service_id)
        heard.append((service_id, state.status, state.exit_code))
        done.set()

    launcher.on_exit(listener)
    real_process = psutil.Process

    def process_after_the_child_died(pid: int) -> psutil.Process:
        child = next(iter(launcher._children.values()))
        deadline = time.monotonic() + 30
        while child.returncode is None and time.monotonic() < deadline:  # the watcher thread reaps it
            time.sleep(0.02)
        assert child.returncode == 5, "the child died while its start was still being recorded"
        return real_process(pid)

    monkeypatch.setattr(local.psutil, "Process", process_after_the_child_died)
    state = launcher.start(ServiceSpec(name="dies-at-once", kind=ServiceKind.OTHER,
                                       argv=[sys.executable, "-c", "raise SystemExit(5)"]))
    assert state.status is ServiceStatus.RUNNING, "the start itself succeeded"
    assert done.wait(30), "the listener heard of the death once the start was recorded"
    assert heard == [(state.id, ServiceStatus.ERRORED, 5)]


def test_both_ends_of_the_requests_hop_get_admins_kafka_client() -> None:
    """The predictor (producer) and the inference workers (consumers) run on the client admin is set to; other
    services are not told."""
    from easel.launcher.service_env import settings_env

    settings = Settings(serving_kafka_client="confluent-kafka")
    for kind in (ServiceKind.PREDICTOR, ServiceKind.INFERENCE_WORKER):
        assert settings_env(settings, kind)["EASEL_SERVING_KAFKA_CLIENT"] == "confluent-kafka"
    assert "EASEL_SERVING_KAFKA_CLIENT" not in settings_env(settings, ServiceKind.TRAIN_WORKER)
