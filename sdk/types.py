"""Typed values the client returns: frozen dataclasses built from the API's JSON.

Timestamps are timezone-aware :class:`datetime.datetime`; unknown fields from a newer server are
ignored, so an older client keeps working.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

T = TypeVar("T")


def _parse_time(value: Any) -> Any:
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


class _Record:
    """``from_dict`` for the dataclasses below: known fields only, ``*_at``/``time`` parsed as datetimes."""

    _nested: ClassVar[dict[str, Any]] = {}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        kwargs = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name not in data:
                continue
            value = data[f.name]
            nested = cls._nested.get(f.name)
            if nested is not None and value is not None:
                value = [nested.from_dict(v) for v in value] if isinstance(value, list) else nested.from_dict(value)
            elif f.name.endswith("_at") or f.name == "time":
                value = _parse_time(value)
            kwargs[f.name] = value
        return cls(**kwargs)


@dataclass(frozen=True)
class Health(_Record):
    status: str
    version: str
    database: str


@dataclass(frozen=True)
class User(_Record):
    id: str
    email: str
    role: str
    created_at: datetime
    banned_at: datetime | None = None


@dataclass(frozen=True)
class Token(_Record):
    token: str
    expires_at: datetime
    user: User
    token_type: str = "bearer"


Token._nested = {"user": User}


@dataclass(frozen=True)
class Dataset(_Record):
    id: str
    name: str
    task: str
    format: str
    size_bytes: int
    num_samples: int
    num_classes: int
    owner_id: str
    created_at: datetime
    stats: dict[str, Any] = field(default_factory=dict)
    schema_status: str = "inferred"


@dataclass(frozen=True)
class DatasetSchema(_Record):
    """What a dataset holds: task kind, one instance's input shape (``None``: varies), dtype and classes;
    ``status`` is inferred, confirmed or edited, ``inferred`` what the data itself says."""

    task: str
    input_shape: list[int | None]
    dtype: str
    num_classes: int
    classes: list[str] = field(default_factory=list)
    status: str = "inferred"
    inferred: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class App(_Record):
    """An app's options: ``auto_update`` (roll its inference jobs to each version the gate promotes) and
    ``auto_tune`` (tune newly published templates that fit its data)."""

    name: str
    owner_id: str
    auto_update: bool = False
    auto_tune: bool = False
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Model(_Record):
    id: str
    name: str
    task: str
    source: str
    model_class: str
    access_right: str
    created_at: datetime
    owner_id: str | None = None
    knob_config: dict[str, Any] = field(default_factory=dict)
    dependencies: dict[str, Any] = field(default_factory=dict)
    fits: dict[str, Any] | None = None


@dataclass(frozen=True)
class Service(_Record):
    id: str
    name: str
    kind: str
    status: str
    launcher: str
    created_at: datetime
    host: str | None = None
    port: int | None = None
    stopped_at: datetime | None = None
    model_version_id: str | None = None


@dataclass(frozen=True)
class SubTrainJob(_Record):
    id: str
    model_id: str
    model_name: str
    status: str
    created_at: datetime
    stopped_at: datetime | None = None
    services: list[Service] = field(default_factory=list)


SubTrainJob._nested = {"services": Service}


PRUNERS = ("median", "asha", "asha_promote", "none")
ASHA_PRUNERS = ("asha", "asha_promote")


@dataclass(frozen=True)
class TrainBudget:
    """A train job's budget. ``to_dict`` gives the API's upper-case keys.

    ``pruner`` finds hopeless trials after each epoch (with ``early_stop``): the median rule, ``"asha"``
    (asynchronous successive halving: rungs at ``asha_min_epochs``·ηᵏ epochs, η = ``asha_reduction_factor``, the
    best 1/η of each rung goes on; unset: the server's defaults), ``"asha_promote"`` (ASHA that pauses each trial
    at its rungs and resumes the best 1/η from their checkpoints; a paused trial never resumed ends pruned) or
    ``"none"``. ``asha_brackets`` > 1 (``"asha_promote"`` only) runs asynchronous Hyperband: that many promoting
    ASHAs, bracket j judging a trial first at ``asha_min_epochs``·ηʲ epochs. ``mop`` trains in model hopper
    parallelism (the training set sharded one shard per worker, trials hopping between workers unit by unit).
    ``seed`` makes the search reproducible: the advisor proposes the same knob sets in the same order.

    Example: ``TrainBudget(model_trial_count=20, time_hours=0.5, workers=2, pruner="asha")``
    """

    model_trial_count: int = 5
    time_hours: float = 1.0
    gpu_count: int = 0
    workers: int = 1
    early_stop: bool = True
    pruner: str = "median"
    mop: bool = False
    asha_min_epochs: int | None = None
    asha_reduction_factor: int | None = None
    asha_brackets: int | None = None
    seed: int | None = None  # the search's random seed: the same seed proposes the same knob sets (reproducible)

    def __post_init__(self) -> None:
        if self.pruner not in PRUNERS:
            raise ValueError(f"pruner must be one of {', '.join(PRUNERS)}; got {self.pruner!r}")
        asha = {"asha_min_epochs": (self.asha_min_epochs, 1), "asha_reduction_factor": (self.asha_reduction_factor, 2)}
        for name, (value, least) in asha.items():
            if value is None:
                continue
            if self.pruner not in ASHA_PRUNERS:
                raise ValueError(f"{name} applies to pruner 'asha' or 'asha_promote' only, not {self.pruner!r}")
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}; got {value!r}")
        if self.asha_brackets is not None:
            if self.pruner != "asha_promote":
                raise ValueError(f"asha_brackets applies to pruner 'asha_promote' only, not {self.pruner!r}")
            brackets = self.asha_brackets
            if isinstance(brackets, bool) or not isinstance(brackets, int) or brackets < 1:
                raise ValueError(f"asha_brackets must be an integer >= 1; got {self.asha_brackets!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)
                                      or not 0 <= self.seed < 2**31):
            raise ValueError(f"seed must be an integer in [0, 2**31); got {self.seed!r}")
        if not isinstance(self.mop, bool):
            raise ValueError(f"mop must be True or False; got {self.mop!r}")
        if self.mop and self.pruner == "asha_promote":
            raise ValueError("pruner 'asha_promote' does not combine with mop; use pruner 'asha' with mop")

    def to_dict(self) -> dict[str, Any]:
        body = {"MODEL_TRIAL_COUNT": self.model_trial_count, "TIME_HOURS": self.time_hours,
                "GPU_COUNT": self.gpu_count, "WORKERS": self.workers, "EARLY_STOP": self.early_stop,
                "PRUNER": self.pruner, "MOP": self.mop}
        if self.asha_min_epochs is not None:
            body["ASHA_MIN_EPOCHS"] = self.asha_min_epochs
        if self.asha_reduction_factor is not None:
            body["ASHA_REDUCTION_FACTOR"] = self.asha_reduction_factor
        if self.asha_brackets is not None:
            body["ASHA_BRACKETS"] = self.asha_brackets
        if self.seed is not None:
            body["SEED"] = self.seed
        return body


@dataclass(frozen=True)
class PoolShare(_Record):
    """A train job's share of the shared train pool."""

    pool_size: int
    workers_now: int
    share_now: float
    assignments: int
    policy: str


