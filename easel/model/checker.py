"""Check an uploaded template file in a sandbox: a time- and memory-limited bubblewrap child.

Admin never imports uploaded code. It calls :func:`check_template_file`, which starts a sandbox
(:mod:`easel.sandbox`: an unprivileged user, no network, no secrets or database URL, only the template's
source to read) and asks it to import the template and describe its class. The result is the template's
class name and knob config, or a :class:`TemplateCheckError` whose message is meant for the uploader
("syntax error at line 3 ...", "timed out after 10 s ...") and carries only the template's own error,
truncated.

Example::

    info = check_template_file(Path("my_model.py"), class_name="MyModel", timeout_s=30)
    info.knob_config   # {"lr": {"type": "float", "low": 0.0001, "high": 0.1, "log_scale": true}, ...}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from easel.datasets.schema import SchemaFit
from easel.model.knobs import KnobError, knob_config_from_dict, knob_config_to_dict
from easel.sandbox import SandboxError, start_sandbox
from easel.sandbox.errors import truncate
from easel.settings import Settings

MAX_ERROR = 1500  # characters of the template's error the uploader sees


class TemplateCheckError(ValueError):
    """The template cannot be used; the message explains why in the uploader's terms."""


@dataclass(frozen=True)
class TemplateInfo:
    class_name: str
    knob_config: dict[str, Any]
    tasks: list[str]
    slice_rates: list[float]
    fits: dict[str, Any] | None = None  # the declared SchemaFit (validated here), None when undeclared


def check_template_file(
    path: Path, class_name: str | None = None, *, timeout_s: float = 60.0, memory_mb: int = 4096,
    settings: Settings | None = None,
) -> TemplateInfo:
    """Import ``path`` in a sandbox and return its template class's description.

    Raises :class:`TemplateCheckError` for a syntax error, an exception or a timeout at import, a
    missing or abstract class, or a bad knob config.
    """
    source = Path(path).read_bytes()
    settings = settings or Settings()
    try:
        with start_sandbox(settings, cpu_capped=True, timeout_s=timeout_s, memory_mb=memory_mb,
                           cpu_s=max(1, math.ceil(timeout_s)) + 1, show_output=False) as sandbox:
            verdict = sandbox.call("check", timeout_s=timeout_s, source=source, class_name=class_name)
    except SandboxError as error:
        if error.kind == "Timeout":
            raise TemplateCheckError(
                f"checking the template timed out after {timeout_s:g} s: importing it or calling "
                "get_knob_config() does not finish (an infinite loop or heavy work at import time?)"
            ) from None
        if error.kind == "Died":
            raise TemplateCheckError(f"{error} without a verdict") from None
        raise TemplateCheckError(truncate(f"the template check failed: {error}", MAX_ERROR)) from None
    return _parse_verdict(verdict)


def _parse_verdict(verdict: Any) -> TemplateInfo:
    if not isinstance(verdict, dict):
        raise TemplateCheckError("the template check returned no verdict")
    if not verdict.get("ok"):
        raise TemplateCheckError(truncate(str(verdict.get("error") or "the template check failed"), MAX_ERROR))
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
    fits = verdict.get("fits")
    if fits is not None:
        try:
            fits = SchemaFit.from_json(fits).to_json()
        except (ValueError, TypeError) as error:
            raise TemplateCheckError(f"the template's FITS is not a valid SchemaFit: {error}") from None
    return TemplateInfo(class_name, knob_config, list(tasks), [float(r) for r in rates], fits)
