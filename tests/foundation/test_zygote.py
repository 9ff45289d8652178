"""Warm starts: the local launcher forks advisors from a zygote that imported their modules once
(easel/launcher/zygote.py) — same command line, own environment, own session and log, death noticed at once."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from easel.db.enums import ServiceKind, ServiceStatus
from easel.db.session import make_engine, make_sessionmaker
from easel.launcher import LocalLauncher, ServiceSpec, make_launcher
from easel.local_stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]

# The service: reports what it was started with, then sleeps (or exits with the code it is given).
SERVICE = """
import json, os, sys
import numpy as np
print(json.dumps({"argv": sys.argv[1:], "service_id": os.environ.get("EASEL_SERVICE_ID"),
                  "extra": os.environ.get("EXTRA"), "secret": "EASEL_SECRET_KEY" in os.environ,
                  "warm": "skopt" in sys.modules, "draw": float(np.random.random()), "sid": os.getsid(0),
                  "pid": os.getpid()}), flush=True)
if sys.argv[1:] and sys.argv[1].startswith("exit="):
    raise SystemExit(int(sys.argv[1][5:]))
import time
time.sleep(120)
"""


@pytest.fixture(scope="module")
def warm(local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalLauncher, str]]:
    """One launcher and zygote for the module (its imports take seconds); the test that kills it runs last."""
    folder = tmp_path_factory.mktemp("warm")
    (folder / "warm_service.py").write_text(SERVICE)
    pythonpath = os.pathsep.join([str(folder), str(ROOT)])
    settings = local_stack.settings
    launcher = make_launcher(settings.model_copy(update={"warm_start": True}),
                             make_sessionmaker(make_engine(settings.resolved_database_url)))
    assert isinstance(launcher, LocalLauncher)
    launcher.warm_up(ServiceKind.ADVISOR, pythonpath)
    assert launcher._zygote(ServiceKind.ADVISOR, pythonpath).wait_ready(120), "the zygote imported its modules"
    yield launcher, pythonpath
    launcher.close()


def _report(log_path: str) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        # the forked child opens its log after start() returns: a file not there yet is a service not yet talking
        text = Path(log_path).read_text() if Path(log_path).exists() else ""
        lines = [line for line in text.splitlines() if line.startswith("{")]
        if lines:
            return json.loads(lines[-1])
        time.sleep(0.05)
    raise AssertionError(f"the service wrote nothing to {log_path}")


def _spec(name: str, pythonpath: str, *args: str) -> ServiceSpec:
    return ServiceSpec(name=name, kind=ServiceKind.ADVISOR, argv=[sys.executable, "-m", "warm_service", *args],
                       env={"PYTHONPATH": pythonpath, "EXTRA": name})


def test_services_are_forked_warm_with_their_own_environment_and_stop(warm: tuple[LocalLauncher, str]) -> None:
    launcher, pythonpath = warm
    zygote = launcher._zygote(ServiceKind.ADVISOR, pythonpath)
    states = [launcher.start(_spec(f"warm-{i}", pythonpath, "--x", str(i))) for i in range(2)]
    reports = [_report(state.log_path or "") for state in states]
    for i, (state, report) in enumerate(zip(states, reports, strict=True)):
        assert psutil.Process(state.pid).ppid() == zygote.pid, "forked by the zygote, not a fresh interpreter"
        assert report["warm"] is True, "the advisor's heavy imports were already done"
        assert report["argv"] == ["--x", str(i)] and report["service_id"] == state.id
        assert report["extra"] == f"warm-{i}" and report["secret"] is False, "its own environment only"
        assert report["sid"] == report["pid"] == state.pid, "a session of its own"
    assert reports[0]["draw"] != reports[1]["draw"], "each child has its own random state"
    for state in states:
        stopped = launcher.stop(state.id)
        assert stopped.status is ServiceStatus.STOPPED
        assert not psutil.pid_exists(state.pid) or psutil.Process(state.pid).status() == psutil.STATUS_ZOMBIE


def test_a_warm_service_that_dies_is_reported_at_once_with_its_exit_code(warm: tuple[LocalLauncher, str]) -> None:
    launcher, pythonpath = warm
    heard = threading.Event()
    ended: list[str] = []
    launcher.on_exit(lambda service_id: (ended.append(service_id), heard.set()))
    state = launcher.start(_spec("warm-crash", pythonpath, "exit=3"))
    assert heard.wait(30), "the zygote reported the death"
    assert ended == [state.id]
    final = launcher.status(state.id)
    assert final.status is ServiceStatus.ERRORED and final.exit_code == 3


def test_a_gone_zygote_falls_back_to_a_cold_start(warm: tuple[LocalLauncher, str]) -> None:
    launcher, pythonpath = warm
    zygote = launcher._zygote(ServiceKind.ADVISOR, pythonpath)
    psutil.Process(zygote.pid).kill()
    psutil.Process(zygote.pid).wait(10)
    state = launcher.start(_spec("after-zygote", pythonpath))
    assert _report(state.log_path or "")["extra"] == "after-zygote"
    assert psutil.Process(state.pid).ppid() != zygote.pid
    assert launcher.stop(state.id).status is ServiceStatus.STOPPED
