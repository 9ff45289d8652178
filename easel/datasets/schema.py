"""A dataset's schema (what a model needs to know to fit it) and a template's declared fit — one owner of both.

Upload infers the schema from what :func:`easel.datasets.formats.inspect_dataset` found (its stats): nothing is
read twice. The user may confirm or edit it; a template declares the schemas it fits with :class:`SchemaFit`,
and :meth:`SchemaFit.check` says whether (and why not) a schema fits. Pure: no database, no torch.

* **task** — ``IMAGE_CLASSIFICATION`` (an image zip; an ``.npz`` with ``x`` (N, H, W) or (N, C, H, W)) or
  ``TABULAR_CLASSIFICATION`` (a CSV; an ``.npz`` with ``x`` (N, F));
* **input_shape** — one instance as a template reads it: ``[C, H, W]`` for images (``H``/``W`` ``null`` when the
  images of a zip differ in size: the templates resize them), ``[F]`` for tabular rows;
* **dtype** — the element type stored (``uint8`` pixels, an ``.npz``'s ``x`` dtype, ``float32`` for CSV cells);
* **num_classes** and **classes** — the class labels in index order (at most ``MAX_CLASSES_LISTED`` listed).

Example::

    schema = infer_schema("CSV", 3, info.stats)       # DatasetSchema(task="TABULAR_CLASSIFICATION", ...)
    SchemaFit(tasks=("TABULAR_CLASSIFICATION",), min_classes=2).check(schema)   # None: it fits
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

IMAGE_CLASSIFICATION = "IMAGE_CLASSIFICATION"
TABULAR_CLASSIFICATION = "TABULAR_CLASSIFICATION"
TASK_KINDS = (IMAGE_CLASSIFICATION, TABULAR_CLASSIFICATION)
DTYPES = frozenset({"uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float16",
                    "float32", "float64"})
MAX_CLASSES_LISTED = 1000
MAX_DIM = 1 << 26
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F", "P"})  # P (palette) decodes to 1 channel too: L or RGB


@dataclass(frozen=True)
class DatasetSchema:
    """What a dataset holds, in the terms templates match on (see the module's doc)."""

    task: str
    input_shape: tuple[int | None, ...]
    dtype: str
    num_classes: int
    classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.task not in TASK_KINDS:
            raise ValueError(f"task must be one of {list(TASK_KINDS)}, got {self.task!r}")
        rank = (3,) if self.task == IMAGE_CLASSIFICATION else (1,)
        if len(self.input_shape) not in rank:
            what = "[C, H, W]" if self.task == IMAGE_CLASSIFICATION else "[F]"
            raise ValueError(f"input_shape must be {what} for {self.task}, got {list(self.input_shape)}")
        for dim in self.input_shape:
            if dim is not None and not (isinstance(dim, int) and not isinstance(dim, bool) and 0 < dim <= MAX_DIM):
                raise ValueError(f"input_shape must hold sizes in [1, {MAX_DIM}] (or null), got {list(self.input_shape)}")
        if self.input_shape and self.input_shape[0] is None:
            raise ValueError("input_shape: the channel (or feature) count must be known")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if not (isinstance(self.num_classes, int) and not isinstance(self.num_classes, bool)
                and 1 <= self.num_classes <= 100_000):
            raise ValueError(f"num_classes must be an integer in [1, 100000], got {self.num_classes!r}")
        if len(self.classes) > min(self.num_classes, MAX_CLASSES_LISTED):
            raise ValueError(f"classes lists {len(self.classes)} labels, more than num_classes ({self.num_classes})")
        if len(set(self.classes)) != len(self.classes) or not all(
                isinstance(c, str) and 0 < len(c) <= 255 for c in self.classes):
            raise ValueError("classes must be distinct labels of 1 to 255 characters")

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "input_shape": list(self.input_shape), "dtype": self.dtype,
                "num_classes": self.num_classes, "classes": list(self.classes)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DatasetSchema:
        """Parse (and validate) a stored or user-given schema; ``ValueError`` naming the field."""
        if not isinstance(data, Mapping):
            raise ValueError("schema must be an object")
        unknown = set(data) - {"task", "input_shape", "dtype", "num_classes", "classes"}
        if unknown:
            raise ValueError(f"schema has unknown field(s) {sorted(unknown)}")
        shape = data.get("input_shape")
        classes = data.get("classes", [])
        if not isinstance(shape, list | tuple):
            raise ValueError("input_shape must be a list of sizes")
        if not isinstance(classes, list | tuple):
            raise ValueError("classes must be a list of labels")
        return cls(task=data.get("task"), input_shape=tuple(shape), dtype=data.get("dtype"),  # type: ignore[arg-type]
                   num_classes=data.get("num_classes"), classes=tuple(classes))  # type: ignore[arg-type]


def infer_schema(fmt: str, num_classes: int, stats: Mapping[str, Any]) -> DatasetSchema:
    """The schema of a dataset of format ``fmt`` from its inspection's class count and stats."""
    classes = tuple(str(c) for c in stats.get("classes", []))[:MAX_CLASSES_LISTED]
    if fmt == "IMAGE_ZIP":
        low, high = stats["image_size_min"], stats["image_size_max"]
        channels = 1 if set(stats.get("image_modes", [])) <= GREY_MODES else 3
        width, height = (low[0], low[1]) if low == high else (None, None)
        return DatasetSchema(IMAGE_CLASSIFICATION, (channels, height, width), "uint8", num_classes, classes)
    if fmt == "NPZ":
        shape = [int(d) for d in stats["input_shape"]]
        if len(shape) == 1:
            return DatasetSchema(TABULAR_CLASSIFICATION, (shape[0],), str(stats["dtype"]), num_classes, classes)
        if len(shape) == 2:  # (H, W): the reader gives greyscale images their channel axis
            shape = [1, *shape]
        return DatasetSchema(IMAGE_CLASSIFICATION, tuple(shape), str(stats["dtype"]), num_classes, classes)
    if fmt == "CSV":
        return DatasetSchema(TABULAR_CLASSIFICATION, (int(stats["num_features"]),), "float32", num_classes, classes)
    raise ValueError(f"fmt must be one of IMAGE_ZIP, NPZ, CSV, got {fmt!r}")


@dataclass(frozen=True)
class SchemaFit:
    """The dataset schemas a template fits: its task kinds, a shape pattern (``None``: any shape; a ``None``
    entry: any size on that axis) and a class-count range (``max_classes`` ``None``: no upper bound).

    A template declares it as ``FITS = SchemaFit(...)``; a template without ``FITS`` is never chosen
    automatically (it may still be named in a train job)."""

    tasks: tuple[str, ...]
    input_shape: tuple[int | None, ...] | None = None
    min_classes: int = 2
    max_classes: int | None = None
    dtypes: tuple[str, ...] = field(default=())  # empty: any

    def __post_init__(self) -> None:
        if not self.tasks or not all(t in TASK_KINDS for t in self.tasks):
            raise ValueError(f"tasks must be a non-empty tuple of {list(TASK_KINDS)}, got {self.tasks!r}")
        if self.input_shape is not None and not (0 < len(self.input_shape) <= 4 and all(
                d is None or (isinstance(d, int) and not isinstance(d, bool) and 0 < d <= MAX_DIM)
                for d in self.input_shape)):
            raise ValueError(f"input_shape must be None or 1 to 4 sizes (or None entries), got {self.input_shape!r}")
        if not (isinstance(self.min_classes, int) and self.min_classes >= 2):
            raise ValueError(f"min_classes must be an integer >= 2, got {self.min_classes!r}")
        if self.max_classes is not None and not (isinstance(self.max_classes, int)
                                                 and self.max_classes >= self.min_classes):
            raise ValueError(f"max_classes must be None or an integer >= min_classes, got {self.max_classes!r}")
        if not all(d in DTYPES for d in self.dtypes):
            raise ValueError(f"dtypes must be among {sorted(DTYPES)}, got {self.dtypes!r}")

    def check(self, schema: DatasetSchema) -> str | None:
        """None when ``schema`` fits; otherwise why not (one line, for the job's record)."""
        if schema.task not in self.tasks:
            return f"fits {', '.join(self.tasks)}, not {schema.task}"
        if self.input_shape is not None:
            pattern, shape = self.input_shape, schema.input_shape
            if len(pattern) != len(shape) or any(p is not None and p != s for p, s in zip(pattern, shape, strict=False)):
                shown = ["any" if p is None else p for p in pattern]
                return f"needs input shape {shown}, the data has {list(shape)}"
        if schema.num_classes < self.min_classes:
            return f"needs at least {self.min_classes} classes, the data has {schema.num_classes}"
        if self.max_classes is not None and schema.num_classes > self.max_classes:
            return f"fits at most {self.max_classes} classes, the data has {schema.num_classes}"
        if self.dtypes and schema.dtype not in self.dtypes:
            return f"needs dtype {' or '.join(self.dtypes)}, the data has {schema.dtype}"
        return None

    def to_json(self) -> dict[str, Any]:
        return {"tasks": list(self.tasks), "input_shape": None if self.input_shape is None else list(self.input_shape),
                "min_classes": self.min_classes, "max_classes": self.max_classes, "dtypes": list(self.dtypes)}

    @classmethod
    def from_json(cls, data: Any) -> SchemaFit:
        """Parse a declaration (from a sandboxed template: untrusted); ``ValueError`` saying what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError("FITS must be a SchemaFit")
        unknown = set(data) - {"tasks", "input_shape", "min_classes", "max_classes", "dtypes"}
        if unknown:
            raise ValueError(f"FITS has unknown field(s) {sorted(unknown)}")
        tasks, shape, dtypes = data.get("tasks"), data.get("input_shape"), data.get("dtypes", [])
        if not isinstance(tasks, Sequence) or isinstance(tasks, str):
            raise ValueError("FITS.tasks must be a list of task kinds")
        if shape is not None and (not isinstance(shape, Sequence) or isinstance(shape, str)):
            raise ValueError("FITS.input_shape must be None or a list of sizes")
        if not isinstance(dtypes, Sequence) or isinstance(dtypes, str):
            raise ValueError("FITS.dtypes must be a list of dtypes")
        return cls(tasks=tuple(tasks), input_shape=None if shape is None else tuple(shape),
                   min_classes=data.get("min_classes", 2), max_classes=data.get("max_classes"),
                   dtypes=tuple(dtypes))


__all__ = ["IMAGE_CLASSIFICATION", "MAX_CLASSES_LISTED", "TABULAR_CLASSIFICATION", "TASK_KINDS", "DatasetSchema", "SchemaFit",
           "infer_schema"]
