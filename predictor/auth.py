"""Who may use a predictor: holders of a live API key of *its* inference job (made by the job's owner through
admin, see ``admin/routes/predictor_keys.py``); everyone else gets 401 in the error envelope.

* Every route but ``/health`` (the liveness probe) needs a key: ``/predict``, ``/explain``,
  ``/explanations/...``, ``/metrics``, ``/docs`` and ``/openapi.json``. The key travels as
  ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
* A key is looked up by its SHA-256 in PostgreSQL (one indexed read, off the event loop). The verdict —
  valid or not — is cached for ``EASEL_PREDICTOR_KEY_CACHE_S`` seconds, so a revoked key is refused at most
  that long after its revocation, and a flood of requests costs the database one read per key per period.
  The cache is bounded (``MAX_CACHED`` keys, oldest dropped first), so random keys cannot grow it. While the
  database is unreachable (a restart) a key already verified keeps its last verdict; an unknown one gets 503.
* ``/predict`` and ``/explain`` count against the key's rate limit (``EASEL_PREDICTOR_KEY_RATE_LIMIT`` per
  ``EASEL_PREDICTOR_KEY_RATE_WINDOW_S``; the ``limits`` library, fixed windows, state in Redis so replicas
  share it; a replica takes a key's budget a share at a time, see :class:`KeyRateLimit`): beyond it, 429 with
  Retry-After. If Redis cannot be reached the limit is not enforced (logged):
  the answers travel through Redis too, so the request fails anyway rather than go unlimited for long.
* The key's id is published in :data:`CURRENT_KEY` for the request, so admission control can give each key
  its fair share of the queued-work bound (:mod:`predictor.admission`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar

from limits import RateLimitItemPerSecond
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from easel.api_errors import ApiError, TooManyRequests, Unauthorized, Unavailable, envelope
from easel.db.models import PredictorKey
from easel.predictor_keys import MAX_KEY_LENGTH, hash_key, key_from_headers

log = logging.getLogger("easel.predictor")

OPEN_PATHS = frozenset({"/health"})
RATE_LIMITED_PATHS = frozenset({"/predict", "/explain"})
MAX_CACHED = 10_000
STALE_RETRY_S = 1.0  # while the database is unreachable, a known key's last verdict is re-checked this often
RATE_KEY_PREFIX = "easel:predictor-rate"
LEASE_SHARE = 20  # a replica takes a key's rate-limit budget 1/20 of the limit at a time (KeyRateLimit)

#: The id of the API key the current request presented (None outside a request).
CURRENT_KEY: ContextVar[str | None] = ContextVar("easel_predictor_key", default=None)
# When the request reached this middleware, (UNIX time, perf_counter()): the request's own clock starts here, before
# the key check and the rate limit (the predictor's ``auth`` stage, and the answer's ``received_at``).
ENTERED: ContextVar[tuple[float, float] | None] = ContextVar("easel_predictor_entered", default=None)

Lookup = Callable[[str], str | None]


def database_lookup(sessions: sessionmaker[Session] | None, inference_job_id: str) -> Lookup:
    """A blocking lookup: the id of the live key of ``inference_job_id`` with this hash, else None."""

    def lookup(secret_hash: str) -> str | None:
        if sessions is None:
            return None
        with sessions() as session:
            return session.scalar(select(PredictorKey.id).where(
                PredictorKey.secret_hash == secret_hash, PredictorKey.inference_job_id == inference_job_id,
                PredictorKey.revoked_at.is_(None)))

    return lookup


class KeyVerifier:
    """Checks a presented key against ``lookup``, trusting each verdict for ``ttl_s`` (of ``clock``)."""

    def __init__(self, lookup: Lookup, ttl_s: float, clock: Callable[[], float] = time.monotonic,
                 max_cached: int = MAX_CACHED) -> None:
        if ttl_s < 0 or max_cached < 1:
            raise ValueError("KeyVerifier needs ttl_s >= 0 and max_cached >= 1")
        self._lookup = lookup
        self.ttl_s = ttl_s
        self._clock = clock
        self._max_cached = max_cached
        self._cache: OrderedDict[str, tuple[str | None, float]] = OrderedDict()
        self.lookups = 0  # database reads made (what the cache saves)

    async def verify(self, key: str | None) -> str:
        """The key's id, or raise :class:`Unauthorized`."""
        if not key:
            raise Unauthorized("this predictor needs an API key of its inference job: create one with "
                               "`easel keys create APP VERSION` (or POST /inference_jobs/{app}/{version}/keys on "
                               "admin) and send it as `Authorization: Bearer <key>`", code="missing_api_key")
        key_id = None if len(key) > MAX_KEY_LENGTH else await self._verdict(hash_key(key))
        if key_id is None:
            raise Unauthorized("the API key is not valid for this inference job (unknown, revoked, or another "
                               "job's)", code="invalid_api_key")
        return key_id

    async def _verdict(self, secret_hash: str) -> str | None:
        now = self._clock()
        cached = self._cache.get(secret_hash)
        if cached is not None and cached[1] > now:
            return cached[0]
        self.lookups += 1
        try:
            key_id = await asyncio.to_thread(self._lookup, secret_hash)
        except Exception as error:  # noqa: BLE001 - the database is away (a restart): keep serving known keys
            if cached is not None:
                log.warning("cannot verify API keys (%s); trusting the last verdict a while longer", error)
                self._cache[secret_hash] = (cached[0], now + min(self.ttl_s, STALE_RETRY_S))
                return cached[0]
            raise Unavailable("API keys cannot be verified right now (the metadata database is unreachable); "
                              "retry shortly", headers={"Retry-After": "2"}) from None
        self._cache[secret_hash] = (key_id, self._clock() + self.ttl_s)
        self._cache.move_to_end(secret_hash)
        while len(self._cache) > self._max_cached:
            self._cache.popitem(last=False)
        return key_id


