"""Datasets: upload (validated, its schema inferred, then stored in the blob store), list, read, delete; read,
confirm or edit the schema.

A user sees and deletes only their own datasets; admins see all. A dataset used by a train job cannot be
deleted (the job's record needs it).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile, status
from sqlalchemy import or_, select

from admin.deps import Blobs, DbSession, Developer, Paging, State, is_admin
from admin.routes.common import paginate
from admin.schemas import (
    ID_PATTERN,
    TASK_PATTERN,
    TEXT_PATTERN,
    DatasetOut,
    DatasetSchemaIn,
    DatasetSchemaOut,
    Page,
)
from admin.services.dataset_schema import INFERRED, dataset_schema, edit_schema, inferred_schema
from admin.services.datasets import (
    FORMAT_SUFFIXES,
    SUFFIX_FORMATS,
    DatasetInvalid,
    Limits,
    UploadTooLarge,
    format_for,
    spool_upload,
    validate_dataset,
)
from easel.api_errors import Conflict, Invalid, NotFound, PayloadTooLarge, UnsupportedFormat
from easel.datasets.schema import infer_schema
from easel.db.models import Dataset, TrainJob, User, new_id

router = APIRouter(prefix="/datasets", tags=["datasets"])
DatasetId = Annotated[str, Path(pattern=ID_PATTERN)]


def owned_dataset(db: DbSession, dataset_id: str, user: User) -> Dataset:
    """The dataset if it exists and ``user`` may see it (owner or admin); 404 otherwise."""
    row = db.get(Dataset, dataset_id)
    if row is None or (row.owner_id != user.id and not is_admin(user)):
        raise NotFound(f"no dataset {dataset_id}")
    return row


@router.post("", status_code=status.HTTP_201_CREATED, summary="Upload a dataset (zip of class folders, .npz, .csv)")
def upload_dataset(
    db: DbSession, user: Developer, state: State, blobs: Blobs,
    name: Annotated[str, Form(min_length=1, max_length=255, pattern=TEXT_PATTERN)],
    file: Annotated[UploadFile, File(description="the dataset file; its extension picks the format")],
    task: Annotated[str | None, Form(pattern=TASK_PATTERN, description="e.g. IMAGE_CLASSIFICATION; default: the "
                                     "task kind inferred from the data")] = None,
) -> DatasetOut:
    settings = state.settings
    if not name.strip():
        raise Invalid("name must not be blank")
    fmt = format_for(file.filename)
    if fmt is None:
        raise UnsupportedFormat(
            f"{file.filename!r} has an unsupported extension; upload one of {sorted(SUFFIX_FORMATS)}"
        )
    tmp_dir = settings.data_dir / "tmp"
    try:
        path, size = spool_upload(file.file, tmp_dir, settings.max_upload_bytes)
    except UploadTooLarge as error:
        raise PayloadTooLarge(str(error)) from None
    try:
        if size == 0:
            raise Invalid("the uploaded file is empty", code="invalid_dataset")
        limits = Limits(max_unpacked_bytes=settings.max_unpacked_bytes, max_images=settings.max_dataset_images)
        try:
            info = validate_dataset(path, fmt, limits)
        except DatasetInvalid as error:
            raise Invalid(f"{file.filename}: {error}", code="invalid_dataset") from None
        try:
            schema = infer_schema(info.format.value, info.num_classes, info.stats)
        except ValueError as error:
            raise Invalid(f"{file.filename}: its schema cannot be described ({error})", code="invalid_dataset") \
                from None
        dataset_id = new_id()
        key = f"datasets/{dataset_id}{FORMAT_SUFFIXES[fmt]}"
        with open(path, "rb") as handle:
            blobs.put_stream(key, handle)
    finally:
        path.unlink(missing_ok=True)
    row = Dataset(
        id=dataset_id, name=name.strip(), task=(task or schema.task).upper(), format=info.format, blob_key=key,
        size_bytes=size, num_samples=info.num_samples, num_classes=info.num_classes, stats=info.stats,
        schema=schema.to_json(), schema_status=INFERRED, owner_id=user.id,
    )
    db.add(row)
    try:
        db.commit()
    except Exception:
        blobs.delete(key)
        raise
    return DatasetOut.model_validate(row)


@router.get("", summary="List datasets (yours; all for admins)")
def list_datasets(
    db: DbSession, user: Developer, page: Paging,
    task: Annotated[str | None, Query(pattern=TASK_PATTERN)] = None,
) -> Page[DatasetOut]:
    stmt = select(Dataset).order_by(Dataset.created_at.desc(), Dataset.id)
    if not is_admin(user):
        stmt = stmt.where(Dataset.owner_id == user.id)
    if task is not None:
        stmt = stmt.where(Dataset.task == task.upper())
    items, total = paginate(db, stmt, page)
    return Page[DatasetOut](items=[DatasetOut.model_validate(d) for d in items], total=total,
                            offset=page.offset, limit=page.limit)


@router.get("/{dataset_id}", summary="One dataset")
def get_dataset(dataset_id: DatasetId, db: DbSession, user: Developer) -> DatasetOut:
    return DatasetOut.model_validate(owned_dataset(db, dataset_id, user))


def schema_out(row: Dataset) -> DatasetSchemaOut:
    return DatasetSchemaOut(**dataset_schema(row).to_json(), status=row.schema_status,
                            inferred=inferred_schema(row).to_json())


@router.get("/{dataset_id}/schema", summary="The dataset's schema: task kind, input shape, dtype, classes")
def get_dataset_schema(dataset_id: DatasetId, db: DbSession, user: Developer) -> DatasetSchemaOut:
    return schema_out(owned_dataset(db, dataset_id, user))


@router.patch("/{dataset_id}/schema", summary="Confirm (no fields) or edit the dataset's schema")
def patch_dataset_schema(dataset_id: DatasetId, body: DatasetSchemaIn, db: DbSession,
                         user: Developer) -> DatasetSchemaOut:
    row = owned_dataset(db, dataset_id, user)
    try:
        edit_schema(row, body.model_dump(exclude_none=True))
    except ValueError as error:
        raise Invalid(str(error), code="invalid_schema") from None
    db.commit()
    return schema_out(row)


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a dataset not used by a job")
def delete_dataset(dataset_id: DatasetId, db: DbSession, user: Developer, blobs: Blobs) -> Response:
    row = owned_dataset(db, dataset_id, user)
    job = db.scalars(
        select(TrainJob).where(or_(TrainJob.train_dataset_id == row.id, TrainJob.val_dataset_id == row.id))
        .order_by(TrainJob.created_at.desc()).limit(1)
    ).first()
    if job is not None:
        raise Conflict(
            f"dataset {row.id} is used by train job {job.app} v{job.app_version} ({job.status.value}); "
            "it cannot be deleted", code="dataset_in_use",
        )
    key = row.blob_key
    db.delete(row)
    db.commit()
    blobs.delete(key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
