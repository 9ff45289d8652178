"""``GET /pool``: the shared train pool's allocation — who holds its workers and why, each user's share.

The allocator (:mod:`admin.services.train_pool`) publishes its state to Redis each tick; this route reads it.
Users other than admins see the pool's totals and their own jobs' assignments only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from admin.deps import Developer, State, is_admin
from admin.schemas import PoolOut, PoolShareOut, PoolUserOut, PoolWorkerOut
from admin.state import AdminState
from easel.api_errors import Unavailable
from easel.db.models import TrainJob, User
from easel.faults import INFRASTRUCTURE_ERRORS
from easel.pool import PoolChannel
from easel.redis_client import make_redis

router = APIRouter(tags=["train jobs"])

FAIRNESS_FLOOR = ("regret_rate and cost_aware: each user with trials waiting is owed a share 1/(2U) of the pool's "
                  "worker-seconds (U = users with trials waiting), charged the expected cost of each trial it gets; a "
                  "user owed a whole trial is served before any rate is compared, so every waiting user gets at least "
                  "1/(2U) of the pool's time, up to about one trial of slack. regret_rate also serves a user more than "
                  "half a trial behind its round-robin turn before comparing rates")


def pool_snapshot(state: AdminState) -> dict[str, Any] | None:
    """The allocator's last published state (None without a pool, or before its first tick)."""
    if state.settings.train_pool_workers <= 0:
        return None
    client = make_redis(state.settings, decode_responses=True)
    try:
        return PoolChannel(client).allocation()
    except INFRASTRUCTURE_ERRORS:
        raise Unavailable("the train pool's state is unreachable (Redis); try again") from None
    finally:
        client.close()


def pool_share(state: AdminState, job: TrainJob) -> PoolShareOut | None:
    snapshot = pool_snapshot(state)
    if snapshot is None:
        return None
    size = int(snapshot.get("size", 0))
    now = sum(1 for w in snapshot.get("workers", []) if w.get("train_job_id") == job.id)
    return PoolShareOut(pool_size=size, workers_now=now, share_now=now / size if size else 0.0,
                        assignments=int(snapshot.get("jobs", {}).get(job.id, 0)), policy=snapshot["policy"])


@router.get("/pool", summary="The shared train pool: each user's share of its workers, and why")
def get_pool(user: Developer, state: State) -> PoolOut:
    settings = state.settings
    snapshot = pool_snapshot(state)
    if snapshot is None:
        return PoolOut(enabled=False, policy=settings.train_pool_policy, size=settings.train_pool_workers,
                       fairness_floor=FAIRNESS_FLOOR)
    sees_all = is_admin(user)
    return PoolOut(
        enabled=True, policy=snapshot["policy"], size=snapshot["size"], live_workers=snapshot["live_workers"],
        assignments=snapshot["assignments"], fairness_floor=FAIRNESS_FLOOR, updated_at=snapshot.get("updated_at"),
        workers=[_worker(w, user, sees_all) for w in snapshot["workers"]],
        users=[PoolUserOut(**u) for u in snapshot["users"] if sees_all or u["user_id"] == user.id],
    )


def _worker(raw: dict[str, Any], user: User, sees_all: bool) -> PoolWorkerOut:
    busy = "sub_train_job_id" in raw
    if busy and (sees_all or raw.get("user_id") == user.id):
        return PoolWorkerOut(worker=raw["worker"], busy=True, user_id=raw["user_id"], train_job_id=raw["train_job_id"],
                             sub_train_job_id=raw["sub_train_job_id"], reason=raw["reason"], rate=raw.get("rate"))
    return PoolWorkerOut(worker=raw["worker"], busy=busy)


__all__ = ["FAIRNESS_FLOOR", "pool_share", "pool_snapshot", "router"]
