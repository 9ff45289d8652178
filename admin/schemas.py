"""Request and response bodies (pydantic). Every string that reaches the database is bounded and free of
control characters, so bad input is a 422 here rather than an error in PostgreSQL."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from easel.db.enums import (
    AccessRight,
    DatasetFormat,
    JobStatus,
    LogLevel,
    ModelSource,
    ServiceKind,
    ServiceStatus,
    Stage,
    TrialStatus,
    UpdateStatus,
    UserRole,
)
from easel.jobs import InferenceBudget, TrainBudget

T = TypeVar("T")

EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$"
APP_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
TASK_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]+$"
ID_PATTERN = r"^[A-Za-z0-9-]{1,64}$"
MAX_INT = 2**31 - 1
FLOAT_MAX = sys.float_info.max

Email = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=3, max_length=320, pattern=EMAIL_PATTERN)
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=1024, pattern=r"^[^\x00]+$")]
AppName = Annotated[str, StringConstraints(pattern=APP_PATTERN)]
Task = Annotated[str, StringConstraints(pattern=TASK_PATTERN), AfterValidator(str.upper)]
ModelName = Annotated[str, StringConstraints(pattern=MODEL_NAME_PATTERN)]
Text255 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=TEXT_PATTERN)]
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True, allow_inf_nan=False, extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(Out, Generic[T]):
    """One page of a list: ``items``, the ``total`` matching, and the ``offset``/``limit`` asked for."""

    items: list[T]
    total: int
    offset: int
    limit: int


class Health(Out):
    status: str
    version: str
    database: str
    # UNIX times of this admin process's start-up phases (process, imported, migrated, seeded, ready): where
    # an admin restart's seconds go
    boot: dict[str, float] = {}


# -- users and tokens --------------------------------------------------------------------------------
class LoginIn(Schema):
    email: Email
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class UserIn(Schema):
    email: Email
    password: Password
    role: UserRole


class UserPatchIn(Schema):
    role: UserRole


class PasswordChangeIn(Schema):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    new_password: Password


class UserOut(Out):
    id: str
    email: str
    role: UserRole
    created_at: datetime
    banned_at: datetime | None = None


class TokenOut(Out):
    token: str
    token_type: str = "bearer"
    expires_at: datetime
    user: UserOut


# -- datasets ----------------------------------------------------------------------------------------
class DatasetOut(Out):
    id: str
    name: str
    task: str
    format: DatasetFormat
    size_bytes: int
    num_samples: int
    num_classes: int
    stats: dict[str, Any]
    schema_status: str = Field(default="inferred", description="inferred (as uploaded), confirmed or edited by its "
                               "owner: GET/PATCH /datasets/{id}/schema")
    owner_id: str
    created_at: datetime


class DatasetSchemaOut(Out):
    """What a dataset holds, in the terms templates are matched on."""

    task: str = Field(description="IMAGE_CLASSIFICATION or TABULAR_CLASSIFICATION")
    input_shape: list[int | None] = Field(description="one instance: [C, H, W] (null: sizes vary) or [F]")
    dtype: str
    num_classes: int
    classes: list[str] = Field(description="class labels in index order (at most 1000 listed)")
    status: str = Field(description="inferred, confirmed or edited")
    inferred: dict[str, Any] = Field(description="what the data itself says (the schema as inferred on upload)")


class DatasetSchemaIn(Schema):
    """An edit of a dataset's schema: the fields given replace the current ones; none given confirms it."""

    task: Annotated[str, StringConstraints(pattern=TASK_PATTERN)] | None = None
    input_shape: list[int | None] | None = Field(default=None, min_length=1, max_length=4)
    dtype: Annotated[str, StringConstraints(max_length=16, pattern=r"^[a-z0-9]+$")] | None = None
    num_classes: int | None = Field(default=None, ge=2, le=100_000)
    classes: list[Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=TEXT_PATTERN)]] | None = \
        Field(default=None, max_length=1000)


