"""Tokens and users: login, expiry, forged tokens, bans, who may create and delete whom."""

from __future__ import annotations

import httpx
import pytest
from admin_helpers import PASSWORD, SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD

from admin.security import create_token, hash_password, verify_password
from easel.settings import Settings
from sdk import Client, Conflict, Forbidden, Invalid, NotFound, Unauthorized


def test_superadmin_is_seeded_and_logs_in(anonymous: Client) -> None:
    token = anonymous.login(SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
    assert token.user.role == "SUPERADMIN"
    assert token.token_type == "bearer"
    assert token.expires_at > token.user.created_at
    assert anonymous.me().email == SUPERADMIN_EMAIL


def test_login_is_case_insensitive_on_email(anonymous: Client) -> None:
    assert anonymous.login(SUPERADMIN_EMAIL.upper(), SUPERADMIN_PASSWORD).user.email == SUPERADMIN_EMAIL


@pytest.mark.parametrize("email,password", [(SUPERADMIN_EMAIL, "wrong-password"), ("nobody@easel.test", "whatever1")])
def test_bad_credentials_are_401_with_one_message(anonymous: Client, email: str, password: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        anonymous.login(email, password)
    assert caught.value.code == "bad_credentials"
    assert caught.value.detail == "wrong e-mail or password"


def test_routes_need_a_token(anonymous: Client) -> None:
    with pytest.raises(Unauthorized, match="needs a bearer token") as caught:
        anonymous.list_datasets()
    assert caught.value.response is not None
    assert caught.value.response.headers["www-authenticate"] == "Bearer"
    assert anonymous.health().status == "ok"  # health needs none


def test_expired_and_forged_tokens_are_refused(url: str, root: Client, admin_settings: Settings) -> None:
    me = root.me()
    expired, _ = create_token(me.id, me.role, admin_settings.secret_key, ttl_s=-5)
    forged, _ = create_token(me.id, me.role, "some-other-secret-key", ttl_s=600)
    for token, message in ((expired, "expired"), (forged, "not valid"), ("not.a.jwt", "not valid")):
        with Client(url, token) as client, pytest.raises(Unauthorized, match=message) as caught:
            client.me()
        assert caught.value.code == "invalid_token"
    response = httpx.get(f"{url}/users/me", headers={"Authorization": f"Basic {root.token}"})
    assert response.status_code == 401


def test_token_lifetime_follows_settings(root: Client, admin_settings: Settings) -> None:
    token = root.login(SUPERADMIN_EMAIL, SUPERADMIN_PASSWORD)
    lifetime = (token.expires_at - token.user.created_at).total_seconds()
    assert lifetime >= admin_settings.token_ttl_s - 5


def test_passwords_are_hashed_with_bcrypt() -> None:
    stored = hash_password("p" * 200, rounds=4)  # longer than bcrypt's 72 bytes: pre-hashed
    assert stored.startswith("$2b$04$")
    assert verify_password("p" * 200, stored)
    assert not verify_password("p" * 199, stored)
    assert not verify_password("x", "not-a-hash")


def test_admin_creates_lists_and_bans_users(root: Client, url: str) -> None:
    user = root.create_user("Ann@Easel.Test", PASSWORD, "MODEL_DEVELOPER")
    assert user.email == "ann@easel.test" and user.role == "MODEL_DEVELOPER" and user.banned_at is None
    assert root.get_user(user.id) == user
    assert user.id in {u.id for u in root.list_users(role="MODEL_DEVELOPER")}
    with pytest.raises(Conflict, match="already exists"):
        root.create_user("ann@easel.test", PASSWORD, "APP_USER")
    with Client(url) as ann:
        ann.login("ann@easel.test", PASSWORD)
        assert ann.me().id == user.id
        root.delete_user(user.id)
        with pytest.raises(Unauthorized):
            ann.me()  # the old token dies with the ban
        with pytest.raises(Unauthorized):
            ann.login("ann@easel.test", PASSWORD)
    assert root.get_user(user.id).banned_at is not None


def test_user_input_is_validated(root: Client) -> None:
    with pytest.raises(Invalid, match="email"):
        root.create_user("not-an-email", PASSWORD, "APP_USER")
    with pytest.raises(Invalid, match="password"):
        root.create_user("short@easel.test", "short", "APP_USER")
    with pytest.raises(Invalid, match="role"):
        root.create_user("role@easel.test", PASSWORD, "KING")


def test_who_may_create_and_delete_whom(root: Client, make_user) -> None:
    admin, admin_user = make_user("ADMIN")
    other_admin = root.create_user("other-admin@easel.test", PASSWORD, "ADMIN")
    developer, developer_user = make_user("APP_DEVELOPER")
    with pytest.raises(Forbidden, match="cannot create"):
        root.create_user("super2@easel.test", PASSWORD, "SUPERADMIN")
    with pytest.raises(Forbidden, match="cannot create"):
        admin.create_user("admin2@easel.test", PASSWORD, "ADMIN")
    assert admin.create_user("dev2@easel.test", PASSWORD, "APP_USER").role == "APP_USER"
    with pytest.raises(Forbidden, match="managing users"):
        developer.create_user("dev3@easel.test", PASSWORD, "APP_USER")
    with pytest.raises(Forbidden, match="only a superadmin"):
        admin.delete_user(other_admin.id)
    with pytest.raises(Forbidden, match="superadmin cannot be deleted"):
        admin.delete_user(root.me().id)
    with pytest.raises(Conflict, match="yourself"):
        admin.delete_user(admin_user.id)
    with pytest.raises(NotFound):
        admin.delete_user("00000000-0000-0000-0000-000000000000")
    root.delete_user(other_admin.id)
    admin.delete_user(developer_user.id)
    # A non-admin reads only themselves.
    viewer, viewer_user = make_user("APP_USER")
    assert viewer.get_user(viewer_user.id).id == viewer_user.id
    with pytest.raises(NotFound):
        viewer.get_user(admin_user.id)
