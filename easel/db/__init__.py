"""Metadata schema (SQLAlchemy 2), sessions and Alembic migrations.

``upgrade``/``downgrade`` are imported on first use: only admin and the stack migrate, and importing Alembic
costs every other service (a relaunched worker or predictor) a few hundred milliseconds of start-up.
"""

from typing import Any

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


def __getattr__(name: str) -> Any:
    if name in ("downgrade", "upgrade"):
        from easel.db import migrate

        return getattr(migrate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
