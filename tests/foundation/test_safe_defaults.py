"""Safe defaults: `easel up`'s generated credentials (0600, reused, explicit settings win) and admin refusing a
non-loopback address while the public development key or superadmin password is in use."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from admin.__main__ import listen_refusal
from easel.credentials import apply_local_credentials, credentials_path, ensure_local_credentials
from easel.settings import DEV_SECRET_KEY, DEV_SUPERADMIN_PASSWORD, Settings

ROOT = Path(__file__).resolve().parents[2]


def _defaults(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, secret_key=DEV_SECRET_KEY, superadmin_password=DEV_SUPERADMIN_PASSWORD)


def test_first_run_generates_private_credentials_and_later_runs_reuse_them(tmp_path: Path) -> None:
    first, created = ensure_local_credentials(_defaults(tmp_path))
    assert created and not first.uses_development_credentials
    assert len(first.secret_key) >= 32 and len(first.superadmin_password) >= 16
    assert stat.S_IMODE(credentials_path(first).stat().st_mode) == 0o600
    again, created_again = ensure_local_credentials(_defaults(tmp_path))
    assert not created_again
    assert (again.secret_key, again.superadmin_password) == (first.secret_key, first.superadmin_password)
    assert apply_local_credentials(_defaults(tmp_path)).secret_key == first.secret_key
    other, _ = ensure_local_credentials(_defaults(tmp_path / "elsewhere"))
    assert other.secret_key != first.secret_key  # random per data dir, not a constant


def test_explicit_settings_win_over_the_stored_ones(tmp_path: Path) -> None:
    ensure_local_credentials(_defaults(tmp_path))
    mine = Settings(data_dir=tmp_path, secret_key="operator-key-0123456789", superadmin_password=DEV_SUPERADMIN_PASSWORD)
    applied, _ = ensure_local_credentials(mine)
    assert applied.secret_key == "operator-key-0123456789"
    assert applied.superadmin_password != DEV_SUPERADMIN_PASSWORD


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "admin.example.org"])
def test_a_public_address_with_development_credentials_is_refused(tmp_path: Path, host: str) -> None:
    assert "refusing to listen" in (listen_refusal(_defaults(tmp_path), host) or "")
    generated, _ = ensure_local_credentials(_defaults(tmp_path))
    assert listen_refusal(generated, host) is None


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_loopback_is_fine_with_development_credentials(tmp_path: Path, host: str) -> None:
    assert listen_refusal(_defaults(tmp_path), host) is None


def test_python_m_admin_exits_with_a_clear_error_on_0000_with_defaults(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EASEL_")}
    env.update(EASEL_DATA_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "admin", "--host", "0.0.0.0"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0" in done.stderr and "EASEL_SECRET_KEY" in done.stderr
