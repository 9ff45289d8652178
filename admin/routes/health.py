"""``GET /health``: liveness plus a database round trip (no token needed)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from admin.deps import DbSession, State
from admin.schemas import Health
from admin.version import VERSION
from easel.api_errors import Unavailable

router = APIRouter(tags=["health"])


@router.get("/health", summary="Is admin up and can it reach its database?")
def health(db: DbSession, state: State) -> Health:
    try:
        db.execute(text("SELECT 1"))
    except SQLAlchemyError:
        raise Unavailable("admin is up but cannot reach its database") from None
    return Health(status="ok", version=VERSION, database="ok", boot=state.boot)
