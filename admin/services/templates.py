"""Model templates: register the built-in ones at start-up, check uploaded ones in a subprocess."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from builtin_templates import BUILTIN_TEMPLATES
from easel.db.enums import AccessRight, ModelSource
from easel.db.models import Model
from easel.model.checker import TemplateCheckError, TemplateInfo, check_template_file
from easel.settings import Settings

log = logging.getLogger("admin")

__all__ = ["TemplateCheckError", "TemplateInfo", "check_uploaded_template", "register_builtin_templates"]


def register_builtin_templates(sessions: sessionmaker[Session]) -> list[str]:
    """Insert or refresh one ``models`` row per built-in template (idempotent); returns names written.

    A name already used by an *uploaded* model is left alone (and logged): built-ins never overwrite
    users' rows.
    """
    written = []
    for spec in BUILTIN_TEMPLATES:
        knob_config = spec.knob_config()
        with sessions() as session:
            row = session.scalar(select(Model).where(Model.name == spec.name))
            if row is not None and row.source != ModelSource.BUILTIN:
                log.warning("built-in template %s not registered: an uploaded model has that name", spec.name)
                continue
            if row is None:
                row = Model(name=spec.name, source=ModelSource.BUILTIN, owner_id=None,
                            access_right=AccessRight.PUBLIC, dependencies={})
                session.add(row)
            row.task, row.model_class, row.module_ref = spec.task, spec.class_name, spec.module
            row.knob_config = knob_config
            try:
                session.commit()
            except IntegrityError:  # registered by another admin process meanwhile
                session.rollback()
                continue
        written.append(spec.name)
    return written


def check_uploaded_template(source: bytes, class_name: str | None, settings: Settings) -> TemplateInfo:
    """Write the uploaded source to a private temp dir and check it in a limited subprocess."""
    with tempfile.TemporaryDirectory(prefix="easel-template-") as work:
        path = Path(work) / "template.py"
        path.write_bytes(source)
        return check_template_file(
            path, class_name, timeout_s=settings.template_check_timeout_s,
            memory_mb=settings.template_check_memory_mb,
        )
