"""Check one template file in *this* process: import it, find its class, describe its knob space.

Runs only inside a sandbox (:mod:`easel.sandbox.child`'s ``check`` request, which
:func:`easel.model.checker.check_template_file` makes): :func:`check` returns
``{"ok": true, "class_name", "knob_config", "tasks", "slice_rates", "fits"}`` or ``{"ok": false, "error": "..."}``,
the error in the uploader's terms, pointing at lines of their file only.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from pathlib import Path
from typing import Any

MODULE_NAME = "easel_uploaded_template"


class CheckFailed(Exception):
    """The template is unusable; the message says why, for the uploader."""


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
    from easel.datasets.schema import SchemaFit
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
    fits = getattr(cls, "FITS", None)
    if fits is not None and not isinstance(fits, SchemaFit):
        raise CheckFailed(f"{cls.__name__}.FITS must be an easel.model.SchemaFit (or None)")
    return {
        "ok": True, "class_name": cls.__name__, "knob_config": knob_config,
        "tasks": list(tasks), "slice_rates": [float(r) for r in rates],
        "fits": None if fits is None else fits.to_json(),
    }


def check(path: Path, class_name: str | None) -> dict[str, Any]:
    try:
        return describe(find_class(load_module(path), class_name))
    except CheckFailed as error:
        return {"ok": False, "error": str(error)}