# -- models ------------------------------------------------------------------------------------------
class ModelOut(Out):
    id: str
    name: str
    task: str
    source: ModelSource
    model_class: str
    knob_config: dict[str, Any]
    dependencies: dict[str, Any]
    fits: dict[str, Any] | None = Field(default=None, description="the dataset schemas it declares it fits (task "
                                        "kinds, input shape, class counts); null: never chosen automatically")
    access_right: AccessRight
    owner_id: str | None
    created_at: datetime


class ModelPatchIn(Schema):
    access_right: AccessRight = Field(description="PRIVATE (you) or PUBLIC (every developer); making it PUBLIC "
                                      "queues it for the opted-in apps whose data it fits")


# -- train jobs and trials ---------------------------------------------------------------------------
class TrainJobIn(Schema):
    app: AppName
    task: Task | None = Field(default=None, description="default: the training dataset's task")
    train_dataset_id: Id
    val_dataset_id: Id
    model_ids: list[Id] = Field(default_factory=list, max_length=20, description="empty: every template you can "
                                "use whose declared schema fits the training data's")
    budget: TrainBudget = Field(default_factory=TrainBudget)


class ServiceOut(Out):
    id: str
    name: str
    kind: ServiceKind
    status: ServiceStatus
    launcher: str
    host: str | None
    port: int | None
    model_version_id: str | None = Field(default=None, description="the model version an inference worker serves")
    created_at: datetime
    stopped_at: datetime | None


class SubTrainJobOut(Out):
    id: str
    model_id: str
    model_name: str
    status: JobStatus
    created_at: datetime
    stopped_at: datetime | None
    services: list[ServiceOut]


class PoolShareOut(Out):
    """A train job's share of the shared train pool (``EASEL_TRAIN_POOL_WORKERS`` > 0)."""

    pool_size: int = Field(description="generic train workers in the pool")
    workers_now: int = Field(description="pool workers running this job's trials now")
    share_now: float = Field(description="workers_now / pool_size")
    assignments: int = Field(description="trials the allocator has given this job since admin started")
    policy: str


class PoolWorkerOut(Out):
    worker: str
    busy: bool
    user_id: str | None = Field(default=None, description="whose job it runs (only your own unless you are an admin)")
    train_job_id: str | None = None
    sub_train_job_id: str | None = None
    reason: str | None = Field(default=None, description="why it was given this job: cold start, highest gain per "
                                                         "second, first result, highest regret reduction per second, "
                                                         "fairness floor, fifo or round robin")
    rate: float | None = Field(default=None, description="expected score gain per second it was chosen at")


class PoolUserOut(Out):
    user_id: str
    workers_now: int
    assignments: int = Field(description="trials given to this user's jobs since admin started")
    floor_assignments: int = Field(description="of those, how many the fairness floor forced")
    recent_share: float = Field(description="this user's fraction of the last 100 assignments")
    waiting: bool = Field(description="has trials waiting for a worker")
    waited: int | None = Field(default=None, description="assignments made since this user was last served")
    owed_s: float | None = Field(default=None, description="worker-seconds the fairness floor owes this user now "
                                                          "(served before any rate is compared once it covers "
                                                          "a trial)")
    last_reason: str | None = None
    last_rate: float | None = None


class PoolOut(Out):
    enabled: bool = Field(description="false when each train job runs its own workers (EASEL_TRAIN_POOL_WORKERS=0)")
    policy: str
    size: int
    live_workers: int = 0
    assignments: int = 0
    fairness_floor: str
    workers: list[PoolWorkerOut] = []
    users: list[PoolUserOut] = []
    updated_at: str | None = None


