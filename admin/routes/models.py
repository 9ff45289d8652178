"""Model templates: the built-in ones (registered at start) and uploaded ``.py`` files.

Publishing a template (uploading it, or making it PUBLIC) queues it for tuning in the opted-in apps whose data
its declared schema fits (:mod:`admin.services.knowledge`).

Uploading is for model developers (and admins). The file is checked in a separate, time-limited process
(:mod:`easel.model.checker`) and never imported into admin. Everyone with a developer role sees the
built-in and PUBLIC templates and their own; admins see all. Built-ins cannot be deleted; a template
used by a train job cannot be deleted either.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from admin.deps import Blobs, DbSession, Developer, ModelUploader, Paging, State, is_admin
from admin.routes.common import paginate
from admin.schemas import ID_PATTERN, MODEL_NAME_PATTERN, TASK_PATTERN, ModelOut, ModelPatchIn, Page
from admin.services.knowledge import tune_published_template
from admin.services.templates import TemplateCheckError, check_uploaded_template, visible_to
from easel.api_errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    UnsupportedFormat,
)
from easel.db.enums import AccessRight, ModelSource
from easel.db.models import Model, SubTrainJob, User, new_id

router = APIRouter(prefix="/models", tags=["models"])
ModelId = Annotated[str, Path(pattern=ID_PATTERN)]
PACKAGE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
CHECK_RETRY_AFTER_S = 5


def visible(user: User) -> Any:
    """A WHERE clause: the models ``user`` may see."""
    return visible_to(user.id, is_admin(user))


def visible_model(db: DbSession, model_id: str, user: User) -> Model:
    row = db.get(Model, model_id)
    if row is None or not (
        is_admin(user) or row.source == ModelSource.BUILTIN or row.access_right == AccessRight.PUBLIC
        or row.owner_id == user.id
    ):
        raise NotFound(f"no model {model_id}")
    return row


def _dependencies(raw: str | None) -> dict[str, str]:
    if raw is None or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise Invalid(f"dependencies must be a JSON object of package -> version ({error})") from None
    if not isinstance(data, dict) or len(data) > 100 or not all(
        isinstance(k, str) and isinstance(v, str) and len(v) <= 100 and "\x00" not in v
        and re.match(PACKAGE_NAME, k) for k, v in data.items()
    ):
        raise Invalid('dependencies must be a JSON object like {"torch": "2.5"} (at most 100 packages)')
    return data


@router.post("", status_code=status.HTTP_201_CREATED, summary="Upload a model template (.py; model developers)")
def upload_model(
    db: DbSession, user: ModelUploader, state: State, blobs: Blobs,
    name: Annotated[str, Form(pattern=MODEL_NAME_PATTERN, description="unique name")],
    task: Annotated[str, Form(pattern=TASK_PATTERN)],
    file: Annotated[UploadFile, File(description="a Python file defining a BaseModel subclass")],
    class_name: Annotated[str | None, Form(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")] = None,
    access_right: Annotated[AccessRight, Form()] = AccessRight.PRIVATE,
    dependencies: Annotated[str | None, Form(max_length=10_000, description="JSON: package -> version")] = None,
) -> ModelOut:
    settings = state.settings
    if not (file.filename or "").lower().endswith(".py"):
        raise UnsupportedFormat(f"{file.filename!r} is not a Python file; upload a .py template")
    source = file.file.read(settings.max_template_bytes + 1)
    if len(source) > settings.max_template_bytes:
        raise PayloadTooLarge(f"the template is larger than the limit of {settings.max_template_bytes} bytes")
    try:
        source.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("the template is not UTF-8 text", code="invalid_template") from None
    deps = _dependencies(dependencies)
    task = task.upper()
    owner_id = user.id
    if db.scalar(select(Model.id).where(Model.name == name)) is not None:
        raise Conflict(f"a model named {name!r} already exists", code="name_taken")
    db.commit()  # hand the connection back to the pool: the check takes seconds and needs no database
    if not state.template_checks.acquire(blocking=False):
        raise TooManyRequests(
            f"{settings.template_check_concurrency} template checks are running, the most at once; retry shortly",
            retry_after_s=CHECK_RETRY_AFTER_S, code="checks_busy")
    try:
        info = check_uploaded_template(source, class_name, settings)
    except TemplateCheckError as error:
        raise Invalid(f"{file.filename}: {error}", code="invalid_template") from None
    finally:
        state.template_checks.release()
    if info.tasks and task not in info.tasks:
        raise Invalid(f"{info.class_name} declares TASKS {info.tasks}, not {task}", code="invalid_template")
    if info.fits is not None and task not in info.fits["tasks"]:
        raise Invalid(f"{info.class_name} declares FITS for {info.fits['tasks']}, not {task}", code="invalid_template")
    model_id = new_id()
    key = f"models/{model_id}.py"
    blobs.put_bytes(key, source)
    row = Model(
        id=model_id, name=name, task=task, source=ModelSource.UPLOADED, model_class=info.class_name,
        module_ref=key, knob_config=info.knob_config, dependencies=deps, access_right=access_right,
        owner_id=owner_id, fits=None if info.fits is None else {**info.fits, "tasks": [task]},
    )
    db.add(row)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        blobs.delete(key)
        raise Conflict(f"a model named {name!r} already exists", code="name_taken") from None
    tune_published_template(state, row.id)  # knowledge-base growth: opted-in apps it fits get it tuned
    return ModelOut.model_validate(row)


@router.get("", summary="List the model templates you can use")
def list_models(
    db: DbSession, user: Developer, page: Paging,
    task: Annotated[str | None, Query(pattern=TASK_PATTERN)] = None,
) -> Page[ModelOut]:
    stmt = select(Model).where(visible(user)).order_by(Model.source, Model.name)
    if task is not None:
        stmt = stmt.where(Model.task == task.upper())
    items, total = paginate(db, stmt, page)
    return Page[ModelOut](items=[ModelOut.model_validate(m) for m in items], total=total,
                          offset=page.offset, limit=page.limit)


@router.get("/{model_id}", summary="One model template")
def get_model(model_id: ModelId, db: DbSession, user: Developer) -> ModelOut:
    return ModelOut.model_validate(visible_model(db, model_id, user))


@router.patch("/{model_id}", summary="Change who can use an uploaded template (owner or admin)")
def patch_model(model_id: ModelId, body: ModelPatchIn, db: DbSession, user: Developer, state: State) -> ModelOut:
    row = visible_model(db, model_id, user)
    if row.source == ModelSource.BUILTIN:
        raise Forbidden("built-in templates cannot be changed")
    if row.owner_id != user.id and not is_admin(user):
        raise Forbidden("only the owner or an admin can change this template")
    published = row.access_right != AccessRight.PUBLIC and body.access_right == AccessRight.PUBLIC
    row.access_right = body.access_right
    db.commit()
    if published:  # newly visible to everyone: opted-in apps it fits get it tuned
        tune_published_template(state, row.id)
    return ModelOut.model_validate(row)


@router.delete("/{model_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an uploaded template")
def delete_model(model_id: ModelId, db: DbSession, user: Developer, blobs: Blobs) -> Response:
    row = visible_model(db, model_id, user)
    if row.source == ModelSource.BUILTIN:
        raise Forbidden("built-in templates cannot be deleted")
    if row.owner_id != user.id and not is_admin(user):
        raise Forbidden("only the owner or an admin can delete this template")
    if db.scalar(select(SubTrainJob.id).where(SubTrainJob.model_id == row.id).limit(1)) is not None:
        raise Conflict(f"model {row.name} is used by a train job; it cannot be deleted", code="model_in_use")
    key = row.module_ref
    db.delete(row)
    db.commit()
    blobs.delete(key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
