"""Predictor API keys: how one is made, shown and stored. Admin creates them; a predictor verifies them.

A key is ``easel_`` + 43 URL-safe characters from :func:`secrets.token_urlsafe` (256 random bits). Only its
SHA-256 is stored. A slow, salted password hash (bcrypt, as for user passwords) guards *low-entropy* secrets
against guessing; a 256-bit random key cannot be guessed, so a plain SHA-256 is as safe here and lets the
predictor find a key by one indexed lookup of its hash instead of trying a slow hash per stored key.

The predictor reads ``Authorization: Bearer <key>`` (or ``X-API-Key: <key>``).
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy.orm import Session

from easel.db.models import PredictorKey

KEY_PREFIX = "easel_"
PREFIX_SHOWN = 12  # characters kept in the clear to tell keys apart (the fixed prefix + 6 random)
MAX_KEY_LENGTH = 128  # longer presented values are refused unhashed


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of ``key``: hex SHA-256 (see the module's note on why no salt or slow hash)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def shown_prefix(key: str) -> str:
    return key[:PREFIX_SHOWN]


def issue_key(session: Session, inference_job_id: str, name: str, *, created_by: str | None = None,
              internal: bool = False) -> tuple[PredictorKey, str]:
    """Add a new key of the job to ``session`` (the caller commits): its row and its secret (shown once)."""
    key = new_key()
    row = PredictorKey(inference_job_id=inference_job_id, name=name, prefix=shown_prefix(key),
                       secret_hash=hash_key(key), internal=internal, created_by=created_by)
    session.add(row)
    session.flush()
    return row, key


def key_from_headers(authorization: str | None, api_key: str | None) -> str | None:
    """The key a request presents, if any: ``X-API-Key`` first, else a ``Bearer`` credential."""
    if api_key:
        return api_key.strip() or None
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


__all__ = ["KEY_PREFIX", "MAX_KEY_LENGTH", "hash_key", "issue_key", "key_from_headers", "new_key", "shown_prefix"]