class TrainJobOut(Out):
    id: str
    app: str
    app_version: int
    task: str
    budget: dict[str, Any]
    train_dataset_id: str
    val_dataset_id: str
    status: JobStatus
    owner_id: str
    created_at: datetime
    stopped_at: datetime | None
    error: str | None = Field(default=None, description="why the job ended ERRORED (e.g. a restart budget spent)")
    candidates: dict[str, Any] | None = Field(
        default=None, description="for a job that named no models: the data's schema, the templates chosen and "
        "passed over (each with why), and templates added later by knowledge-base growth")
    sub_train_jobs: list[SubTrainJobOut]
    pool_share: PoolShareOut | None = Field(default=None, description="its share of the shared train pool (GET of "
                                                                      "one job; none without a pool)")


class TrialProgressOut(Out):
    """A trial trained unit by unit (an epoch, or in MOP mode one pass over one shard): how far it is."""

    units_done: int = Field(default=0, description="units trained and checkpointed")
    units_total: int = Field(default=0, description="units of the whole trial (epochs x shards)")
    epoch: int = Field(default=0, description="epoch of the last unit done")
    shard: int = Field(default=0, description="shard of the last unit done (0 outside MOP mode)")
    worker: str | None = Field(default=None, description="the worker that trained the last unit")
    units_run: int = Field(default=0, description="units trained in all, re-runs after lost work included")
    path: list[int] = Field(default_factory=list, description="the shard of each unit done, in order")
    paused_at_epoch: int | None = Field(default=None, description="promoting ASHA: the epoch (a rung) the trial is "
                                                                  "paused at, waiting to be promoted; null otherwise")
    rung_scores: dict[str, float] = Field(default_factory=dict, description="promoting ASHA: the validation score "
                                                                            "at each rung reached, by epoch")


class TrialOut(Out):
    id: str
    sub_train_job_id: str
    model_id: str
    model_name: str
    no: int
    knobs: dict[str, Any]
    status: TrialStatus
    score: float | None
    profile: dict[str, Any] | None
    has_parameters: bool
    attempts: int
    progress: TrialProgressOut | None = Field(default=None, description="unit-wise training progress; null "
                                                                        "for a template trained in one piece")
    error: str | None
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None


class TrialLogOut(Out):
    id: int
    time: datetime
    level: LogLevel
    message: str
    metrics: dict[str, Any] | None


# -- inference jobs ----------------------------------------------------------------------------------
class InferenceJobIn(Schema):
    app: AppName
    app_version: int = Field(default=-1, ge=-1, le=MAX_INT, description="-1: the latest version")
    workers: int = Field(default=1, ge=1, le=64, description="inference workers")
    budget: InferenceBudget = Field(default_factory=InferenceBudget)
    model_version: int | None = Field(default=None, ge=1, le=MAX_INT, description="serve this registered version "
                                      "of the app (default: the train job's best trials)")


class InferenceJobOut(Out):
    id: str
    app: str
    app_version: int
    train_job_id: str
    status: JobStatus
    workers: int
    budget: dict[str, Any]
    trial_ids: list[str]
    predictor_url: str | None = Field(description="where to send queries; filled in when the predictor runs")
    owner_id: str
    created_at: datetime
    stopped_at: datetime | None
    error: str | None = Field(default=None, description="why it is DEGRADED (what is missing) or ended ERRORED")
    model_version: int | None = Field(default=None, description="the registered version it serves (None: the "
                                      "train job's best trial, deployed directly)")
    services: list[ServiceOut]


# -- live views for the dashboard ------------------------------------------------------------------
class EpochPoint(Out):
    """One epoch of a trial, as its train worker logged it."""

    epoch: int
    metrics: dict[str, float]


class TrainJobSnapshot(Out):
    """What ``GET /train_jobs/{app}/{version}/events`` sends (event ``snapshot``) whenever something changed."""

    job: TrainJobOut
    trials: list[TrialOut] = Field(description="the job's trials, oldest first (at most `trials_limit`)")
    trials_total: int
    trials_limit: int
    epochs: dict[str, list[EpochPoint]] = Field(description="per trial id: its epochs so far, in order")
    workers: dict[str, str] = Field(description="per trial id: the name of the train worker that runs or ran it")