def _async_storage_uri(redis_url: str) -> str:
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    return "async+" + redis_url


class KeyRateLimit:
    """At most ``limit`` requests per ``window_s`` per key (fixed windows in Redis, shared by replicas).

    A replica takes the right to up to ``lease`` further requests of a key's window at once (``limit //
    LEASE_SHARE``; counted in Redis when taken, in the background) and spends it locally, so a request does not wait
    for Redis — one round trip and one process hop in front of every request before — except one that finds no lease
    left: it is counted alone, as before, and the next lease is taken behind it. The limit still holds across
    replicas (a lease ends with its window); what a replica has not spent when the window ends is lost to the others
    (at most ``lease`` requests per replica and window). Limits under ``2 * LEASE_SHARE`` count every request alone."""

    def __init__(self, redis_url: str, limit: int, window_s: int) -> None:
        storage = storage_from_string(_async_storage_uri(redis_url), implementation="redispy",
                                      key_prefix=RATE_KEY_PREFIX, wrap_exceptions=True)
        self._limiter = FixedWindowRateLimiter(storage)
        self._item = RateLimitItemPerSecond(limit, window_s, namespace=RATE_KEY_PREFIX)
        self.limit, self.window_s = limit, window_s
        self.lease = max(1, limit // LEASE_SHARE)
        self._leases: dict[str, tuple[int, float]] = {}  # key id -> (requests left, monotonic end of its window)
        self._leasing: dict[str, asyncio.Task[None]] = {}  # keys whose next lease is being taken
        # key id -> monotonic end of a window this replica opened (its count began with our increment): a lease in
        # it lasts to that end; in a window opened elsewhere, to Redis's TTL (whole seconds) less half a second
        self._window_ends: dict[str, float] = {}
        self.leases_taken = 0  # Redis updates made for leases (what the local spending saves)

    async def hit(self, key_id: str) -> None:
        """Count one request of ``key_id``; raise :class:`TooManyRequests` when it is over its limit."""
        left, until = self._leases.get(key_id, (0, 0.0))
        if left > 0 and time.monotonic() < until:
            self._leases[key_id] = (left - 1, until)
            return
        await self._hit_one(key_id)
        if self.lease > 1 and key_id not in self._leasing:
            task = asyncio.get_running_loop().create_task(self._take_lease(key_id))
            self._leasing[key_id] = task
            task.add_done_callback(lambda _task: self._leasing.pop(key_id, None))

    async def _take_lease(self, key_id: str) -> None:
        """Count the next lease of ``key_id`` in Redis: as much of ``lease`` as its window has left."""
        try:
            take = min(self.lease, (await self._limiter.get_window_stats(self._item, key_id)).remaining)
            # A race with another replica between the two calls fails the hit and counts it anyway: the others
            # are then refused a little early, never admitted over the limit.
            if take < 1 or await self._count(key_id, take) > self.limit:
                return
            until = self._window_ends.get(key_id, 0.0)
            if until <= time.monotonic():
                # Redis rounds a TTL to whole seconds (to the nearest): the lease ends no later than its window does
                until = time.monotonic() + (await self._limiter.get_window_stats(self._item, key_id)).reset_time \
                    - time.time() - 0.5
        except StorageError as error:
            log.warning("could not take a rate-limit lease (%s); requests are counted one by one", error)
            return
        if len(self._leases) >= MAX_CACHED:  # bounded: forget ended windows (keys are this job's, few)
            now = time.monotonic()
            self._leases = {k: v for k, v in self._leases.items() if v[1] > now}
            self._window_ends = {k: v for k, v in self._window_ends.items() if v > now}
        self._leases[key_id] = (take, until)
        self.leases_taken += 1

    async def _count(self, key_id: str, amount: int) -> int:
        """Add ``amount`` to the key's count in its current window (what ``FixedWindowRateLimiter.hit`` does), and
        return the count; a count equal to ``amount`` opened the window, which then ends ``window_s`` after the
        call began at the latest (Redis starts its expiry when it runs the command)."""
        began = time.monotonic()
        count = await self._limiter.storage.incr(self._item.key_for(key_id), self._item.get_expiry(), amount=amount)
        if count == amount:
            self._window_ends[key_id] = began + self.window_s
        return count

    async def _hit_one(self, key_id: str) -> None:
        try:
            if await self._count(key_id, 1) <= self.limit:
                return
            reset_at = (await self._limiter.get_window_stats(self._item, key_id)).reset_time
        except StorageError as error:
            log.warning("the per-key rate limit is not enforced: its storage is unreachable (%s)", error)
            return
        retry = max(1, math.ceil(reset_at - time.time()))
        raise TooManyRequests(f"this API key is over its rate limit ({self.limit} requests per {self.window_s} s); "
                              f"retry in {retry} s", retry_after_s=retry, code="rate_limited")


class PredictorAuth:
    """ASGI middleware: authenticate every request but :data:`OPEN_PATHS`, rate-limit the costly ones."""

    def __init__(self, app: ASGIApp, verifier: KeyVerifier, rate_limit: KeyRateLimit | None) -> None:
        self.app = app
        self.verifier = verifier
        self.rate_limit = rate_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        ENTERED.set((time.time(), time.perf_counter()))
        headers = Headers(scope=scope)
        try:
            key_id = await self.verifier.verify(key_from_headers(headers.get("authorization"),
                                                                 headers.get("x-api-key")))
            if self.rate_limit is not None and scope["path"] in RATE_LIMITED_PATHS:
                await self.rate_limit.hit(key_id)
        except ApiError as error:
            await envelope(error.status_code, error.code, error.detail, error.headers)(scope, receive, send)
            return
        token = CURRENT_KEY.set(key_id)
        try:
            await self.app(scope, receive, send)
        finally:
            CURRENT_KEY.reset(token)


__all__ = ["CURRENT_KEY", "ENTERED", "KeyRateLimit", "KeyVerifier", "PredictorAuth", "database_lookup"]
