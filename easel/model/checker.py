"""Check an uploaded template file in a separate, time- and memory-limited process.

Admin never imports uploaded code. It calls :func:`check_template_file`, which runs
``python -m easel.model.check_template`` in a fresh process group with a minimal environment (no
database URL, no secrets), a wall-clock timeout, and CPU/memory/file-size limits. The result is the
template's class name and knob config as JSON, or a :class:`TemplateCheckError` whose message is meant
for the uploader ("syntax error at line 3 ...", "timed out after 10 s ...").

Example::

    info = check_template_file(Path("my_model.py"), class_name="MyModel", timeout_s=30)
    info.knob_config   # {"lr": {"type": "float", "low": 0.0001, "high": 0.1, "log_scale": true}, ...}
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from easel.model.knobs import KnobError, knob_config_from_dict, knob_config_to_dict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_STDERR_TAIL = 1500


class TemplateCheckError(ValueError):
    """The template cannot be used; the message explains why in the uploader's terms."""


@dataclass(frozen=True)
class TemplateInfo:
    class_name: str
    knob_config: dict[str, Any]
    tasks: list[str]
    slice_rates: list[float]


def _child_env(home: Path) -> dict[str, str]:
    """Only what Python needs to start; in particular no EASEL_* settings (URLs, secret key)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(PROJECT_ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    return env


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def check_template_file(
    path: Path, class_name: str | None = None, *, timeout_s: float = 60.0, memory_mb: int = 4096,
) -> TemplateInfo:
    """Import ``path`` in a sandboxed child and return its template class's description.

    Raises :class:`TemplateCheckError` for a syntax error, an exception or a timeout at import, a
    missing or abstract class, or a bad knob config.
    """
    path = Path(path).resolve()
    with tempfile.TemporaryDirectory(prefix="easel-check-") as work:
        work_dir = Path(work)
        out = work_dir / "verdict.json"
        argv = [
            sys.executable, "-m", "easel.model.check_template", str(path), "--out", str(out),
            "--cpu-s", str(max(1, math.ceil(timeout_s)) + 1), "--memory-mb", str(memory_mb),
        ]
        if class_name:
            argv += ["--class-name", class_name]
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, cwd=work_dir,
                env=_child_env(work_dir), start_new_session=True,
            )
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                raise TemplateCheckError(
                    f"checking the template timed out after {timeout_s:g} s: importing it or calling "
                    "get_knob_config() does not finish (an infinite loop or heavy work at import time?)"
                ) from None
            finally:
                if process.poll() is None:
                    _kill_group(process)
                else:
                    # Anything the template left running in its process group goes too.
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(process.pid, signal.SIGKILL)
            stderr.seek(0)
            tail = stderr.read()[-_STDERR_TAIL:].decode(errors="replace").strip()
        try:
            verdict = json.loads(out.read_text())
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            code = process.returncode
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            if code == -signal.SIGXCPU or code == -signal.SIGKILL:
                how += " (CPU time limit?)"
            raise TemplateCheckError(
                f"the template check process {how} without a verdict"
                + (f"; its output ended with:\n{tail}" if tail else "")
            ) from None
    return _parse_verdict(verdict)


def _parse_verdict(verdict: Any) -> TemplateInfo:
    if not isinstance(verdict, dict):
        raise TemplateCheckError("the template check returned no verdict")
    if not verdict.get("ok"):
        raise TemplateCheckError(str(verdict.get("error") or "the template check failed"))
    # Re-validate what the child says: it ran user code and is not trusted.
    try:
        knob_config = knob_config_to_dict(knob_config_from_dict(verdict.get("knob_config")))
    except KnobError as error:
        raise TemplateCheckError(f"invalid knob config: {error}") from None
    class_name = verdict.get("class_name")
    tasks = verdict.get("tasks") or []
    rates = verdict.get("slice_rates") or [1.0]
    if not isinstance(class_name, str) or not class_name.isidentifier():
        raise TemplateCheckError("the template check returned no class name")
    if not isinstance(tasks, list) or not all(isinstance(t, str) and len(t) <= 64 for t in tasks):
        raise TemplateCheckError("the template's TASKS are not a list of task names")
    if not isinstance(rates, list) or not all(isinstance(r, int | float) and 0 < r <= 1 for r in rates):
        raise TemplateCheckError("the template's SLICE_RATES are not rates in (0, 1]")
    return TemplateInfo(class_name, knob_config, list(tasks), [float(r) for r in rates])
