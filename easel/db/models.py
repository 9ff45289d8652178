"""SQLAlchemy 2 models of Easel's metadata: the record of every user, dataset, job, trial and service.

Every reference is a real foreign key; enums are stored as checked strings so the same migration runs on
PostgreSQL and SQLite.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from easel.db.enums import (
    AccessRight,
    DatasetFormat,
    ExplanationStatus,
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

# Stable constraint names so migrations can drop what they created, on both dialects.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = JSON().with_variant(JSONB(), "postgresql")
IdType = String(36)


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


def enum_column(enum_cls: type[StrEnum], name: str) -> Enum:
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JsonType, datetime: DateTime(timezone=True)}


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[UserRole] = mapped_column(enum_column(UserRole, "user_role"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    banned_at: Mapped[datetime | None] = mapped_column(default=None)


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    task: Mapped[str] = mapped_column(String(64))
    format: Mapped[DatasetFormat] = mapped_column(enum_column(DatasetFormat, "dataset_format"))
    blob_key: Mapped[str] = mapped_column(String(512))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    num_samples: Mapped[int] = mapped_column(Integer)
    num_classes: Mapped[int] = mapped_column(Integer)
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    schema: Mapped[dict[str, Any] | None] = mapped_column(
        JsonType, default=None, doc="what it holds (easel.datasets.schema): inferred on upload, confirmable, editable")
    schema_status: Mapped[str] = mapped_column(String(16), default="inferred", server_default="inferred",
                                               doc="inferred | confirmed | edited")
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Model(Base):
    """A model template: built-in (from ``slicing/``) or an uploaded ``.py`` file."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("name", name="uq_models_name"),)

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    task: Mapped[str] = mapped_column(String(64))
    source: Mapped[ModelSource] = mapped_column(enum_column(ModelSource, "model_source"))
    model_class: Mapped[str] = mapped_column(String(255))
    module_ref: Mapped[str] = mapped_column(String(512), doc="import path (built-in) or blob key (uploaded)")
    knob_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dependencies: Mapped[dict[str, Any]] = mapped_column(default=dict)
    fits: Mapped[dict[str, Any] | None] = mapped_column(
        JsonType, default=None, doc="the dataset schemas it declares it fits (None: never chosen automatically)")
    access_right: Mapped[AccessRight] = mapped_column(
        enum_column(AccessRight, "access_right"), default=AccessRight.PRIVATE
    )
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainJob(Base):
    __tablename__ = "train_jobs"
    __table_args__ = (UniqueConstraint("app", "app_version", name="uq_train_jobs_app_version"),)

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    app: Mapped[str] = mapped_column(String(255))
    app_version: Mapped[int] = mapped_column(Integer)
    task: Mapped[str] = mapped_column(String(64))
    budget: Mapped[dict[str, Any]] = mapped_column(default=dict)
    train_dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="RESTRICT"))
    val_dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="RESTRICT"))
    status: Mapped[JobStatus] = mapped_column(enum_column(JobStatus, "train_job_status"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None, doc="why it ended ERRORED")
    candidates: Mapped[dict[str, Any] | None] = mapped_column(
        JsonType, default=None, doc="models chosen for it by schema (and why), and templates added since")

    sub_train_jobs: Mapped[list[SubTrainJob]] = relationship(back_populates="train_job")


class App(Base):
    """An app's options (the app itself is the name its train jobs share; a row exists once options are set)."""

    __tablename__ = "apps"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    auto_update: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"),
                                              doc="roll its inference jobs to each version the gate promotes")
    auto_tune: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"),
                                            doc="tune newly published templates that fit its data")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SubTrainJob(Base):
    """One model's share of a train job: one advisor and N train workers."""

    __tablename__ = "sub_train_jobs"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    train_job_id: Mapped[str] = mapped_column(ForeignKey("train_jobs.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    status: Mapped[JobStatus] = mapped_column(enum_column(JobStatus, "sub_train_job_status"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None, doc="why it ended ERRORED")

    train_job: Mapped[TrainJob] = relationship(back_populates="sub_train_jobs")
    trials: Mapped[list[Trial]] = relationship(back_populates="sub_train_job")


class Service(Base):
    """A launched process or pod: advisor, worker, predictor, ..."""

    __tablename__ = "services"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[ServiceKind] = mapped_column(enum_column(ServiceKind, "service_kind"))
    status: Mapped[ServiceStatus] = mapped_column(enum_column(ServiceStatus, "service_status"))
    launcher: Mapped[str] = mapped_column(String(32))
    host: Mapped[str | None] = mapped_column(String(255), default=None)
    port: Mapped[int | None] = mapped_column(Integer, default=None)
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    pod_name: Mapped[str | None] = mapped_column(String(255), default=None)
    command: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="argv and non-secret env")
    log_path: Mapped[str | None] = mapped_column(String(1024), default=None)
    exit_code: Mapped[int | None] = mapped_column(Integer, default=None)
    sub_train_job_id: Mapped[str | None] = mapped_column(
        ForeignKey("sub_train_jobs.id", ondelete="SET NULL"), index=True, default=None
    )
    inference_job_id: Mapped[str | None] = mapped_column(
        ForeignKey("inference_jobs.id", ondelete="SET NULL"), index=True, default=None
    )
    model_version_id: Mapped[str | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL"), default=None, doc="the version an inference worker serves"
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    stopped_at: Mapped[datetime | None] = mapped_column(default=None)


class Trial(Base):
    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("sub_train_job_id", "no", name="uq_trials_sub_train_job_no"),)

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    sub_train_job_id: Mapped[str] = mapped_column(ForeignKey("sub_train_jobs.id", ondelete="CASCADE"))
    no: Mapped[int] = mapped_column(Integer, doc="trial number within the sub-train-job, from 1")
    knobs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[TrialStatus] = mapped_column(enum_column(TrialStatus, "trial_status"))
    score: Mapped[float | None] = mapped_column(Float, default=None)
    profile: Mapped[dict[str, Any] | None] = mapped_column(JsonType, default=None)
    params_key: Mapped[str | None] = mapped_column(String(512), default=None)
    progress: Mapped[dict[str, Any] | None] = mapped_column(
        JsonType, default=None, doc="unit-wise training: units done and total, last epoch, shard and worker")
    worker_service_id: Mapped[str | None] = mapped_column(
        ForeignKey("services.id", ondelete="SET NULL"), default=None
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    stopped_at: Mapped[datetime | None] = mapped_column(default=None)

    sub_train_job: Mapped[SubTrainJob] = relationship(back_populates="trials")


class TrialLog(Base):
    __tablename__ = "trial_logs"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    trial_id: Mapped[str] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    time: Mapped[datetime] = mapped_column(default=utcnow)
    level: Mapped[LogLevel] = mapped_column(enum_column(LogLevel, "log_level"), default=LogLevel.INFO)
    message: Mapped[str] = mapped_column(Text)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JsonType, default=None)


class InferenceJob(Base):
    __tablename__ = "inference_jobs"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    train_job_id: Mapped[str] = mapped_column(ForeignKey("train_jobs.id", ondelete="RESTRICT"), index=True)
    status: Mapped[JobStatus] = mapped_column(enum_column(JobStatus, "inference_job_status"))
    budget: Mapped[dict[str, Any]] = mapped_column(default=dict)
    trial_ids: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="{'trials': [ids]} deployed")
    predictor_url: Mapped[str | None] = mapped_column(String(1024), default=None)
    model_version_id: Mapped[str | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL"), default=None,
        doc="the registered version it serves (None: the train job's best trial, deployed directly)")
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None, doc="why it ERRORED (or is DEGRADED)")


