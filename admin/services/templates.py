"""Model templates: register the built-in ones at start-up, check uploaded ones in a subprocess.

Admin runs no template code: the built-ins' catalogue (names, tasks, modules, knob configs) comes from a
child process (``python -m builtin_templates``), uploads are checked in a sandboxed one.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from easel.db.enums import AccessRight, ModelSource
from easel.db.models import Model
from easel.model.checker import TemplateCheckError, TemplateInfo, check_template_file
from easel.settings import Settings

log = logging.getLogger("admin")

CATALOGUE_MODULE = "builtin_templates"  # `python -m builtin_templates` prints the built-ins as JSON
PROJECT_ROOT = Path(__file__).resolve().parents[2]

__all__ = [
    "TemplateCheckError", "TemplateInfo", "builtin_catalogue", "check_uploaded_template",
    "register_builtin_templates", "visible_to",
]


def visible_to(user_id: str, admin: bool) -> ColumnElement[bool]:
    """A WHERE clause: the templates a user may use (built-ins, PUBLIC ones and their own; admins all)."""
    if admin:
        return true()
    return or_(Model.source == ModelSource.BUILTIN, Model.access_right == AccessRight.PUBLIC,
               Model.owner_id == user_id)


def builtin_catalogue(timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """The built-in templates (``name``, ``task``, ``module``, ``class_name``, ``knob_config``, ``fits``), read from
    ``python -m builtin_templates`` in a child process; ``RuntimeError`` saying why if it fails."""
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    try:
        result = subprocess.run([sys.executable, "-m", CATALOGUE_MODULE], capture_output=True, text=True,
                                timeout=timeout_s, cwd=PROJECT_ROOT, env={**os.environ, "PYTHONPATH": path})
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"python -m {CATALOGUE_MODULE} did not answer within {timeout_s:.0f}s") from None
    if result.returncode != 0:
        raise RuntimeError(f"python -m {CATALOGUE_MODULE} failed: {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout)


def register_builtin_templates(sessions: sessionmaker[Session],
                               catalogue: list[dict[str, Any]] | None = None) -> list[str]:
    """Insert or refresh one ``models`` row per built-in template (idempotent); returns names written.

    A name already used by an *uploaded* model is left alone (and logged): built-ins never overwrite
    users' rows. ``catalogue`` defaults to :func:`builtin_catalogue`.
    """
    written = []
    for spec in builtin_catalogue() if catalogue is None else catalogue:
        name = spec["name"]
        with sessions() as session:
            row = session.scalar(select(Model).where(Model.name == name))
            if row is not None and row.source != ModelSource.BUILTIN:
                log.warning("built-in template %s not registered: an uploaded model has that name", name)
                continue
            if row is None:
                row = Model(name=name, source=ModelSource.BUILTIN, owner_id=None,
                            access_right=AccessRight.PUBLIC, dependencies={})
                session.add(row)
            row.task, row.model_class, row.module_ref = spec["task"], spec["class_name"], spec["module"]
            row.knob_config = spec["knob_config"]
            row.fits = spec.get("fits")
            try:
                session.commit()
            except IntegrityError:  # registered by another admin process meanwhile
                session.rollback()
                continue
        written.append(name)
    return written


def check_uploaded_template(source: bytes, class_name: str | None, settings: Settings) -> TemplateInfo:
    """Write the uploaded source to a private temp dir and check it in a sandbox."""
    with tempfile.TemporaryDirectory(prefix="easel-template-") as work:
        path = Path(work) / "template.py"
        path.write_bytes(source)
        return check_template_file(
            path, class_name, timeout_s=settings.template_check_timeout_s,
            memory_mb=settings.template_check_memory_mb, settings=settings,
        )
