"""The shared train-worker pool (``EASEL_TRAIN_POOL_WORKERS`` > 0): admin keeps that many generic train workers
running and — as soon as a bid is published or a worker comes free, else every ``interval_s`` — gives each free
one the next sub-train-job unit by ``EASEL_TRAIN_POOL_POLICY`` (:mod:`easel.allocation`; the Redis protocol is
:mod:`easel.pool`).

The pool's workers are services of their own (slots ``train-pool-<i>``, no job): this loop relaunches a dead one
(first at once, then backing off) — the supervisor judges only services of live jobs. Candidates are the live
sub-jobs (PostgreSQL is the record) whose advisor bids with trials open; a stopped or finished job stops
bidding and is dropped at once, so its share goes back to the others at the next free worker. The loop's state
(how long each user has waited, what the floor owes) lives here and is saved in Redis after every pass; a
restarted admin goes on from it (:mod:`admin.services.pool_memory`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from sqlalchemy import select

from admin.services import pool_memory
from admin.services.orchestration import PROJECT_ROOT, pool_worker_specs
from admin.services.restarts import ALIVE
from admin.state import AdminState
from easel.allocation import Allocator, Candidate
from easel.db.enums import ServiceKind
from easel.db.models import Service, SubTrainJob, TrainJob
from easel.db.session import session_scope
from easel.jobs import lifecycle
from easel.launcher import ServiceSpec
from easel.pool import Assignment, PoolChannel
from easel.redis_client import make_redis

log = logging.getLogger("admin.train_pool")

RECENT = 100  # assignments kept for the API's recent shares
WORKER_CHECK_S = 1.0  # how often the pool's services are checked (allocation runs every ``interval_s``)


class TrainPool:
    def __init__(self, state: AdminState, interval_s: float = 0.25) -> None:
        self.state = state
        self.size = state.settings.train_pool_workers
        self.interval_s = interval_s
        self.allocator = Allocator(state.settings.train_pool_policy, workers=max(1, self.size))
        self.channel = PoolChannel(make_redis(state.settings, decode_responses=True))
        self.by_job: Counter[str] = Counter()
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self._relaunches: dict[str, tuple[int, float]] = {}  # slot -> (relaunches, when the last was made)
        # sub-job -> when this pool assigned it workers (UNIX s), kept until a newer bid has counted them
        self._assigned_at: dict[str, list[float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="train-pool", daemon=True)
        try:
            if pool_memory.restore(self.allocator, self.by_job, self.recent, self.channel.saved_allocator()):
                log.info("train pool: the allocation goes on from the state saved before (%d assignments)",
                         self.allocator.assignments)
        except (redis.RedisError, ValueError):  # unreachable or unreadable: the floor starts counting afresh
            log.exception("could not read the pool allocation saved before; starting afresh")

    def start(self) -> None:
        # The pool's jobs' advisors bid for its workers: their parent imports while the workers come up.
        self.state.launcher.warm_up(ServiceKind.ADVISOR, PROJECT_ROOT)
        self.keep_workers()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        with session_scope(self.state.sessions) as session:
            live = session.scalars(select(Service.id).where(Service.name.in_(self._slots()),
                                                            Service.status.in_(ALIVE))).all()
        for service_id in live:
            try:
                self.state.launcher.stop(service_id)
            except Exception:  # noqa: BLE001 - keep stopping the others; the row shows what happened
                log.exception("could not stop pool worker %s", service_id)
        self.channel.client.close()

    def _run(self) -> None:
        checked = time.monotonic()
        while not self._stop.is_set():
            try:
                # A published bid or a freed worker wakes the pass at once (a worker idles no poll interval);
                # without either, it runs every ``interval_s`` all the same.
                self.channel.wait_for_nudge(self.interval_s)
                if self._stop.is_set():
                    break
                if time.monotonic() - checked >= WORKER_CHECK_S:
                    checked = time.monotonic()
                    self.keep_workers()
                self.tick()
            except Exception:  # noqa: BLE001 - the loop must survive a bad tick (Redis restarting); logged
                log.exception("train pool tick failed")
                self._stop.wait(self.interval_s)

    # -- the workers ----------------------------------------------------------------------------------------
    def _slots(self) -> list[str]:
        return [spec.name for spec in pool_worker_specs(self.size)]

    def keep_workers(self) -> None:
        """Start every pool slot that has no live service (a dead one again after a backoff: 0 s, 1 s, 2 s, …)."""
        with session_scope(self.state.sessions) as session:
            alive = set(session.scalars(select(Service.name).where(Service.name.in_(self._slots()),
                                                                    Service.status.in_(ALIVE))).all())
        now = time.monotonic()
        for spec in pool_worker_specs(self.size):
            if spec.name in alive:
                continue
            count, last = self._relaunches.get(spec.name, (0, 0.0))
            settings = self.state.settings
            delay = 0.0 if count <= 1 else min(settings.supervisor_backoff_cap_s,
                                               settings.supervisor_backoff_base_s * 2 ** (count - 2))
            if now - last < delay:
                continue
            self._launch(spec)
            self._relaunches[spec.name] = (count + 1, now)

    def _launch(self, spec: ServiceSpec) -> None:
        try:
            started = self.state.launcher.start(spec)
            log.info("pool worker %s started as %s", spec.name, started.id)
        except Exception:  # noqa: BLE001 - tried again after the backoff
            log.exception("could not start pool worker %s", spec.name)

    # -- allocating ---------------------------------------------------------------------------------------
    def tick(self) -> int:
        """Assign every free live worker the next unit; publish the allocation. Returns the assignments made."""
        live = self.channel.live_workers()
        busy = self.channel.busy()
        free = [worker for worker in live if worker not in busy]
        made = 0
        if free:
            candidates, room = self._candidates(busy)
            held = 0  # free workers held in this pass for users whose advisor is starting (regret_rate)
            for worker in free:
                offered = [c for c in candidates if room[c.sub_train_job_id] > 0 or not c.ready]
                choice = self.allocator.choose(offered, now=time.monotonic(), held=held, worker=worker)
                if choice is None:
                    if not any(c.ready for c in offered):  # nothing to do
                        break
                    held += 1  # this one waits for a starting user's first bid; the next free one may still work
                    continue
                chosen = choice.candidate
                room[chosen.sub_train_job_id] -= 1
                candidates = [replace(c, running=c.running + 1) if c is chosen else c for c in candidates]
                rate = choice.rate if choice.rate is not None else (
                    None if choice.reason in ("fifo", "round robin") or math.isinf(chosen.rate) else chosen.rate)
                assignment = Assignment(chosen.sub_train_job_id, chosen.train_job_id, chosen.user_id, choice.reason,
                                        rate, time.time())
                self.channel.assign(worker, assignment)
                busy[worker] = assignment
                self._assigned_at.setdefault(chosen.sub_train_job_id, []).append(assignment.at)
                self.by_job[chosen.train_job_id] += 1
                self.recent.append({"user_id": chosen.user_id, "train_job_id": chosen.train_job_id,
                                    "sub_train_job_id": chosen.sub_train_job_id, "at": assignment.at,
                                    "reason": choice.reason, "rate": rate, "waited": choice.waited})
                made += 1
        self.allocator.turned.intersection_update(free)  # a worker gone or busy starts a new free spell later
        self.channel.publish_allocation(self.snapshot(live, busy))
        if free:  # the allocator may have moved on (waits, claims): remembered for a restarted admin
            self.channel.save_allocator(pool_memory.saved_state(self.allocator, self.by_job, self.recent))
        return made

    def _candidates(self, busy: dict[str, Assignment]) -> tuple[list[Candidate], Counter[str]]:
        """Live sub-jobs bidding with open trials, and how many more workers each can take now; and, not ready,
        live sub-jobs created within ``train_pool_start_wait_s`` whose advisor has not bid yet (``regret_rate``
        may hold a worker for them)."""
        bids = self.channel.bids()
        if not bids and self.allocator.policy != "regret_rate":
            return [], Counter()
        since = datetime.now(UTC) - timedelta(seconds=self.state.settings.train_pool_start_wait_s)
        with session_scope(self.state.sessions) as session:
            rows = session.execute(
                select(SubTrainJob.id, TrainJob.id, TrainJob.owner_id, TrainJob.created_at)
                .join(TrainJob, TrainJob.id == SubTrainJob.train_job_id)
                .where(SubTrainJob.id.in_(list(bids)), SubTrainJob.status.in_(lifecycle.LIVE_JOB))
            ).all()
            starting = session.execute(
                select(SubTrainJob.id, TrainJob.id, TrainJob.owner_id, TrainJob.created_at)
                .join(TrainJob, TrainJob.id == SubTrainJob.train_job_id)
                .where(SubTrainJob.id.not_in(list(bids)), SubTrainJob.status.in_(lifecycle.LIVE_JOB),
                       SubTrainJob.created_at >= since)
            ).all() if self.allocator.policy == "regret_rate" else []
        room: Counter[str] = Counter()
        candidates = [Candidate(sub_id, job_id, owner_id, created_at.replace(tzinfo=UTC).timestamp(), ready=False)
                      for sub_id, job_id, owner_id, created_at in starting]
        self._assigned_at = {sub: [at for at in times if at >= bids[sub].at]
                             for sub, times in self._assigned_at.items() if sub in bids}
        for sub_id, job_id, owner_id, created_at in rows:
            bid = bids[sub_id]
            # Workers assigned after the bid was published have not been counted in it yet — also those done
            # since (the pass runs the moment a worker frees, often before its advisor has bid again); the busy
            # ones for assignments an earlier admin made.
            unseen = max(len(self._assigned_at.get(sub_id, [])),
                         sum(1 for a in busy.values() if a.sub_train_job_id == sub_id and a.at >= bid.at))
            room[sub_id] = bid.open - unseen
            if room[sub_id] > 0:
                # trials whose result its bid does not reflect: running since before it, and given out after it
                running = unseen + sum(1 for a in busy.values() if a.sub_train_job_id == sub_id and a.at < bid.at)
                candidates.append(Candidate(sub_id, job_id, owner_id, created_at.replace(tzinfo=UTC).timestamp(),
                                            bid.gain, bid.cost_s, bid.regret, bid.mean, bid.std, bid.best,
                                            bid.observed, running))
        return candidates, room

    def snapshot(self, live: list[str], busy: dict[str, Assignment]) -> dict[str, Any]:
        """The allocation as the API shows it: the workers, who holds them and why, and each user's shares."""
        recent = Counter(item["user_id"] for item in self.recent)
        users = sorted(set(self.allocator.by_user) | set(self.allocator.waits) | {a.user_id for a in busy.values()})
        return {
            "policy": self.allocator.policy, "size": self.size, "live_workers": len(live),
            "assignments": self.allocator.assignments,
            "workers": [{"worker": worker, **asdict(busy[worker])} if worker in busy else {"worker": worker}
                        for worker in live],
            "users": [{"user_id": user, "workers_now": sum(1 for a in busy.values() if a.user_id == user),
                       "assignments": self.allocator.by_user[user], "floor_assignments": self.allocator.floors[user],
                       "recent_share": recent[user] / len(self.recent) if self.recent else 0.0,
                       "waiting": user in self.allocator.waits, "waited": self.allocator.waits.get(user),
                       "owed_s": self.allocator.owed_s.get(user),
                       "last_reason": next((i["reason"] for i in reversed(self.recent) if i["user_id"] == user), None),
                       "last_rate": next((i["rate"] for i in reversed(self.recent) if i["user_id"] == user), None)}
                      for user in users],
            "jobs": dict(self.by_job),
            "updated_at": datetime.now(UTC).isoformat(),
        }


__all__ = ["TrainPool"]
