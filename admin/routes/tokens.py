"""``POST /tokens``: trade an e-mail and password for an expiring bearer token."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, status
from sqlalchemy import select

from admin.deps import DbSession, State
from admin.schemas import LoginIn, TokenOut, UserOut
from admin.security import burn_time, create_token, verify_password
from admin.services.login_guard import GuardUnavailable, LoginGuard, LoginLocked
from easel.api_errors import TooManyRequests, Unauthorized, Unavailable
from easel.db.models import User

router = APIRouter(tags=["auth"])
log = logging.getLogger("admin")


def _count_failure(guard: LoginGuard, email: str, client: str) -> None:
    try:
        guard.failed(email, client)
    except GuardUnavailable as error:  # the caller still gets its 401; the outage is logged
        log.error("%s", error)


@router.post("/tokens", status_code=status.HTTP_201_CREATED, summary="Log in: e-mail + password -> bearer token")
def create_login_token(body: LoginIn, db: DbSession, state: State, request: Request) -> TokenOut:
    settings, guard = state.settings, state.login_guard
    client = request.client.host if request.client else "unknown"
    try:
        guard.check(body.email, client)
    except LoginLocked as locked:
        raise TooManyRequests(locked.detail, retry_after_s=locked.retry_after_s, code="login_locked") from None
    except GuardUnavailable as error:
        log.error("%s", error)
        raise Unavailable("logins are paused: admin cannot reach Redis") from None
    user = db.scalar(select(User).where(User.email == body.email))
    if user is None:
        burn_time(body.password, settings.password_hash_rounds)
        _count_failure(guard, body.email, client)
        raise Unauthorized("wrong e-mail or password", code="bad_credentials")
    if not verify_password(body.password, user.password_hash) or user.banned_at is not None:
        _count_failure(guard, body.email, client)
        raise Unauthorized("wrong e-mail or password", code="bad_credentials")
    guard.succeeded(body.email)
    token, expires_at = create_token(user.id, user.role.value, settings.secret_key, settings.token_ttl_s)
    return TokenOut(token=token, expires_at=expires_at, user=UserOut.model_validate(user))
