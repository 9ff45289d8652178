"""A launched service records its own clean exit on its ``services`` row.

The launcher learns exit codes only of processes it started itself; a restarted admin finds a finished
service merely gone, and could not tell a clean exit from a crash (which it relaunches). So a service that
ends normally says so first: STOPPED with exit code 0.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from easel.db.enums import ServiceStatus
from easel.db.models import Service
from easel.db.session import session_scope

log = logging.getLogger("easel.launcher")

_ALIVE = (ServiceStatus.STARTED, ServiceStatus.RUNNING)


def record_clean_exit(sessions: sessionmaker[Session], service_id: str | None = None) -> bool:
    """Mark this process's service row (``EASEL_SERVICE_ID``) STOPPED with exit code 0; best effort."""
    service_id = service_id or os.environ.get("EASEL_SERVICE_ID")
    if not service_id:
        return False
    try:
        with session_scope(sessions) as session:
            moved = session.execute(update(Service).where(Service.id == service_id, Service.status.in_(_ALIVE))
                                    .values(status=ServiceStatus.STOPPED, exit_code=0,
                                            stopped_at=datetime.now(UTC))).rowcount
        return moved == 1
    except Exception as error:  # noqa: BLE001 - the launcher still records the exit it can see
        log.warning("could not record the clean exit of service %s: %s", service_id, error)
        return False


__all__ = ["record_clean_exit"]
