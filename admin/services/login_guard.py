"""Login brute-force guard: failed logins are counted per account and per client address (the ``limits``
library, moving windows, state in Redis so every admin process shares it).

An account with ``EASEL_LOGIN_MAX_FAILURES`` failed logins inside ``EASEL_LOGIN_LOCKOUT_S`` is locked until
the oldest of them leaves the window; a client address gets five times that (one address may serve several
people). A locked login is refused *before* the password is checked — ``429`` with ``Retry-After`` — so the
guard also spares bcrypt's CPU. A successful login clears its account's count.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time

from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from easel.settings import Settings

KEY_PREFIX = "easel:login-guard"
CLIENT_FACTOR = 5


class GuardUnavailable(Exception):
    """The guard's storage (Redis) cannot be reached: logins are refused rather than left unguarded."""


class LoginLocked(Exception):
    """Too many failed logins; try again after ``retry_after_s`` seconds."""

    def __init__(self, retry_after_s: int, detail: str) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s
        self.detail = detail


def _account(email: str) -> str:
    return "account:" + hashlib.sha256(email.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class LoginGuard:
    def __init__(self, storage: Storage, max_failures: int, window_s: int) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._per_account = RateLimitItemPerSecond(max_failures, window_s, namespace=KEY_PREFIX)
        self._per_client = RateLimitItemPerSecond(max_failures * CLIENT_FACTOR, window_s, namespace=KEY_PREFIX)

    @classmethod
    def from_settings(cls, settings: Settings, storage_uri: str | None = None) -> LoginGuard:
        """Redis at ``EASEL_REDIS_URL`` unless ``storage_uri`` says otherwise (``memory://`` for SQLite-only tests)."""
        uri = storage_uri or settings.resolved_redis_url
        options: dict = {"wrap_exceptions": True}
        options |= {"key_prefix": KEY_PREFIX} if uri.startswith(("redis", "rediss", "unix")) else {}
        return cls(storage_from_string(uri, **options), settings.login_max_failures, settings.login_lockout_s)

    def _checks(self, email: str, client: str) -> list[tuple[RateLimitItemPerSecond, str, str]]:
        return [(self._per_account, _account(email), "this account"),
                (self._per_client, f"client:{client}", "your address")]

    def check(self, email: str, client: str) -> None:
        """Raise :class:`LoginLocked` while the account or the client is locked out."""
        try:
            for item, key, who in self._checks(email, client):
                if not self._limiter.test(item, key):
                    reset_at = self._limiter.get_window_stats(item, key).reset_time
                    wait = max(1, math.ceil(reset_at - time.time()))
                    raise LoginLocked(wait, f"too many failed logins for {who}; try again in {wait} s")
        except StorageError as error:
            raise GuardUnavailable(f"the login guard's storage is unreachable ({error})") from None

    def failed(self, email: str, client: str) -> None:
        try:
            for item, key, _who in self._checks(email, client):
                self._limiter.hit(item, key)
        except StorageError as error:
            raise GuardUnavailable(f"the login guard's storage is unreachable ({error})") from None

    def succeeded(self, email: str) -> None:
        with contextlib.suppress(StorageError):  # unreachable: the count simply ages out of its window
            self._limiter.clear(self._per_account, _account(email))
