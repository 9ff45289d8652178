"""Generated passwords of the local PostgreSQL's roles, kept in ``$EASEL_DATA_DIR/database.json`` (0600).

The first ``easel up`` generates one random password per role — the ``postgres`` superuser (used only by the
local stack to create roles and the database), ``admin`` (owns the schema) and each service role of
:mod:`easel.db.roles` — and later runs reuse them. A role added by a newer version gets its password then.
This module reads files only; it knows nothing of settings, so :mod:`easel.settings` may use it.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

FILE_NAME = "database.json"
ROLES = ("postgres", "admin", "advisor", "train", "inference", "predictor")


def passwords_path(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def read_passwords(data_dir: Path) -> dict[str, str] | None:
    """The stored passwords by role, or None when there is no file (a stack never started here)."""
    path = passwords_path(data_dir)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable password file ({error})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path} is not a password file (a JSON object of role -> password)")
    return data


def _write(path: Path, data: dict[str, str]) -> None:
    """Write ``data`` to ``path`` readable by its owner only, replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(temporary, path)


def ensure_passwords(data_dir: Path) -> dict[str, str]:
    """The stored passwords, generating (and storing, 0600) any role's that is missing."""
    stored = read_passwords(data_dir) or {}
    missing = [role for role in ROLES if role not in stored]
    if missing:
        stored = {**stored, **{role: secrets.token_urlsafe(24) for role in missing}}
        _write(passwords_path(data_dir), stored)
    return stored


__all__ = ["FILE_NAME", "ROLES", "ensure_passwords", "passwords_path", "read_passwords"]