class PredictorKey(Base):
    """An API key of one inference job's predictor. Only its SHA-256 is stored (see :mod:`easel.predictor_keys`);
    the secret is shown once, when created. ``internal`` keys are admin's own (its dashboard proxy and metrics
    scrape), never listed to users."""

    __tablename__ = "predictor_keys"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    inference_job_id: Mapped[str] = mapped_column(ForeignKey("inference_jobs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16), doc="the key's first characters, to tell keys apart")
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Explanation(Base):
    """One LIME or Grad-CAM explanation of one instance by a deployed inference job.

    The input and the heat map / overlay live in the blob store under ``*_key``; per-feature weights and the
    method's details (target layer, superpixel ranking) are small and live here.
    """

    __tablename__ = "explanations"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    inference_job_id: Mapped[str] = mapped_column(ForeignKey("inference_jobs.id", ondelete="CASCADE"), index=True)
    trial_id: Mapped[str | None] = mapped_column(ForeignKey("trials.id", ondelete="SET NULL"), default=None)
    method: Mapped[str] = mapped_column(String(16))
    slice_rate: Mapped[float] = mapped_column(Float)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[ExplanationStatus] = mapped_column(enum_column(ExplanationStatus, "explanation_status"))
    instance_key: Mapped[str] = mapped_column(String(512))
    label: Mapped[str | None] = mapped_column(String(255), default=None)
    class_index: Mapped[int | None] = mapped_column(Integer, default=None)
    probabilities: Mapped[dict[str, Any] | None] = mapped_column(JsonType, default=None, doc="{'values': [...]}")
    weights: Mapped[dict[str, Any] | None] = mapped_column(JsonType, default=None, doc="{'names', 'values'}")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    heatmap_key: Mapped[str | None] = mapped_column(String(512), default=None)
    overlay_key: Mapped[str | None] = mapped_column(String(512), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    compute_s: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class ModelVersion(Base):
    """A registered version of an app's model: a trial's parameters, its per-width profile and the data it was
    trained on. The ``stage`` is the latest row of its :class:`StageChange` history (which is never rewritten)."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("app", "number", name="uq_model_versions_app_number"),
        Index("uq_model_versions_production", "app", unique=True, postgresql_where=text("stage = 'production'"),
              sqlite_where=text("stage = 'production'")),
    )

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    app: Mapped[str] = mapped_column(String(255), index=True)
    number: Mapped[int] = mapped_column(Integer, doc="per app, from 1")
    trial_id: Mapped[str] = mapped_column(ForeignKey("trials.id", ondelete="RESTRICT"))
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    train_dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="RESTRICT"))
    knobs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    params_key: Mapped[str] = mapped_column(String(512))
    profile: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="per slice rate: accuracy, batch time")
    stage: Mapped[Stage] = mapped_column(enum_column(Stage, "model_stage"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    history: Mapped[list[StageChange]] = relationship(order_by="StageChange.id")


class StageChange(Base):
    """One move of a version between stages: who, when, why (append-only)."""

    __tablename__ = "model_stage_changes"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), index=True)
    from_stage: Mapped[Stage | None] = mapped_column(enum_column(Stage, "model_stage_from"), default=None)
    to_stage: Mapped[Stage] = mapped_column(enum_column(Stage, "model_stage_to"))
    by_user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(Text, default="")
    verdict_id: Mapped[str | None] = mapped_column(ForeignKey("promotion_verdicts.id", ondelete="RESTRICT"),
                                                   default=None)


class PromotionVerdict(Base):
    """The promotion gate's verdict on a candidate, with the numbers that produced it."""

    __tablename__ = "promotion_verdicts"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    version_id: Mapped[str] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), index=True)
    against_version_id: Mapped[str | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL"), default=None, doc="the production version then")
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id", ondelete="RESTRICT"), default=None)
    tolerance: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool | None] = mapped_column(default=None, doc="the rule's answer (None: not evaluated)")
    overridden: Mapped[bool] = mapped_column(default=False, doc="an admin promoted it whatever the rule said")
    numbers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    by_user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class InferenceJobUpdate(Base):
    """A rolling update of an inference job from one model version to another (a rollback is one too)."""

    __tablename__ = "inference_job_updates"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    inference_job_id: Mapped[str] = mapped_column(ForeignKey("inference_jobs.id", ondelete="CASCADE"), index=True)
    from_version_id: Mapped[str | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"),
                                                        default=None)
    to_version_id: Mapped[str] = mapped_column(ForeignKey("model_versions.id", ondelete="RESTRICT"))
    status: Mapped[UpdateStatus] = mapped_column(enum_column(UpdateStatus, "update_status"))
    error: Mapped[str | None] = mapped_column(Text, default=None)
    by_user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(default=None)


class Feedback(Base):
    """True labels for one answered request: how many of its instances were served correctly."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("inference_job_id", "task_id", name="uq_feedback_inference_job_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    inference_job_id: Mapped[str] = mapped_column(ForeignKey("inference_jobs.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[str] = mapped_column(String(64))
    instances: Mapped[int] = mapped_column(Integer)
    served: Mapped[int] = mapped_column(Integer)
    correct: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ServingSample(Base):
    """One collection of an inference job's serving metrics by admin: a point of its app's series."""

    __tablename__ = "serving_samples"
    __table_args__ = (Index("ix_serving_samples_app_at", "app", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    inference_job_id: Mapped[str] = mapped_column(ForeignKey("inference_jobs.id", ondelete="CASCADE"), index=True)
    app: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    values: Mapped[dict[str, Any]] = mapped_column(default=dict)