class PredictorMetrics(Out):
    up: bool
    error: str | None = None
    requests: dict[str, float] = Field(default_factory=dict, description="predict requests by HTTP status")
    instances: dict[str, float] = Field(default_factory=dict, description="instances answered, by status")
    inflight_tasks: float = 0
    workers_ready: float = 0
    latency_count: float = 0
    latency_sum_s: float = 0
    latency_p50_s: float | None = Field(default=None, description="since the predictor started (bucket bound)")
    latency_p99_s: float | None = None
    latency_buckets: list[list[float]] = Field(
        default_factory=list, description="cumulative (upper bound in s, count) pairs of the request-time histogram"
    )


class WorkerMetrics(Out):
    service_id: str
    name: str
    up: bool
    error: str | None = None
    instances: dict[str, float] = Field(default_factory=dict, description="served, dropped, expired")
    expected_correct: float = 0
    minibatches_by_rate: dict[str, float] = Field(default_factory=dict, description="the plan mix run so far")
    batch_time_estimate_s: dict[str, float] = Field(default_factory=dict, description="the planner's t_i by rate")
    queued_instances: float = 0
    inflight_instances: float = 0
    queue_lag_messages: float = 0


class InferenceTotals(Out):
    served: float
    dropped: float
    expired: float
    expected_correct: float
    effective_accuracy: float | None = Field(description="expected correct / all instances the workers answered")
    minibatches_by_rate: dict[str, float]


class InferenceMetricsOut(Out):
    """Counters are totals since each service started: a reader diffs two snapshots for rates."""

    job_id: str
    status: JobStatus
    collected_at: float = Field(description="UNIX seconds when admin scraped the services")
    predictor: PredictorMetrics | None
    workers: list[WorkerMetrics]
    totals: InferenceTotals


def _finite_numbers(value: Any) -> Any:
    """Every number nested in ``value`` fits a float64 (an integer like 10**400 does not): 422, not a 5xx later."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, int | float) and not isinstance(item, bool) and not -FLOAT_MAX <= item <= FLOAT_MAX:
            raise ValueError("numbers must be finite and within the float64 range")  # NaN compares False too
    return value


KeyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=TEXT_PATTERN)]


class PredictorKeyIn(Schema):
    name: KeyName = Field(default="default", description="a label to tell your keys apart, e.g. the client's name")


class PredictorKeyOut(Out):
    """An API key of an inference job's predictor (its secret is never shown again after creation)."""

    id: str
    inference_job_id: str
    name: str
    prefix: str = Field(description="the key's first characters")
    created_at: datetime
    revoked_at: datetime | None


class PredictorKeyCreated(PredictorKeyOut):
    key: str = Field(description="the secret: send it as `Authorization: Bearer <key>` to the predictor. Shown "
                                 "only now; it is stored hashed and cannot be read back")


class TryPredictIn(Schema):
    """A small predict request sent through admin (the dashboard's try-it page)."""

    instances: Annotated[list[Any], AfterValidator(_finite_numbers)] = Field(
        min_length=1, max_length=256, description="queries, e.g. images as nested lists of finite numbers")
    deadline_s: float = Field(gt=0, le=60, description="seconds from now by which every instance must be answered")


class Prediction(Out):
    label: Any = None
    probabilities: list[float] | None = None


class InstanceAnswer(Out):
    index: int
    status: str = Field(description="served or dropped")
    prediction: Prediction | None
    slice_rate: float | None
    latency_s: float
    worker: str | None = None


class PredictOut(Out):
    """The predictor's answer, passed on as it is (see the predictor's ``POST /predict``)."""

    model_config = ConfigDict(extra="allow")
    task_id: str
    predictions: list[InstanceAnswer]
    totals: dict[str, Any]


class PredictorInfoOut(Out):
    """What the deployed model expects (the predictor's ``GET /health``)."""

    model_config = ConfigDict(extra="allow")
    status: str
    workers: int
    workers_ready: int
    batch_size: int
    input_shape: list[int] | None
    slice_rates: list[float]


