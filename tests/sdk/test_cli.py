"""The ``easel`` command's client verbs (``sdk.cli``) against a real admin; ``python -m easel admin``."""

from __future__ import annotations

import io
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

from easel.settings import Settings
from easel.stack.process import free_port
from sdk import Client, Unauthorized
from sdk.cli import main
from tests.support import GOOD_TEMPLATE, csv_file, image_zip, npz_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_env(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_user) -> tuple[str, str]:
    _, user = make_user("MODEL_DEVELOPER")
    monkeypatch.setenv("EASEL_DATA_DIR", str(tmp_path / "home"))
    monkeypatch.setenv("EASEL_ADMIN_URL", url)
    monkeypatch.setenv("EASEL_PASSWORD", "sdk-user-password")
    return user.email, url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv), plugins=[])
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


def _trained_app(capsys, tmp_path: Path, sdk_settings: Settings, app: str) -> list[str]:
    """Log in, upload a dataset, train the built-in MLP (services recorded), finish it; the trial ids."""
    code, out, _ = run(capsys, "datasets", "upload", "d", str(npz_file(tmp_path / "d.npz")), "--json", "--quiet")
    dataset = json.loads(out)["id"]
    code, out, _ = run(capsys, "models", "list", "--json")
    mlp = next(m["id"] for m in json.loads(out) if m["name"] == "SlicedMLP")
    code, out, _ = run(capsys, "train", "--app", app, "--train", dataset, "--val", dataset, "--model", mlp, "--json")
    assert code == 0 and json.loads(out)["app_version"] == 1
    return finish_train_job(sdk_settings, app, 1)


def test_job_trial_and_inference_verbs(cli_env, capsys, tmp_path: Path, sdk_settings: Settings) -> None:
    email, _ = cli_env
    assert run(capsys, "login", "--email", email, "--json")[0] == 0
    trial_ids = _trained_app(capsys, tmp_path, sdk_settings, "verbs")

    code, out, _ = run(capsys, "jobs", "show", "verbs", "1", "--json")
    assert code == 0 and json.loads(out)["status"] == "COMPLETED"
    code, out, _ = run(capsys, "jobs", "list", "--app", "verbs")
    assert code == 0 and "COMPLETED" in out and out.startswith("APP")
    code, out, _ = run(capsys, "trial", trial_ids[1], "--json")
    assert json.loads(out)["score"] == 0.9
    code, out, _ = run(capsys, "logs", trial_ids[1], "--json")
    assert code == 0 and [line["message"] for line in json.loads(out)] == ["trial 2 done"]
    code, out, _ = run(capsys, "logs", trial_ids[0])
    assert "trial 1 done" in out and out.startswith("TIME")
    code, out, _ = run(capsys, "params", trial_ids[1], str(tmp_path / "p.safetensors"), "--json")
    assert code == 0 and json.loads(out)["bytes"] == (tmp_path / "p.safetensors").stat().st_size > 8

    code, out, _ = run(capsys, "deploy", "verbs", "1", "--json")
    assert code == 0 and json.loads(out)["status"] == "STARTED"
    code, out, _ = run(capsys, "inference", "--json")  # the group's default action: list
    assert [(j["app"], j["status"]) for j in json.loads(out)] == [("verbs", "STARTED")]
    code, out, _ = run(capsys, "inference", "show", "verbs", "1", "--json")
    assert code == 0 and json.loads(out)["trial_ids"]
    code, out, _ = run(capsys, "inference", "stop", "verbs", "1", "--json")
    assert code == 0 and json.loads(out)["status"] == "STOPPED"
    code, _, err = run(capsys, "predict", "verbs", "1", str(npz_file(tmp_path / "q.npz", n=2)))
    assert code == 1 and "no running inference job" in err

    code, out, _ = run(capsys, "jobs", "stop", "verbs", "1", "--json")
    assert code == 0 and json.loads(out)["status"] == "COMPLETED"  # stopping a finished job changes nothing
    code, _, err = run(capsys, "jobs", "show", "verbs", "9")
    assert code == 1 and "404" in err


