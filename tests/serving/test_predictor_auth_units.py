"""Predictor authentication pieces on their own: the key cache's revocation bound (a test clock), the per-key
rate limit on the real Redis, the middleware's answers, and admission control's fair share between keys."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from fastapi import FastAPI

from easel.api_errors import Overloaded, TooManyRequests, Unauthorized, Unavailable
from easel.predictor_keys import hash_key, key_from_headers, new_key
from easel.settings import Settings
from predictor.admission import Admission
from predictor.auth import CURRENT_KEY, KeyRateLimit, KeyVerifier, PredictorAuth


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(coroutine):  # noqa: ANN001, ANN201
    return asyncio.run(coroutine)


def test_a_revoked_key_is_refused_once_its_cached_verdict_expires() -> None:
    key = new_key()
    live = {hash_key(key): "key-1"}
    clock = Clock()
    verifier = KeyVerifier(live.get, ttl_s=5.0, clock=clock)
    assert run(verifier.verify(key)) == "key-1"
    del live[hash_key(key)]  # revoked in the database
    clock.now += 4.9
    assert run(verifier.verify(key)) == "key-1"  # still within the stated bound
    clock.now += 0.2
    with pytest.raises(Unauthorized) as refused:
        run(verifier.verify(key))
    assert refused.value.code == "invalid_api_key"
    assert verifier.lookups == 2, "one database read per key per cache period"


def test_missing_unknown_and_oversized_keys_are_refused_and_the_cache_stays_bounded() -> None:
    verifier = KeyVerifier({}.get, ttl_s=60.0, max_cached=3)
    with pytest.raises(Unauthorized) as missing:
        run(verifier.verify(None))
    assert missing.value.code == "missing_api_key" and "easel keys create" in missing.value.detail
    for _ in range(10):
        with pytest.raises(Unauthorized):
            run(verifier.verify(new_key()))
    assert len(verifier._cache) == 3
    before = verifier.lookups
    with pytest.raises(Unauthorized):
        run(verifier.verify("x" * 10_000))
    assert verifier.lookups == before, "an oversized key is refused without a lookup"


def test_while_the_database_is_away_known_keys_keep_their_verdict_and_unknown_ones_get_503() -> None:
    key = new_key()
    table: dict[str, str] | None = {hash_key(key): "key-1"}
    clock = Clock()

    def lookup(secret_hash: str) -> str | None:
        if table is None:
            raise ConnectionError("database restarting")
        return table.get(secret_hash)

    verifier = KeyVerifier(lookup, ttl_s=5.0, clock=clock)
    assert run(verifier.verify(key)) == "key-1"
    table = None
    clock.now += 10
    assert run(verifier.verify(key)) == "key-1"
    with pytest.raises(Unavailable):
        run(verifier.verify(new_key()))


def test_keys_are_read_from_either_header() -> None:
    assert key_from_headers("Bearer abc", None) == "abc"
    assert key_from_headers("bearer  abc ", None) == "abc"
    assert key_from_headers("Basic abc", None) is None
    assert key_from_headers("Bearer abc", "def") == "def"
    assert key_from_headers(None, None) is None


def test_the_rate_limit_counts_per_key_in_redis(settings: Settings) -> None:
    async def scenario() -> tuple[int, int]:
        limit = KeyRateLimit(settings.resolved_redis_url, 3, 60)
        mine, other = f"k-{uuid.uuid4().hex}", f"k-{uuid.uuid4().hex}"
        for _ in range(3):
            await limit.hit(mine)
        with pytest.raises(TooManyRequests) as over:
            await limit.hit(mine)
        await limit.hit(other)  # another key has its own budget
        return int(over.value.headers["Retry-After"]), over.value.status_code

    retry, status = run(scenario())
    assert status == 429 and 1 <= retry <= 60


def test_replicas_spend_leases_of_the_limit_without_a_redis_update_per_request_and_never_exceed_it(
        settings: Settings) -> None:
    """Two replicas (two limiters) on one key, limit 100 (leases of 5): together they admit no more than the limit,
    lose at most a few leases to each other, and update Redis far less often than once per request."""
    async def scenario() -> tuple[int, int, int]:
        replicas = [KeyRateLimit(settings.resolved_redis_url, 100, 60) for _ in range(2)]
        key, admitted = f"k-{uuid.uuid4().hex}", 0
        for k in range(150):
            try:
                await replicas[k % 2].hit(key)
                admitted += 1
            except TooManyRequests:
                pass
        return admitted, sum(r.leases_taken for r in replicas), replicas[0].lease

    admitted, leases, lease = run(scenario())
    assert 100 - 4 * lease <= admitted <= 100
    assert 1 <= leases <= admitted // lease + 2, "one Redis update per lease, not per request"


def test_the_middleware_guards_every_route_but_health(settings: Settings) -> None:
    key = new_key()
    app = FastAPI()
    seen: list[str | None] = []

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    async def predict() -> dict[str, str | None]:
        seen.append(CURRENT_KEY.get())
        return {"key": CURRENT_KEY.get()}

    @app.get("/metrics")
    def metrics() -> str:
        return "metrics"

    app.add_middleware(PredictorAuth, verifier=KeyVerifier({hash_key(key): "key-1"}.get, ttl_s=1.0),
                       rate_limit=KeyRateLimit(settings.resolved_redis_url, 2, 60))

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://predictor") as client:
            good = {"Authorization": f"Bearer {key}"}
            return [await client.get("/health"), await client.post("/predict"),
                    await client.get("/metrics"), await client.get("/docs"),
                    await client.post("/predict", headers={"X-API-Key": new_key()}),
                    await client.post("/predict", headers=good), await client.get("/metrics", headers=good),
                    await client.post("/predict", headers=good), await client.post("/predict", headers=good),
                    await client.get("/metrics", headers=good)]

    (health_, anonymous, metrics_, docs, unknown, first, scraped, second, third, scraped_again) = run(scenario())
    assert health_.status_code == 200
    for refused in (anonymous, metrics_, docs, unknown):
        assert refused.status_code == 401 and set(refused.json()) == {"error", "detail"}
        assert refused.headers["www-authenticate"] == "Bearer"
    assert anonymous.json()["error"] == "missing_api_key" and unknown.json()["error"] == "invalid_api_key"
    assert first.status_code == 200 and first.json() == {"key": "key-1"} and seen == ["key-1", "key-1"]
    assert scraped.status_code == 200 and scraped_again.status_code == 200, "/metrics is not rate-limited"
    assert second.status_code == 200
    assert third.status_code == 429 and third.json()["error"] == "rate_limited" and "retry-after" in third.headers


def test_one_key_cannot_starve_another() -> None:
    admission = Admission(max_work_s=10.0, max_instances=1000, batch_size=10, fastest_batch_s=0.1)
    # key A alone may use the whole bound
    a_tickets = [admission.admit(200, 1, "A") for _ in range(5)]  # 5 x 2 s = the whole 10 s
    with pytest.raises(Overloaded):
        admission.admit(10, 1, "A")
    # key B is within its half share: admitted although A has filled the job, up to its share
    admission.refuse_if_full("B")  # does not raise: B has room reserved
    b_tickets = [admission.admit(200, 1, "B") for _ in range(2)]  # 4 s of B's 5 s share
    with pytest.raises(Overloaded):
        admission.admit(200, 1, "B")  # 6 s would pass its share, and the job is full
    with pytest.raises(Overloaded):
        admission.refuse_if_full("A")
    assert admission.held == {"A": [pytest.approx(10.0), 1000], "B": [pytest.approx(4.0), 400]}
    for ticket in a_tickets + b_tickets:
        admission.release(ticket)
    assert admission.held == {} and admission.instances == 0


def test_a_lone_key_and_anonymous_admission_keep_the_old_bounds() -> None:
    admission = Admission(max_work_s=1.0, max_instances=100, batch_size=10, fastest_batch_s=0.1)
    admission.admit(100, 1, "A")
    with pytest.raises(Overloaded):
        admission.admit(1, 1, "A")
    with pytest.raises(Overloaded):
        admission.admit(1, 1)


def test_reserved_shares_never_take_the_job_past_twice_its_bounds() -> None:
    admission = Admission(max_work_s=10.0, max_instances=10_000, batch_size=10, fastest_batch_s=0.1)
    admission.admit(1000, 1, "A")  # 10 s: the whole bound
    admitted: dict[str, int] = {}
    for client in "BCDEF":  # each newcomer asks for five 1-second tasks, within its (shrinking) share
        for _ in range(5):
            try:
                admission.admit(100, 1, client)
                admitted[client] = admitted.get(client, 0) + 1
            except Overloaded:
                pass
    # B's share is 5 s (A, B), C's 3.3 s, D's 2.5 s: 10 more seconds; E's first would pass twice the bound
    assert admitted == {"B": 5, "C": 3, "D": 2}
    assert admission.work_s == pytest.approx(2 * admission.max_work_s)