@dataclass(frozen=True)
class PoolWorker(_Record):
    worker: str
    busy: bool
    user_id: str | None = None
    train_job_id: str | None = None
    sub_train_job_id: str | None = None
    reason: str | None = None
    rate: float | None = None


@dataclass(frozen=True)
class PoolUser(_Record):
    user_id: str
    workers_now: int
    assignments: int
    floor_assignments: int
    recent_share: float
    waiting: bool
    waited: int | None = None
    owed_s: float | None = None  # worker-seconds the fairness floor owes this user now
    last_reason: str | None = None
    last_rate: float | None = None


@dataclass(frozen=True)
class Pool(_Record):
    """The shared train pool's allocation: who holds its workers and why, each user's share."""

    enabled: bool
    policy: str
    size: int
    fairness_floor: str
    live_workers: int = 0
    assignments: int = 0
    workers: list[PoolWorker] = field(default_factory=list)
    users: list[PoolUser] = field(default_factory=list)
    updated_at: str | None = None


Pool._nested = {"workers": PoolWorker, "users": PoolUser}


@dataclass(frozen=True)
class TrainJob(_Record):
    id: str
    app: str
    app_version: int
    task: str
    train_dataset_id: str
    val_dataset_id: str
    status: str
    owner_id: str
    created_at: datetime
    stopped_at: datetime | None = None
    budget: dict[str, Any] = field(default_factory=dict)
    sub_train_jobs: list[SubTrainJob] = field(default_factory=list)
    candidates: dict[str, Any] | None = None
    pool_share: PoolShare | None = None


