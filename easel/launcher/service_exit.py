"""A launched service records its own clean exit on its ``services`` row.

The launcher learns exit codes only of processes it started itself; a restarted admin finds a finished
service merely gone, and could not tell a clean exit from a crash (which it relaunches). So a service that
ends normally says so first: STOPPED with exit code 0.
"""

from __future__ import annotations

import logging
import os

from sqlalchemy.orm import Session, sessionmaker

from easel.db.session import session_scope
from easel.jobs import lifecycle

log = logging.getLogger("easel.launcher")


def record_clean_exit(sessions: sessionmaker[Session], service_id: str | None = None) -> bool:
    """Mark this process's service row (``EASEL_SERVICE_ID``) STOPPED with exit code 0; best effort."""
    service_id = service_id or os.environ.get("EASEL_SERVICE_ID")
    if not service_id:
        return False
    try:
        with session_scope(sessions) as session:
            return lifecycle.mark_service_exited_cleanly(session, service_id)
    except Exception as error:  # noqa: BLE001 - the launcher still records the exit it can see
        log.warning("could not record the clean exit of service %s: %s", service_id, error)
        return False


__all__ = ["record_clean_exit"]
