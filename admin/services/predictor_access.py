"""Admin's own API key per inference job, for what admin asks of a predictor on a user's behalf: the dashboard's
predict proxy, explanations, and the metrics scrape.

The key is made on first use and kept in this process's memory only (its hash is in ``predictor_keys``,
``internal`` — hidden from users' key lists); a restarted admin makes a new one. Users' own keys are theirs:
admin never needs to see them.
"""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session, sessionmaker

from easel.db.session import session_scope
from easel.predictor_keys import issue_key

INTERNAL_NAME = "admin"


class PredictorAccess:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._keys: dict[str, str] = {}
        self._lock = threading.Lock()

    def key_for(self, inference_job_id: str) -> str:
        """Admin's key of the job's predictor (blocking: a database write on first use)."""
        with self._lock:
            key = self._keys.get(inference_job_id)
            if key is None:
                with session_scope(self._sessions) as session:
                    _row, key = issue_key(session, inference_job_id, INTERNAL_NAME, internal=True)
                self._keys[inference_job_id] = key
            return key

    def headers(self, inference_job_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key_for(inference_job_id)}"}


__all__ = ["PredictorAccess"]