TrainJob._nested = {"sub_train_jobs": SubTrainJob, "pool_share": PoolShare}


@dataclass(frozen=True)
class Trial(_Record):
    id: str
    sub_train_job_id: str
    model_id: str
    model_name: str
    no: int
    status: str
    created_at: datetime
    score: float | None = None
    knobs: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] | None = None
    has_parameters: bool = False
    attempts: int = 0
    error: str | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None


@dataclass(frozen=True)
class TrialLog(_Record):
    id: int
    time: datetime
    level: str
    message: str
    metrics: dict[str, Any] | None = None


@dataclass(frozen=True)
class InferenceJob(_Record):
    id: str
    app: str
    app_version: int
    train_job_id: str
    status: str
    workers: int
    owner_id: str
    created_at: datetime
    predictor_url: str | None = None
    stopped_at: datetime | None = None
    budget: dict[str, Any] = field(default_factory=dict)
    trial_ids: list[str] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    error: str | None = None
    model_version: int | None = None


InferenceJob._nested = {"services": Service}


@dataclass(frozen=True)
class ApiKey(_Record):
    """An API key of an inference job's predictor. ``key`` (the secret) is set only on the object
    :meth:`~sdk.Client.create_api_key` returns: it is never shown again."""

    id: str
    inference_job_id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None
    key: str | None = None


@dataclass(frozen=True)
class InstancePrediction(_Record):
    """One instance's answer: ``status`` is ``served`` (with ``prediction``) or ``dropped`` (deadline)."""

    index: int
    status: str
    prediction: dict[str, Any] | None = None
    slice_rate: float | None = None
    latency_s: float = 0.0
    worker: str | None = None
    model_version: int | None = None  # the registered version that answered (None: not from the registry)

    @property
    def served(self) -> bool:
        return self.status == "served"

    @property
    def label(self) -> Any:
        return (self.prediction or {}).get("label")

    @property
    def probabilities(self) -> list[float] | None:
        return (self.prediction or {}).get("probabilities")


@dataclass(frozen=True)
class Prediction(_Record):
    """A predict request's answer: one entry per instance, in order, and the task's totals
    (``instances``, ``served``, ``dropped``, ``by_rate``, ``expected_effective_accuracy``, ``elapsed_s``, ...).
    ``attempts``: how many times the client sent it (more than one after a predictor fault); ``request_id``:
    the ``Idempotency-Key`` every attempt carried."""

    task_id: str
    predictions: list[InstancePrediction] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)
    attempts: int = 1
    request_id: str | None = None

    def __iter__(self) -> Iterator[InstancePrediction]:
        return iter(self.predictions)

    def __len__(self) -> int:
        return len(self.predictions)

    @property
    def served(self) -> int:
        return sum(1 for p in self.predictions if p.served)

    @property
    def dropped(self) -> int:
        return len(self.predictions) - self.served


