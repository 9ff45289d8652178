"""Dependencies every route draws on: settings, a database session, the caller, role checks, paging.

Routes name what they need in their signature, FastAPI-style::

    @router.get("/datasets")
    def list_datasets(db: DbSession, user: Developer, page: Paging) -> Page[DatasetOut]: ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from admin.security import TokenError, decode_token
from admin.state import AdminState
from easel.api_errors import Forbidden, Unauthorized
from easel.blobstore import BlobStore
from easel.db.enums import UserRole
from easel.db.models import User
from easel.settings import Settings

ADMINS = frozenset({UserRole.SUPERADMIN, UserRole.ADMIN})
DEVELOPERS = ADMINS | {UserRole.MODEL_DEVELOPER, UserRole.APP_DEVELOPER}
MODEL_UPLOADERS = ADMINS | {UserRole.MODEL_DEVELOPER}
EVERYONE = frozenset(UserRole)

_bearer = HTTPBearer(auto_error=False, description="a token from POST /tokens")


def get_state(request: Request) -> AdminState:
    return request.app.state.admin


def get_settings_dep(state: Annotated[AdminState, Depends(get_state)]) -> Settings:
    return state.settings


def get_blobs(state: Annotated[AdminState, Depends(get_state)]) -> BlobStore:
    return state.blobs


def get_db(state: Annotated[AdminState, Depends(get_state)]) -> Iterator[Session]:
    """A session for one request. Routes commit what they change; anything uncommitted is rolled back."""
    session = state.sessions()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


State = Annotated[AdminState, Depends(get_state)]
AppSettings = Annotated[Settings, Depends(get_settings_dep)]
Blobs = Annotated[BlobStore, Depends(get_blobs)]
DbSession = Annotated[Session, Depends(get_db)]


def get_current_user(
    db: DbSession, state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """The user named by a valid, unexpired bearer token, still present and not banned."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("this route needs a bearer token: POST /tokens with your e-mail and password")
    try:
        claims = decode_token(credentials.credentials, state.settings.secret_key)
    except TokenError as error:
        raise Unauthorized(str(error), code="invalid_token") from None
    user = db.get(User, claims.user_id)
    if user is None or user.banned_at is not None:
        raise Unauthorized("the token's user no longer exists or is banned", code="invalid_token")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require(roles: frozenset[UserRole], what: str) -> Callable[[User], User]:
    """A dependency that lets only ``roles`` through (403 otherwise)."""

    def check(user: CurrentUser) -> User:
        if user.role not in roles:
            allowed = ", ".join(sorted(role.value for role in roles))
            raise Forbidden(f"{what} needs one of the roles {allowed}; you are {user.role.value}")
        return user

    return check


Admin = Annotated[User, Depends(require(ADMINS, "managing users"))]
Developer = Annotated[User, Depends(require(DEVELOPERS, "this route"))]
ModelUploader = Annotated[User, Depends(require(MODEL_UPLOADERS, "uploading a model template"))]


def is_admin(user: User) -> bool:
    return user.role in ADMINS


@dataclass(frozen=True)
class PageParams:
    offset: int
    limit: int


def get_paging(
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="items to skip")] = 0,
    limit: Annotated[int, Query(ge=1, le=200, description="items per page (at most 200)")] = 50,
) -> PageParams:
    return PageParams(offset, limit)


Paging = Annotated[PageParams, Depends(get_paging)]
