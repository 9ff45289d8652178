"""Users: admins create, list and ban them; everyone can read themselves.

Rules: a SUPERADMIN may create any role but SUPERADMIN; an ADMIN may create developers and app users.
Deleting a user bans them (their datasets, models and jobs stay on record, their tokens stop working).
Nobody deletes themselves or a superadmin; an ADMIN cannot delete another ADMIN.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from admin.deps import Admin, CurrentUser, DbSession, Paging, State, is_admin
from admin.routes.common import paginate
from admin.schemas import ID_PATTERN, Page, PasswordChangeIn, UserIn, UserOut, UserPatchIn
from admin.security import hash_password, verify_password
from admin.services.passwords import password_problem
from easel.api_errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from easel.db.enums import UserRole
from easel.db.models import User

router = APIRouter(prefix="/users", tags=["users"])
UserId = Annotated[str, Path(pattern=ID_PATTERN)]

CREATABLE = {
    UserRole.SUPERADMIN: {UserRole.ADMIN, UserRole.MODEL_DEVELOPER, UserRole.APP_DEVELOPER, UserRole.APP_USER},
    UserRole.ADMIN: {UserRole.MODEL_DEVELOPER, UserRole.APP_DEVELOPER, UserRole.APP_USER},
}


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a user (admins)")
def create_user(body: UserIn, db: DbSession, user: Admin, state: State) -> UserOut:
    if body.role not in CREATABLE.get(user.role, set()):
        raise Forbidden(f"a {user.role.value} cannot create a {body.role.value} user")
    if db.scalar(select(User.id).where(User.email == body.email)) is not None:
        raise Conflict(f"a user with e-mail {body.email} already exists", code="email_taken")
    problem = password_problem(body.password, state.settings, email=body.email)
    if problem is not None:
        raise Invalid(problem, code="weak_password")
    row = User(email=body.email, role=body.role,
               password_hash=hash_password(body.password, state.settings.password_hash_rounds))
    db.add(row)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        raise Conflict(f"a user with e-mail {body.email} already exists", code="email_taken") from None
    return UserOut.model_validate(row)


@router.get("", summary="List users (admins)")
def list_users(
    db: DbSession, _user: Admin, page: Paging,
    role: Annotated[UserRole | None, Query(description="only users with this role")] = None,
) -> Page[UserOut]:
    stmt = select(User).order_by(User.created_at, User.id)
    if role is not None:
        stmt = stmt.where(User.role == role)
    items, total = paginate(db, stmt, page)
    return Page[UserOut](items=[UserOut.model_validate(u) for u in items], total=total,
                         offset=page.offset, limit=page.limit)


@router.get("/me", summary="The user this token belongs to")
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)


@router.put("/me/password", status_code=status.HTTP_204_NO_CONTENT, summary="Change your own password")
def change_password(body: PasswordChangeIn, db: DbSession, user: CurrentUser, state: State) -> Response:
    problem = password_problem(body.new_password, state.settings, email=user.email)
    if problem is not None:
        raise Invalid(problem, code="weak_password")
    if not verify_password(body.current_password, user.password_hash):
        raise Unauthorized("the current password is wrong", code="bad_credentials")
    user.password_hash = hash_password(body.new_password, state.settings.password_hash_rounds)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{user_id}", summary="One user (admins, or yourself)")
def get_user(user_id: UserId, db: DbSession, user: CurrentUser) -> UserOut:
    if user_id != user.id and not is_admin(user):
        raise NotFound(f"no user {user_id}")
    row = db.get(User, user_id)
    if row is None:
        raise NotFound(f"no user {user_id}")
    return UserOut.model_validate(row)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Ban a user (admins)")
def delete_user(user_id: UserId, db: DbSession, user: Admin) -> Response:
    row = db.get(User, user_id)
    if row is None:
        raise NotFound(f"no user {user_id}")
    if row.id == user.id:
        raise Conflict("you cannot delete yourself")
    if row.role == UserRole.SUPERADMIN:
        raise Forbidden("a superadmin cannot be deleted")
    if row.role == UserRole.ADMIN and user.role != UserRole.SUPERADMIN:
        raise Forbidden("only a superadmin can delete an admin")
    if row.banned_at is None:
        row.banned_at = datetime.now(UTC)
        db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch("/{user_id}", summary="Change a user's role (admins)")
def change_role(user_id: UserId, body: UserPatchIn, db: DbSession, user: Admin) -> UserOut:
    row = db.get(User, user_id)
    if row is None:
        raise NotFound(f"no user {user_id}")
    if row.id == user.id:
        raise Conflict("you cannot change your own role")
    if row.role == UserRole.SUPERADMIN:
        raise Forbidden("a superadmin's role cannot be changed")
    allowed = CREATABLE.get(user.role, set())
    if row.role not in allowed or body.role not in allowed:
        raise Forbidden(f"a {user.role.value} cannot change a {row.role.value} into a {body.role.value}")
    row.role = body.role
    db.commit()
    return UserOut.model_validate(row)
