"""``POST /tokens``: trade an e-mail and password for an expiring bearer token."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from sqlalchemy import select

from admin.deps import DbSession, State
from admin.errors import TooManyRequests, Unauthorized
from admin.schemas import LoginIn, TokenOut, UserOut
from admin.security import burn_time, create_token, verify_password
from admin.services.login_guard import LoginLocked
from easel.db.models import User

router = APIRouter(tags=["auth"])


@router.post("/tokens", status_code=status.HTTP_201_CREATED, summary="Log in: e-mail + password -> bearer token")
def create_login_token(body: LoginIn, db: DbSession, state: State, request: Request) -> TokenOut:
    settings, guard = state.settings, state.login_guard
    client = request.client.host if request.client else "unknown"
    try:
        guard.check(body.email, client)
    except LoginLocked as locked:
        raise TooManyRequests(locked.detail, retry_after_s=locked.retry_after_s, code="login_locked") from None
    user = db.scalar(select(User).where(User.email == body.email))
    if user is None:
        burn_time(body.password, settings.password_hash_rounds)
        guard.failed(body.email, client)
        raise Unauthorized("wrong e-mail or password", code="bad_credentials")
    if not verify_password(body.password, user.password_hash) or user.banned_at is not None:
        guard.failed(body.email, client)
        raise Unauthorized("wrong e-mail or password", code="bad_credentials")
    guard.succeeded(body.email)
    token, expires_at = create_token(user.id, user.role.value, settings.secret_key, settings.token_ttl_s)
    return TokenOut(token=token, expires_at=expires_at, user=UserOut.model_validate(user))