# -- model registry ------------------------------------------------------------------------------------
class VersionIn(Schema):
    trial_id: Id | None = Field(default=None, description="the trial to register (default: the best trial of "
                                "the app's train job `app_version`)")
    app_version: int = Field(default=-1, ge=-1, le=MAX_INT, description="-1: the app's latest train job")


class StageIn(Schema):
    stage: Stage
    dataset_id: Id | None = Field(default=None, description="the held-out dataset the promotion gate measures "
                                  "both versions on (needed to promote to production, unless overriding)")
    tolerance: float | None = Field(default=None, ge=0, le=1, description="the gate's tolerance (default: "
                                    "EASEL_PROMOTION_TOLERANCE)")
    override: bool = Field(default=False, description="admins only: promote whatever the gate says (recorded)")
    reason: str = Field(default="", max_length=2000, description="why, for the history")


class StageChangeOut(Out):
    from_stage: Stage | None
    to_stage: Stage
    by_user_id: str
    at: datetime
    reason: str
    verdict_id: str | None


class VerdictOut(Out):
    id: str
    version_id: str
    against_version_id: str | None
    dataset_id: str | None
    tolerance: float
    passed: bool | None = Field(description="the rule's answer (None: not evaluated)")
    overridden: bool
    numbers: dict[str, Any] = Field(description="per rate: both versions' accuracy and batch time, the bounds, "
                                    "and the failed checks")
    by_user_id: str
    created_at: datetime


class VersionOut(Out):
    id: str
    app: str
    number: int
    stage: Stage
    trial_id: str
    model_id: str
    train_dataset_id: str
    knobs: dict[str, Any]
    profile: dict[str, Any]
    owner_id: str
    created_at: datetime
    history: list[StageChangeOut]


class UpdateIn(Schema):
    model_version: int = Field(ge=1, le=MAX_INT, description="the registered version to serve (an older one: "
                               "a rollback)")


class UpdateOut(Out):
    id: str
    inference_job_id: str
    from_version_id: str | None
    to_version_id: str
    status: UpdateStatus
    error: str | None
    by_user_id: str
    created_at: datetime
    stopped_at: datetime | None


class StageOut(Out):
    version: VersionOut
    verdict: VerdictOut | None
    updates: list[UpdateOut] = Field(default_factory=list, description="rolling updates started because the app "
                                     "opted in to auto_update and the version passed the gate")


# -- apps --------------------------------------------------------------------------------------------
class AppIn(Schema):
    """An app's options; the fields given change, the others stay."""

    auto_update: bool | None = Field(default=None, description="roll the app's running inference jobs over to "
                                     "every version that passes the promotion gate")
    auto_tune: bool | None = Field(default=None, description="when a template you can use that fits the app's "
                                   "data is published, tune it within the latest train job's remaining budget")


class AppOut(Out):
    name: str
    owner_id: str
    auto_update: bool
    auto_tune: bool
    updated_at: datetime | None = None


# -- monitoring ---------------------------------------------------------------------------------------
class FeedbackIn(Schema):
    task_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="the answered request's task_id")
    labels: list[str | int | None] = Field(min_length=1, max_length=100_000, description="the true label of each "
                                           "instance, in order (null: unknown, not counted)")


class FeedbackOut(Out):
    task_id: str
    labelled: int = Field(description="instances of this request with a true label")
    served: int = Field(description="of those, answered served")
    correct: int = Field(description="of those, served with the true label")
    effective_accuracy: float | None = Field(description="this request's correct / labelled")
    measured_effective_accuracy: float | None = Field(description="the inference job's, over all its feedback")
    measured_instances: int = Field(description="labelled instances behind the job's measured effective accuracy")


class ServingSampleOut(Out):
    inference_job_id: str
    at: datetime
    values: dict[str, Any] = Field(description="requests, instances served/dropped, expected effective accuracy, "
                                   "width mix, latency p50/p99, queue lag, workers up/wanted")
