"""Apps: read and change an app's options — automatic serving updates (``auto_update``) and knowledge-base growth
(``auto_tune``). Only the app's owner (or an admin) sees or changes them."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from admin.deps import DbSession, Developer, is_admin
from admin.routes.train_jobs import AppPath
from admin.schemas import AppIn, AppOut
from admin.services.apps import app_options, app_owner
from easel.api_errors import NotFound
from easel.db.models import App, User

router = APIRouter(prefix="/apps", tags=["apps"])


def owned_app(db: Session, app: str, user: User, *, lock: bool = False) -> App:
    owner = app_owner(db, app)
    if owner is None or (owner != user.id and not is_admin(user)):
        raise NotFound(f"no app {app}")
    return app_options(db, app, owner, lock=lock)


@router.get("/{app}", summary="An app's options")
def get_app(app: AppPath, db: DbSession, user: Developer) -> AppOut:
    return AppOut.model_validate(owned_app(db, app, user))


@router.patch("/{app}", summary="Opt an app in or out of automatic serving updates and knowledge-base growth")
def patch_app(app: AppPath, body: AppIn, db: DbSession, user: Developer) -> AppOut:
    row = owned_app(db, app, user, lock=True)
    for name, value in body.model_dump(exclude_none=True).items():
        setattr(row, name, value)
    if row not in db:  # the app's first change of options writes its row
        db.add(row)
    db.commit()
    return AppOut.model_validate(owned_app(db, app, user))
