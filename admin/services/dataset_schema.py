"""A dataset's schema as admin keeps it: inferred at upload, then confirmed or edited by its owner.

The schema itself and its rules live in :mod:`easel.datasets.schema`. Here: reading a row's schema (rows
uploaded before schemas existed get theirs inferred from their stored stats), and applying a user's edit —
which may rename classes, change the task kind or the shape a template should see, but never contradict the
data (fewer classes than its labels use, or a shape holding another number of values per instance).
"""

from __future__ import annotations

import math
from typing import Any

from easel.datasets.schema import MAX_CLASSES_LISTED, DatasetSchema, infer_schema
from easel.db.models import Dataset

INFERRED, CONFIRMED, EDITED = "inferred", "confirmed", "edited"


def inferred_schema(row: Dataset) -> DatasetSchema:
    """What the data itself says (from the stats its upload stored)."""
    return infer_schema(row.format.value, row.num_classes, row.stats or {})


def dataset_schema(row: Dataset) -> DatasetSchema:
    """The schema in force: the stored one (confirmed or edited), else the inferred one."""
    return DatasetSchema.from_json(row.schema) if row.schema else inferred_schema(row)


def _values(shape: tuple[int | None, ...]) -> int | None:
    """Values per instance, when every size is known."""
    return None if any(d is None for d in shape) else math.prod(shape)  # type: ignore[arg-type]


def edit_schema(row: Dataset, changes: dict[str, Any]) -> DatasetSchema:
    """Apply ``changes`` (a subset of the schema's fields) to the row's schema and store it; ``ValueError``
    naming the field when the result is not a valid schema or contradicts the data. The status says whether
    the stored schema differs from the data's (``edited``) or not (``confirmed``: no change confirms it)."""
    current = dataset_schema(row)
    edited = DatasetSchema.from_json({**current.to_json(), **changes})
    data = inferred_schema(row)
    if edited.num_classes < data.num_classes:
        raise ValueError(f"num_classes: the data's labels use {data.num_classes} classes; it cannot be "
                         f"{edited.num_classes}")
    if edited.classes and len(edited.classes) != min(edited.num_classes, MAX_CLASSES_LISTED):
        raise ValueError(f"classes: give one label per class ({edited.num_classes}), got {len(edited.classes)}")
    mine, theirs = _values(edited.input_shape), _values(data.input_shape)
    if mine is not None and theirs is not None and mine != theirs:
        raise ValueError(f"input_shape: {list(edited.input_shape)} holds {mine} values per instance, the data "
                         f"{list(data.input_shape)} holds {theirs}")
    row.schema = edited.to_json()
    if "task" in changes:  # the dataset's task is what its owner says the data is (train jobs match on it)
        row.task = edited.task
    row.schema_status = CONFIRMED if edited == data else EDITED
    return edited


__all__ = ["CONFIRMED", "EDITED", "INFERRED", "dataset_schema", "edit_schema", "inferred_schema"]