def test_user_management_verbs(cli_env, capsys, monkeypatch: pytest.MonkeyPatch, url: str,
                               sdk_settings: Settings) -> None:
    monkeypatch.setenv("EASEL_PASSWORD", sdk_settings.superadmin_password)
    assert run(capsys, "login", "--email", sdk_settings.superadmin_email)[0] == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("a new long password\n"))
    code, out, _ = run(capsys, "users", "create", "ann@easel.test", "--role", "APP_USER", "--password-stdin", "--json")
    assert code == 0 and json.loads(out)["role"] == "APP_USER"
    ann = json.loads(out)["id"]
    with Client(url) as client:
        assert client.login("ann@easel.test", "a new long password").user.id == ann

    code, out, _ = run(capsys, "users", "list", "--role", "APP_USER", "--json")
    assert [u["email"] for u in json.loads(out)] == ["ann@easel.test"]
    code, out, _ = run(capsys, "users", "show", ann)
    assert code == 0 and "ann@easel.test" in out and "APP_USER" in out
    code, out, _ = run(capsys, "users", "ban", ann, "--json")
    assert code == 0 and json.loads(out) == {"banned": ann}
    with Client(url) as client, pytest.raises(Unauthorized):
        client.login("ann@easel.test", "a new long password")
    with pytest.raises(SystemExit) as refused:
        main(["users", "create", "bob@easel.test", "--role", "NOBODY", "--password-stdin"], plugins=[])
    assert refused.value.code == 2 and "invalid choice: 'NOBODY'" in capsys.readouterr().err



def test_versions_verbs(cli_env, capsys, tmp_path: Path, sdk_settings: Settings) -> None:
    email, _ = cli_env
    assert run(capsys, "login", "--email", email, "--json")[0] == 0
    trial_ids = _trained_app(capsys, tmp_path, sdk_settings, "reg")

    code, out, _ = run(capsys, "versions", "register", "reg", "--json")  # the best trial of the latest job
    assert code == 0 and (json.loads(out)["number"], json.loads(out)["trial_id"]) == (1, trial_ids[1])
    code, out, _ = run(capsys, "versions", "register", "reg", "--trial", trial_ids[0])
    assert code == 0 and out.startswith("NUMBER") and "staging" in out
    code, out, _ = run(capsys, "versions", "stage", "reg", "1", "archived", "--reason", "superseded by hand")
    assert code == 0 and "reg #1 is archived" in out
    code, out, _ = run(capsys, "versions", "list", "reg", "--json")
    assert [(v["number"], v["stage"]) for v in json.loads(out)] == [(2, "staging"), (1, "archived")]
    code, out, _ = run(capsys, "versions", "history", "reg", "1", "--json")
    assert [(h["from_stage"], h["to_stage"], h["reason"]) for h in json.loads(out)][1:] == [
        ("staging", "archived", "superseded by hand")]
    code, _, err = run(capsys, "versions", "stage", "reg", "2", "production")
    assert code == 1 and "dataset_id" in err
    code, _, err = run(capsys, "versions", "stage", "reg", "2", "production", "--override")
    assert code == 1 and "admin" in err
    code, out, _ = run(capsys, "versions", "verdicts", "reg", "2", "--json")
    assert code == 0 and json.loads(out) == []


def test_declarative_verbs(cli_env, capsys, tmp_path: Path) -> None:
    email, _ = cli_env
    assert run(capsys, "login", "--email", email, "--json")[0] == 0
    code, out, _ = run(capsys, "datasets", "upload", "table", str(csv_file(tmp_path / "t.csv", features=3)),
                       "--json", "--quiet")
    table = json.loads(out)
    assert code == 0 and table["task"] == "TABULAR_CLASSIFICATION"  # inferred: no --task given
    code, out, _ = run(capsys, "datasets", "schema", table["id"], "--json")
    assert code == 0 and (json.loads(out)["input_shape"], json.loads(out)["status"]) == ([3], "inferred")
    code, out, _ = run(capsys, "datasets", "schema", table["id"], "--classes", "no,yes", "--json")
    assert code == 0 and (json.loads(out)["classes"], json.loads(out)["status"]) == (["no", "yes"], "edited")
    code, _, err = run(capsys, "datasets", "schema", table["id"], "--input-shape", "4")
    assert code == 1 and "holds 4 values" in err

    code, out, _ = run(capsys, "train", "--app", "decl", "--train", table["id"], "--val", table["id"])
    assert code == 0 and "1 model(s)" in out and "SlicedMLP-tabular" in out and "chosen: declares it fits" in out
    code, out, _ = run(capsys, "apps", "set", "decl", "--auto-update", "on", "--json")
    assert code == 0 and (json.loads(out)["auto_update"], json.loads(out)["auto_tune"]) == (True, False)
    code, out, _ = run(capsys, "apps", "show", "decl")
    assert code == 0 and "decl" in out and "True" in out

    template = tmp_path / "tiny.py"
    template.write_text(GOOD_TEMPLATE)
    code, out, _ = run(capsys, "models", "upload", "tiny", str(template), "--json")
    code, out, _ = run(capsys, "models", "access", json.loads(out)["id"], "PUBLIC")
    assert code == 0 and "PUBLIC" in out
