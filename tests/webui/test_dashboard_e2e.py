"""The dashboard in a real browser: Debian's Chromium, driven by ``webui/e2e/run.mjs`` (playwright-core),
against a real admin (in-thread uvicorn) that launches real services on the test session's stack.

The test needs the dashboard's build (``webui/dist``), its node modules and Chromium, which ``make test``
prepares. Without them it is skipped, unless ``EASEL_REQUIRE_WEBUI=1`` (set by ``make test``) makes the gap a
failure. The second test checks that the committed API types are generated from this admin's OpenAPI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from admin.app import create_app
from demo.life_cycle import write_digits
from easel.settings import Settings
from sdk import Client
from tests.support import ServerThread

ROOT = ("webui-root@easel.test", "webui-root-password")
PASSWORD = "webui-user-password"
WEBUI = Path(__file__).resolve().parents[2] / "webui"
HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
E2E_TIMEOUT_S = 900


def _missing() -> list[str]:
    missing = []
    if shutil.which("node") is None:
        missing.append("node")
    if not (WEBUI / "node_modules" / "playwright-core").is_dir():
        missing.append("webui/node_modules (npm ci)")
    if not (WEBUI / "dist" / "index.html").is_file():
        missing.append("webui/dist (npm run build)")
    if not Path(CHROMIUM).exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    return missing


@pytest.fixture(scope="module")
def webui_ready() -> None:
    missing = _missing()
    if missing:
        message = "the dashboard's tooling is missing: " + ", ".join(missing) + " (run `make webui`)"
        if os.environ.get("EASEL_REQUIRE_WEBUI") == "1":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def dashboard_admin(settings: Settings, webui_ready: None) -> Iterator[ServerThread]:
    configured = settings.model_copy(update={
        "superadmin_email": ROOT[0], "superadmin_password": ROOT[1], "password_hash_rounds": 4,
        "template_check_timeout_s": 60.0, "template_check_memory_mb": 4096,
        "serving_drain_s": 3.0, "webui_dist": WEBUI / "dist",
    })
    with ServerThread(create_app(configured)) as server:
        yield server


def _node(args: list[str], env: dict[str, str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["node", *args], cwd=WEBUI, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=timeout_s, check=False)


def test_api_types_are_generated_from_this_admin(dashboard_admin: ServerThread) -> None:
    done = _node(["scripts/gen-api.mjs", "--check", f"{dashboard_admin.url}/openapi.json"], {}, 120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.timeout(E2E_TIMEOUT_S + 120)
def test_dashboard_end_to_end(dashboard_admin: ServerThread, tmp_path: Path) -> None:
    url = dashboard_admin.url
    suffix = uuid.uuid4().hex[:6]
    dev, other = f"webui-dev-{suffix}@easel.test", f"webui-other-{suffix}@easel.test"
    app = f"e2e-{suffix}"
    with Client(url, timeout=60) as root:
        root.login(*ROOT)
        root.create_user(dev, PASSWORD, "MODEL_DEVELOPER")
        root.create_user(other, PASSWORD, "APP_DEVELOPER")
    train, val = write_digits(tmp_path)
    bad = tmp_path / "broken.npz"
    np.savez(bad, x=np.zeros((4, 1, 8, 8), np.float32))  # no labels: admin refuses it with a reason
    bad_template = tmp_path / "not_a_model.py"
    bad_template.write_text("def this is not python(:\n")
    out = WEBUI / "test-results"
    try:
        done = _node(["--test", "--test-reporter=spec", "--test-concurrency=1", "e2e/run.mjs"], {
            "EASEL_URL": url, "E2E_OUT": str(out), "E2E_APP": app, "E2E_CHROMIUM": CHROMIUM,
            "E2E_DEV_EMAIL": dev, "E2E_OTHER_EMAIL": other, "E2E_PASSWORD": PASSWORD,
            "E2E_ROOT_EMAIL": ROOT[0], "E2E_ROOT_PASSWORD": ROOT[1],
            "E2E_TRAIN": str(train), "E2E_VAL": str(val), "E2E_BAD": str(bad),
            "E2E_TEMPLATE": str(HERE / "small_mlp_template.py"), "E2E_BAD_TEMPLATE": str(bad_template),
        }, E2E_TIMEOUT_S)
        print(done.stdout[-20000:], done.stderr[-5000:])
        assert done.returncode == 0, f"the browser test failed (screenshots in {out}):\n{done.stdout[-6000:]}\n" \
                                     f"{done.stderr[-3000:]}"
        assert len(list(out.glob("*.png"))) >= 10
    finally:
        _stop_everything(url, dev, app)


def _stop_everything(url: str, email: str, app: str) -> None:
    """Leave no service running, whatever step failed."""
    with Client(url, timeout=60) as client:
        try:
            client.login(email, PASSWORD)
        except Exception:  # noqa: BLE001 - the user may not exist when set-up failed
            return
        for job in client.list_inference_jobs(app=app).items:
            if job.status in ("STARTED", "RUNNING"):
                client.stop_inference_job(app, job.app_version)
        for train in client.list_train_jobs(app=f"{app}-auto").items:  # the declarative job's step stops it
            if train.status in ("STARTED", "RUNNING"):
                client.stop_train_job(train.app, train.app_version)
        for job in client.list_train_jobs(app=app).items:
            if job.status in ("STARTED", "RUNNING"):
                client.stop_train_job(app, job.app_version)
