"""Status and kind values stored in the metadata schema (stored as checked strings, portable)."""

from enum import StrEnum


class UserRole(StrEnum):
    SUPERADMIN = "SUPERADMIN"
    ADMIN = "ADMIN"
    MODEL_DEVELOPER = "MODEL_DEVELOPER"
    APP_DEVELOPER = "APP_DEVELOPER"
    APP_USER = "APP_USER"


class DatasetFormat(StrEnum):
    IMAGE_ZIP = "IMAGE_ZIP"
    NPZ = "NPZ"
    CSV = "CSV"


class ModelSource(StrEnum):
    BUILTIN = "BUILTIN"
    UPLOADED = "UPLOADED"


class AccessRight(StrEnum):
    PUBLIC = "PUBLIC"
    PRIVATE = "PRIVATE"


class JobStatus(StrEnum):
    STARTED = "STARTED"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    COMPLETED = "COMPLETED"
    ERRORED = "ERRORED"
    DEGRADED = "DEGRADED"  # an inference job serving with fewer live workers than it asked for


class TrialStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    ERRORED = "ERRORED"
    TERMINATED = "TERMINATED"


class ServiceKind(StrEnum):
    ADMIN = "ADMIN"
    ADVISOR = "ADVISOR"
    TRAIN_WORKER = "TRAIN_WORKER"
    PREDICTOR = "PREDICTOR"
    INFERENCE_WORKER = "INFERENCE_WORKER"
    EXPLAINER = "EXPLAINER"
    OTHER = "OTHER"


class ExplanationStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    ERRORED = "ERRORED"


class ServiceStatus(StrEnum):
    STARTED = "STARTED"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    ERRORED = "ERRORED"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class Stage(StrEnum):
    """Where a registered model version stands: one ``production`` version per app at most."""

    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class UpdateStatus(StrEnum):
    """A rolling update of an inference job to another model version."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    ERRORED = "ERRORED"
