"""Generated local credentials: the token-signing key and the first superadmin's password.

``easel up`` calls :func:`ensure_local_credentials` on every run: the first run generates both (random,
URL-safe), writes them to ``$EASEL_DATA_DIR/credentials.json`` readable by its owner only (0600), and the
caller prints them once; later runs reuse the file. A value the operator set explicitly (an
``EASEL_SECRET_KEY`` or ``EASEL_SUPERADMIN_PASSWORD`` other than the public development default) always
wins over the file. :func:`apply_local_credentials` only reads (admin, the demo).

Example::

    settings, created = ensure_local_credentials(get_settings())
    if created:
        print("superadmin password:", settings.superadmin_password)
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from easel.settings import DEV_SECRET_KEY, DEV_SUPERADMIN_PASSWORD, Settings

FILE_NAME = "credentials.json"


def credentials_path(settings: Settings) -> Path:
    return settings.data_dir / FILE_NAME


def _read(path: Path) -> dict[str, str] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable credentials file ({error}); remove it to generate anew") from None
    if not (isinstance(data, dict) and isinstance(data.get("secret_key"), str)
            and isinstance(data.get("superadmin_password"), str)):
        raise ValueError(f"{path} lacks secret_key or superadmin_password; remove it to generate anew")
    return data


def _apply(settings: Settings, stored: dict[str, str]) -> Settings:
    """``settings`` with each development default replaced by the stored value (explicit values kept)."""
    update = {}
    if settings.secret_key == DEV_SECRET_KEY:
        update["secret_key"] = stored["secret_key"]
    if settings.superadmin_password == DEV_SUPERADMIN_PASSWORD:
        update["superadmin_password"] = stored["superadmin_password"]
    return settings.model_copy(update=update) if update else settings


def apply_local_credentials(settings: Settings) -> Settings:
    """``settings`` with the data dir's generated credentials where they are still the defaults (no file: as is)."""
    stored = _read(credentials_path(settings))
    return settings if stored is None else _apply(settings, stored)


def ensure_local_credentials(settings: Settings) -> tuple[Settings, bool]:
    """Load, or generate and store (0600), the data dir's credentials; True when they were generated now."""
    path = credentials_path(settings)
    stored = _read(path)
    created = stored is None
    if stored is None:
        stored = {"secret_key": secrets.token_urlsafe(48), "superadmin_password": secrets.token_urlsafe(18)}
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two concurrent first runs never overwrite each other's (already printed) secrets.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return apply_local_credentials(settings), False
        with os.fdopen(fd, "w") as handle:
            json.dump(stored, handle)
    return _apply(settings, stored), created
