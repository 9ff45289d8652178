"""User bootstrap: the first superadmin, from settings, created once."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from admin.security import hash_password
from easel.db.enums import UserRole
from easel.db.models import User
from easel.settings import Settings

log = logging.getLogger("admin")


def seed_superadmin(sessions: sessionmaker[Session], settings: Settings) -> bool:
    """Create the superadmin named by ``EASEL_SUPERADMIN_EMAIL`` unless that user exists; True if created.

    The password of an existing user is never changed here: settings seed it, the database owns it.
    """
    email = settings.superadmin_email
    with sessions() as session:
        if session.scalar(select(User.id).where(User.email == email)) is not None:
            return False
        session.add(User(
            email=email, role=UserRole.SUPERADMIN,
            password_hash=hash_password(settings.superadmin_password, settings.password_hash_rounds),
        ))
        try:
            session.commit()
        except IntegrityError:  # another admin process seeded it at the same moment
            session.rollback()
            return False
    log.info("seeded the superadmin %s", email)
    return True
