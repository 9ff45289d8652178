"""Check one template file in *this* process: ``python -m easel.model.check_template FILE --out OUT``.

Run only as a child of :func:`easel.model.checker.check_template_file`, which applies a time limit and
reads the JSON written to ``OUT``: ``{"ok": true, "class_name", "knob_config", "tasks", "slice_rates"}``
or ``{"ok": false, "error": "..."}``. The process lowers its own resource limits before it imports the
template, so an upload cannot eat the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import inspect
import json
import os
import resource
import sys
import traceback
from pathlib import Path
from typing import Any

MODULE_NAME = "easel_uploaded_template"


class CheckFailed(Exception):
    """The template is unusable; the message says why, for the uploader."""


def limit_resources(cpu_s: int, memory_mb: int, file_mb: int = 64) -> None:
    def lower(kind: int, value: int) -> None:
        soft, hard = resource.getrlimit(kind)
        cap = value if hard == resource.RLIM_INFINITY else min(value, hard)
        if soft == resource.RLIM_INFINITY or soft > cap:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(kind, (cap, hard))

    lower(resource.RLIMIT_CPU, cpu_s)
    lower(resource.RLIMIT_AS, memory_mb << 20)
    lower(resource.RLIMIT_FSIZE, file_mb << 20)
    lower(resource.RLIMIT_CORE, 0)


def _user_traceback(error: BaseException, path: Path) -> str:
    """The traceback frames that are in the uploaded file, so the message points at the user's code."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == str(path)]
    where = "".join(f"\n  line {f.lineno}, in {f.name}: {(f.line or '').strip()}" for f in frames[-5:])
    return where


def load_module(path: Path) -> Any:
    source = path.read_bytes()
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as error:
        raise CheckFailed(
            f"syntax error in {path.name} at line {error.lineno}, column {error.offset}: {error.msg}"
        ) from None
    except ValueError as error:  # e.g. null bytes
        raise CheckFailed(f"{path.name} is not valid Python source: {error}") from None
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    try:
        exec(code, module.__dict__)  # noqa: S102 - this is the sandboxed child whose job is to run it
    except MemoryError:
        raise CheckFailed(f"importing {path.name} ran out of memory (the checker's limit)") from None
    except BaseException as error:  # noqa: BLE001 - anything the module raises is the user's problem
        raise CheckFailed(
            f"importing {path.name} raised {type(error).__name__}: {error}{_user_traceback(error, path)}"
        ) from None
    return module


def find_class(module: Any, class_name: str | None) -> type:
    from easel.model.template import BaseModel

    if class_name:
        cls = getattr(module, class_name, None)
        if cls is None:
            raise CheckFailed(f"the template defines no class named {class_name!r}")
    else:
        defined = [
            obj for obj in vars(module).values()
            if inspect.isclass(obj) and issubclass(obj, BaseModel) and obj.__module__ == MODULE_NAME
        ]
        found = [obj for obj in defined if not inspect.isabstract(obj)]
        if len(found) > 1:
            names = sorted(c.__name__ for c in found)
            raise CheckFailed(f"name the template class: found several BaseModel subclasses {names}")
        if not found and not defined:
            raise CheckFailed("name the template class: found no BaseModel subclass")
        cls = found[0] if found else defined[0]
    if not inspect.isclass(cls) or not issubclass(cls, BaseModel):
        raise CheckFailed(f"{class_name} is not a subclass of easel.model.BaseModel")
    if inspect.isabstract(cls):
        missing = sorted(getattr(cls, "__abstractmethods__", ()))
        raise CheckFailed(f"{cls.__name__} does not implement {', '.join(missing)}")
    return cls


def describe(cls: type) -> dict[str, Any]:
    from easel.model.knobs import KnobError, knob_config_to_dict

    try:
        config = cls.get_knob_config()
    except BaseException as error:  # noqa: BLE001
        raise CheckFailed(f"{cls.__name__}.get_knob_config() raised {type(error).__name__}: {error}") from None
    try:
        knob_config = knob_config_to_dict(config)
    except KnobError as error:
        raise CheckFailed(f"{cls.__name__}.get_knob_config(): {error}") from None
    tasks = getattr(cls, "TASKS", ())
    rates = getattr(cls, "SLICE_RATES", (1.0,))
    if not isinstance(tasks, tuple | list) or not all(isinstance(t, str) for t in tasks):
        raise CheckFailed(f"{cls.__name__}.TASKS must be a tuple of task names")
    if not isinstance(rates, tuple | list) or not rates or not all(
        isinstance(r, int | float) and not isinstance(r, bool) and 0 < r <= 1 for r in rates
    ):
        raise CheckFailed(f"{cls.__name__}.SLICE_RATES must be a non-empty tuple of rates in (0, 1]")
    return {
        "ok": True, "class_name": cls.__name__, "knob_config": knob_config,
        "tasks": list(tasks), "slice_rates": [float(r) for r in rates],
    }


def check(path: Path, class_name: str | None) -> dict[str, Any]:
    try:
        return describe(find_class(load_module(path), class_name))
    except CheckFailed as error:
        return {"ok": False, "error": str(error)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m easel.model.check_template")
    parser.add_argument("file", type=Path)
    parser.add_argument("--class-name", default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cpu-s", type=int, default=60)
    parser.add_argument("--memory-mb", type=int, default=4096)
    args = parser.parse_args(argv)
    limit_resources(args.cpu_s, args.memory_mb)
    # The template's own prints go to stderr; the verdict goes to the --out file only.
    sys.stdout = sys.stderr
    result = check(args.file.resolve(), args.class_name)
    data = json.dumps(result)
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(data)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
