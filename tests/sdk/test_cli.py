"""The ``easel`` client verbs (login, datasets, models, train, jobs, trials, deploy) against a real admin."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest_sdk_helpers import finish_train_job

from admin.testing import GOOD_TEMPLATE, image_zip, npz_file
from easel.cli import main
from easel.settings import Settings
from easel.stack.process import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_env(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_user) -> tuple[str, str]:
    _, user = make_user("MODEL_DEVELOPER")
    monkeypatch.setenv("EASEL_DATA_DIR", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_ADMIN_URL", url)
    monkeypatch.setenv("EASEL_PASSWORD", "sdk-user-password")
    return user.email, url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_login_train_trials_deploy(cli_env, capsys, tmp_path: Path, sdk_settings: Settings) -> None:
    email, url = cli_env
    code, _, err = run(capsys, "datasets", "list")
    assert code == 1 and "not logged in" in err and "easel login" in err

    code, out, _ = run(capsys, "login", "--email", email)
    assert code == 0 and f"as {email} (MODEL_DEVELOPER)" in out
    credentials = tmp_path / "home" / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert json.loads(credentials.read_text())["url"] == url

    code, out, _ = run(capsys, "whoami", "--json")
    assert code == 0 and json.loads(out)["email"] == email

    code, out, err = run(capsys, "datasets", "upload", "pets", str(image_zip(tmp_path / "pets.zip")))
    assert code == 0 and "pets" in out and "IMAGE_ZIP" in out and "uploading" in err
    code, out, _ = run(capsys, "datasets", "upload", "val", str(npz_file(tmp_path / "v.npz", shape=(3, 8, 8))),
                       "--json", "--quiet")
    val_id = json.loads(out)["id"]
    code, out, _ = run(capsys, "datasets", "list", "--json")
    datasets = {d["name"]: d["id"] for d in json.loads(out)}
    assert code == 0 and set(datasets) == {"pets", "val"}

    template = tmp_path / "tiny.py"
    template.write_text(GOOD_TEMPLATE)
    code, out, _ = run(capsys, "models", "upload", "tiny", str(template), "--public")
    assert code == 0 and "TinyModel" in out and "PUBLIC" in out
    code, out, _ = run(capsys, "models", "list", "--json")
    models = {m["name"]: m["id"] for m in json.loads(out)}
    assert {"tiny", "SlicedMLP"} <= set(models)

    code, out, _ = run(capsys, "train", "--app", "cli-app", "--train", datasets["pets"], "--val", val_id,
                       "--model", models["SlicedMLP"], "--model", models["tiny"], "--trials", "4", "--workers", "2")
    assert code == 0 and "Train job cli-app v1: STARTED, 2 model(s)" in out and "easel trials cli-app 1" in out
    code, out, _ = run(capsys, "jobs")
    assert code == 0 and "cli-app" in out

    finish_train_job(sdk_settings, "cli-app", 1)
    code, out, _ = run(capsys, "trials", "cli-app", "1")
    assert code == 0 and "2 trial(s) of cli-app v1" in out and "COMPLETED" in out
    code, out, _ = run(capsys, "trials", "cli-app", "1", "--best", "1", "--json")
    assert [t["score"] for t in json.loads(out)] == [0.9]

    code, out, _ = run(capsys, "deploy", "cli-app", "1", "--workers", "2")
    assert code == 0 and "Inference job for cli-app v1: STARTED, 2 worker(s)" in out and "Predictor: http://" in out
    code, _, err = run(capsys, "deploy", "cli-app")
    assert code == 1 and "409 already_running" in err

    code, _, err = run(capsys, "datasets", "delete", datasets["pets"])
    assert code == 1 and "used by train job" in err
    assert run(capsys, "logout")[0] == 0 and not credentials.exists()


def test_bad_password_is_a_clean_failure(cli_env, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    email, _ = cli_env
    monkeypatch.setenv("EASEL_PASSWORD", "wrong-password")
    code, out, err = run(capsys, "login", "--email", email)
    assert code == 1 and "wrong e-mail or password" in err and "Traceback" not in err + out


def test_easel_admin_serves_in_the_foreground(sdk_settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "EASEL_DATA_DIR": str(tmp_path), "EASEL_DATABASE_URL": sdk_settings.resolved_database_url,
           "EASEL_PASSWORD_HASH_ROUNDS": "4", "EASEL_SUPERADMIN_EMAIL": sdk_settings.superadmin_email,
           "EASEL_SUPERADMIN_PASSWORD": sdk_settings.superadmin_password}
    process = subprocess.Popen([sys.executable, "-m", "easel", "admin", "--port", str(port), "--log-level", "warning"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(20)
    assert b"Serving the admin API" in process.stdout.read()
