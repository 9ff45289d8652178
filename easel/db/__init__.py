"""Metadata schema (SQLAlchemy 2), sessions and Alembic migrations."""

from easel.db.migrate import downgrade, upgrade
from easel.db.models import (
    Base,
    Dataset,
    InferenceJob,
    Model,
    Service,
    SubTrainJob,
    TrainJob,
    Trial,
    TrialLog,
    User,
)
from easel.db.session import make_engine, make_sessionmaker, session_scope

__all__ = [
    "Base", "Dataset", "InferenceJob", "Model", "Service", "SubTrainJob", "Trial", "TrialLog", "TrainJob",
    "User", "downgrade", "upgrade", "make_engine", "make_sessionmaker", "session_scope",
]
