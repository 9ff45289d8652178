"""The SDK is its own distribution: ``pip install ./sdk`` into a fresh virtualenv pulls no torch (and no
server code), and its ``easel`` command runs there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# httpx and what it needs. Anything else (argcomplete is the `completion` extra) is a regression.
ALLOWED = {"easel-sdk", "httpx", "httpcore", "h11", "anyio", "idna", "certifi", "sniffio", "typing-extensions",
           "pip"}


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_pip_install_sdk_into_a_fresh_venv(tmp_path: Path) -> None:
    source = tmp_path / "src" / "sdk"  # a copy, so the build leaves nothing in the working tree
    shutil.copytree(ROOT / "sdk", source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    venv.create(tmp_path / "venv", with_pip=False)
    python, bin_dir = tmp_path / "venv" / "bin" / "python", tmp_path / "venv" / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(EASEL_DATA_DIR=str(tmp_path / "home"), EASEL_PASSWORD="x")

    # The test's own pip installs into the new venv (--python): no pip bootstrap, a real resolve and build.
    installed = _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", str(source)],
                     env, tmp_path)
    assert installed.returncode == 0, installed.stderr

    listing = _run([str(python), "-c", "import json, importlib.metadata as m; "
                    "print(json.dumps(sorted(d.metadata['Name'].lower().replace('_', '-') for d in m.distributions())))"], env, tmp_path)
    names = set(json.loads(listing.stdout))
    assert "easel-sdk" in names and "httpx" in names and "torch" not in names
    assert names <= ALLOWED, names - ALLOWED

    where = _run([str(python), "-c", "import sdk, sys; print(sdk.__file__); "
                  "print(sorted({'easel', 'admin', 'torch', 'numpy'} & set(sys.modules)))"], env, tmp_path)
    assert where.stdout.split("\n")[0].startswith(str(tmp_path / "venv")) and where.stdout.split("\n")[1] == "[]"

    helped = _run([str(bin_dir / "easel"), "--help"], env, tmp_path)
    assert helped.returncode == 0 and "predict" in helped.stdout and "login" in helped.stdout
    assert " up " not in helped.stdout  # server verbs come only with the platform
    refused = _run([str(bin_dir / "easel"), "login", "--url", "http://127.0.0.1:9", "--email", "a@b.c"], env, tmp_path)
    assert refused.returncode == 1 and "cannot reach admin at http://127.0.0.1:9" in refused.stderr
