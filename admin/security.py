"""Password hashing (bcrypt) and bearer tokens (signed JWT, HS256, with expiry)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import bcrypt
import jwt

ALGORITHM = "HS256"
ISSUER = "easel-admin"


def _prehash(password: str) -> bytes:
    """SHA-256 then base64 (44 bytes): bcrypt reads at most 72 bytes and stops at NUL; this has neither."""
    return base64.b64encode(hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest())


def hash_password(password: str, rounds: int = 12) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(_prehash(password), password_hash.encode("ascii"))
    except ValueError:
        return False


_dummy_hashes: dict[int, bytes] = {}


def burn_time(password: str, rounds: int) -> None:
    """Spend about the time of a real check (for an unknown e-mail)."""
    if rounds not in _dummy_hashes:
        _dummy_hashes[rounds] = bcrypt.hashpw(b"easel-dummy", bcrypt.gensalt(rounds))
    bcrypt.checkpw(_prehash(password), _dummy_hashes[rounds])


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    role: str
    expires_at: datetime


def _signing_key(secret: str) -> bytes:
    """A 32-byte HMAC key derived from ``EASEL_SECRET_KEY`` (whatever its length), for tokens only."""
    return hashlib.sha256(b"easel-admin-token\x00" + secret.encode("utf-8", "surrogatepass")).digest()


class TokenError(ValueError):
    """The token is malformed, forged or expired."""


def create_token(user_id: str, role: str, secret: str, ttl_s: int, now: datetime | None = None) -> tuple[str, datetime]:
    issued = now or datetime.now(UTC)
    expires = issued + timedelta(seconds=ttl_s)
    claims = {
        "sub": user_id, "role": role, "iss": ISSUER,
        "iat": int(issued.timestamp()), "exp": int(expires.timestamp()),
    }
    return jwt.encode(claims, _signing_key(secret), algorithm=ALGORITHM), expires.replace(microsecond=0)


def decode_token(token: str, secret: str) -> TokenClaims:
    try:
        claims = jwt.decode(
            token, _signing_key(secret), algorithms=[ALGORITHM], issuer=ISSUER,
            options={"require": ["sub", "exp", "iat", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("the token has expired; log in again") from None
    except (jwt.PyJWTError, OverflowError, ValueError, TypeError):  # exp = 1e400 parses as inf: int() overflows
        raise TokenError("the token is not valid") from None
    if not isinstance(claims.get("sub"), str):
        raise TokenError("the token is not valid")
    try:
        expires_at = datetime.fromtimestamp(claims["exp"], UTC)
    except (OverflowError, OSError, ValueError, TypeError):  # e.g. exp = 10**20: past any datetime
        raise TokenError("the token is not valid") from None
    return TokenClaims(claims["sub"], str(claims.get("role", "")), expires_at)