Prediction._nested = {"predictions": InstancePrediction}


@dataclass(frozen=True)
class Explanation(_Record):
    """A LIME or Grad-CAM explanation of one instance: the prediction it explains (``label``, ``class_index``,
    ``probabilities`` at ``slice_rate``) and the evidence — ``heatmap`` (rows of values in [0, 1] at the input's
    resolution) and an overlay PNG for images, ``weights`` (``{"names": [...], "values": [...]}``) for feature
    vectors. ``details`` holds the method's own findings (Grad-CAM's target layer, LIME's superpixel or
    feature ranking)."""

    id: str
    inference_job_id: str
    method: str
    slice_rate: float
    status: str
    label: str | None = None
    class_index: int | None = None
    probabilities: list[float] | None = None
    heatmap: list[list[float]] | None = None
    weights: dict[str, Any] | None = None
    overlay_png: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    attempts: int = 0
    compute_s: float | None = None
    trial_id: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def overlay(self) -> bytes | None:
        """The overlay as PNG bytes (images only)."""
        import base64

        return base64.b64decode(self.overlay_png) if self.overlay_png else None

    def save_overlay(self, path: Any) -> Any:
        """Write the overlay PNG to ``path`` (a file, or a folder: ``<id>-<method>.png`` in it); returns the path."""
        from pathlib import Path

        data = self.overlay
        if data is None:
            raise ValueError(f"explanation {self.id} has no overlay (method {self.method}, status {self.status})")
        target = Path(path)
        if target.is_dir():
            target = target / f"{self.id}-{self.method}.png"
        target.write_bytes(data)
        return target

    def top_features(self, k: int = 5) -> list[tuple[str, float]]:
        """Vectors: the ``k`` features with the largest |weight|, as ``(name, weight)``."""
        if not self.weights:
            return []
        names = self.weights.get("names") or [f"x{i}" for i in range(len(self.weights["values"]))]
        pairs = sorted(zip(names, self.weights["values"], strict=True), key=lambda p: -abs(p[1]))
        return pairs[:k]


@dataclass(frozen=True)
class StageChange(_Record):
    """One move of a model version between stages (the history is append-only)."""

    to_stage: str
    by_user_id: str
    at: datetime
    from_stage: str | None = None
    reason: str = ""
    verdict_id: str | None = None


@dataclass(frozen=True)
class ModelVersion(_Record):
    """A registered version of an app's model: ``stage`` is ``staging``, ``production`` or ``archived``."""

    id: str
    app: str
    number: int
    stage: str
    trial_id: str
    model_id: str
    train_dataset_id: str
    owner_id: str
    created_at: datetime
    knobs: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)
    history: list[StageChange] = field(default_factory=list)


ModelVersion._nested = {"history": StageChange}


@dataclass(frozen=True)
class Verdict(_Record):
    """The promotion gate's verdict: ``passed`` (None: not measured), ``overridden`` by an admin, and the
    ``numbers`` (per rate, both versions' accuracy and batch time, the bounds, the failures)."""

    id: str
    version_id: str
    tolerance: float
    overridden: bool
    by_user_id: str
    created_at: datetime
    passed: bool | None = None
    against_version_id: str | None = None
    dataset_id: str | None = None
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InferenceJobUpdate(_Record):
    """A rolling update of an inference job to another model version: RUNNING, COMPLETED or ERRORED."""

    id: str
    inference_job_id: str
    to_version_id: str
    status: str
    by_user_id: str
    created_at: datetime
    from_version_id: str | None = None
    error: str | None = None
    stopped_at: datetime | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list route. Iterating a page iterates its items."""

    items: list[T]
    total: int
    offset: int
    limit: int

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def parse(cls, data: dict[str, Any], item: type[_Record]) -> Page[Any]:
        return cls([item.from_dict(v) for v in data["items"]], int(data["total"]), int(data["offset"]),
                   int(data["limit"]))
