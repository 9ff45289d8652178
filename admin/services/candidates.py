"""Which templates fit a dataset: the candidates of a train job that names no models, and the apps a newly
published template fits (knowledge-base growth, :mod:`admin.services.knowledge`).

A template is a candidate when its owner could name it (built-in, PUBLIC, or the user's own), its task is the
job's, and its declared :class:`~easel.datasets.schema.SchemaFit` accepts the dataset's schema (confirmed,
edited or inferred). A template that declares no fit is never chosen: it may not know what it can train on.
The choice is recorded on the job with each template's reason, so the API shows why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.services.dataset_schema import dataset_schema
from admin.services.templates import visible_to
from easel.datasets.schema import DatasetSchema, SchemaFit
from easel.db.enums import ModelSource
from easel.db.models import Dataset, Model

MAX_CANDIDATES = 20  # a train job's most models (TrainJobIn.model_ids)
MAX_LISTED = 50  # templates passed over that the record names


@dataclass(frozen=True)
class Choice:
    model_id: str
    name: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"model_id": self.model_id, "name": self.name, "reason": self.reason}


def fit_reason(model: Model, task: str, schema: DatasetSchema) -> tuple[bool, str]:
    """Whether ``model`` fits a ``task`` job on data of ``schema``, and why (or why not)."""
    if model.task != task:
        return False, f"a {model.task} template, the job is {task}"
    if model.fits is None:
        return False, "declares no schema it fits (only chosen when named)"
    try:
        fit = SchemaFit.from_json(model.fits)
    except ValueError as error:
        return False, f"its declared fit is unreadable ({error})"
    why_not = fit.check(schema)
    if why_not is not None:
        return False, why_not
    return True, f"declares it fits {_described(fit)}; the data is {_described_schema(schema)}"


def _described(fit: SchemaFit) -> str:
    shape = "any input shape" if fit.input_shape is None else \
        f"input shape {['any' if d is None else d for d in fit.input_shape]}"
    classes = f"{fit.min_classes}+" if fit.max_classes is None else f"{fit.min_classes}-{fit.max_classes}"
    return f"{'/'.join(fit.tasks)}, {shape}, {classes} classes"


def _described_schema(schema: DatasetSchema) -> str:
    return f"{schema.task}, input shape {list(schema.input_shape)}, {schema.num_classes} classes"


def describe_schema(dataset: Dataset) -> str:
    """The dataset's schema in a few words, for messages."""
    return f"{_described_schema(dataset_schema(dataset))}, {dataset.schema_status}"


def choose_candidates(db: Session, task: str, dataset: Dataset, user_id: str, admin: bool) -> dict[str, Any]:
    """The record of a choice: ``schema``, ``chosen`` and ``passed_over`` (each ``{model_id, name, reason}``).
    Built-ins come first, then by name; at most :data:`MAX_CANDIDATES` are chosen (the rest are passed over,
    saying so)."""
    schema = dataset_schema(dataset)
    models = db.scalars(select(Model).where(visible_to(user_id, admin))
                        .order_by(Model.source != ModelSource.BUILTIN, Model.name))
    chosen: list[Choice] = []
    passed: list[Choice] = []
    for model in models:
        fits, reason = fit_reason(model, task, schema)
        if fits and len(chosen) >= MAX_CANDIDATES:
            fits, reason = False, f"fits, but a job trains at most {MAX_CANDIDATES} models"
        (chosen if fits else passed).append(Choice(model.id, model.name, reason))
    return {"schema": schema.to_json(), "schema_status": dataset.schema_status, "dataset_id": dataset.id,
            "chosen": [c.to_json() for c in chosen], "passed_over": [c.to_json() for c in passed[:MAX_LISTED]],
            "passed_over_total": len(passed), "added": []}


__all__ = ["MAX_CANDIDATES", "Choice", "choose_candidates", "describe_schema", "fit_reason"]
