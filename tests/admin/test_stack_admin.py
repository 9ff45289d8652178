"""Admin as a part of the local stack: a detached ``python -m admin`` process with a pid file."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from admin_helpers import SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD

from easel.settings import Settings
from easel.stack.admin_server import AdminPart
from easel.stack.process import free_port
from sdk import Client


def test_admin_part_starts_detached_and_stops(admin_settings: Settings, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EASEL_SUPERADMIN_EMAIL", SUPERADMIN_EMAIL)
    monkeypatch.setenv("EASEL_SUPERADMIN_PASSWORD", SUPERADMIN_PASSWORD)
    monkeypatch.setenv("EASEL_PASSWORD_HASH_ROUNDS", "4")
    # Its own data dir, the session's database (whose passwords live in the session's data dir).
    settings = admin_settings.model_copy(update={"admin_port": free_port(), "data_dir": tmp_path,
                                                 "database_url": admin_settings.resolved_database_url})
    part = AdminPart(settings)
    assert part.health().running is False
    try:
        assert part.start() is True
        assert part.start() is False  # already running: not started twice
        pid = part.pid()
        assert pid is not None and part.pid_file.read_text().strip() == str(pid)
        health = part.health()
        assert health.healthy and health.version.startswith("Easel admin")
        with Client(part.url) as client:
            assert client.login(SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD).user.role == "SUPERADMIN"
            assert {m.name for m in client.list_models()} >= {"SlicedMLP", "SlicedVGG", "SlicedResNet"}
    finally:
        stopped = part.stop()
    assert stopped is True and part.pid() is None
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{part.url}/health", timeout=2)
    assert "Application startup complete" in part.log_path.read_text()


def test_easel_does_not_import_admin() -> None:
    import subprocess
    import sys

    code = "import sys, easel.cli, easel.stack.admin_server; print('admin' in sys.modules, 'sdk' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.split() == ["False", "False"]


def test_new_settings_are_validated() -> None:
    from easel.settings import SettingsError, get_settings

    with pytest.raises(SettingsError, match="EASEL_SUPERADMIN_EMAIL"):
        get_settings(superadmin_email="not-an-email")
    with pytest.raises(SettingsError, match="EASEL_TOKEN_TTL_S"):
        get_settings(token_ttl_s=0)
    with pytest.raises(SettingsError, match="EASEL_ADMIN_URL"):
        get_settings(admin_url="ftp://x")
    with pytest.raises(SettingsError, match="EASEL_PASSWORD_HASH_ROUNDS"):
        get_settings(password_hash_rounds=2)
    settings = get_settings(admin_host="0.0.0.0", admin_port=4000, superadmin_email=" Boss@Example.ORG ")
    assert settings.resolved_admin_url == "http://127.0.0.1:4000"
    assert settings.superadmin_email == "boss@example.org"
    assert get_settings(admin_url="https://easel.example.org/").resolved_admin_url == "https://easel.example.org"
