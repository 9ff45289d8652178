"""The Redis protocol of the shared train-worker pool (``EASEL_TRAIN_POOL_WORKERS`` > 0).

Generic train workers wait for an assignment; admin's allocator (:mod:`admin.services.train_pool`, policy in
:mod:`easel.allocation`) gives each free one the next sub-train-job; the worker then takes one proposal from
that sub-job's own channel (:mod:`easel.tuning`: same proposals, leases and events as per-job workers), runs
it, and is free again. Each sub-job keeps its own advisor, which publishes what the allocator scores it by.
Like the tuning channel, everything here is fast state that can be lost: workers announce themselves again,
advisors republish every step. Keys under ``easel:pool``:

=========================  ======  ==============================================================
key                        type    meaning
=========================  ======  ==============================================================
``…:workers``              hash    worker id → JSON {service_id, pid, since}
``…:alive:<worker>``       string  set with a TTL of ``lease_s``, renewed by the worker: gone = dead
``…:assign:<worker>``      list    JSON assignments {sub_train_job_id, train_job_id, user_id, reason, …};
                                   the allocator LPUSHes, the worker BRPOPs (a blocking read)
``…:busy``                 hash    worker → its current assignment (set with the push, in one
                                   transaction; the worker deletes it when done: then it is free)
``…:bids``                 hash    sub-train-job → JSON {open, gain, cost_s, best, observed, regret,
                                   mean, std}
                                   published by its advisor each step; deleted when it ends
``…:wake``                 list    at most one token: a bid was published or a worker came free; the
                                   allocator's pass BRPOPs it, so it runs at once rather than at its next poll
``…:allocation``           string  JSON snapshot of the allocator's state, for the API
``…:allocator``            string  JSON of what the allocator remembers (waits, the floor's counts), so a
                                   restarted admin goes on where it stopped (:mod:`admin.services.pool_memory`)
=========================  ======  ==============================================================
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import redis

PREFIX = "easel:pool"


@dataclass(frozen=True)
class Bid:
    """What an advisor publishes about its sub-job: ``open`` trials it can still hand out (queued ones and
    those its budget still allows), the EI of its next proposal over its best (None while cold), the mean
    seconds of its finished trials (None before the first), its optimistic current regret (UCB − best at the
    next proposal; None while cold, or from an advisor that does not publish it) and its belief about the next
    proposal's score (``mean``, ``std``; None while it has none)."""

    open: int
    gain: float | None
    cost_s: float | None
    best: float | None
    observed: int
    at: float = 0.0  # when it was published (UNIX seconds): assignments after it are not counted in ``open``
    regret: float | None = None
    mean: float | None = None
    std: float | None = None

    def encode(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def decode(cls, raw: str | bytes) -> Bid:
        data = json.loads(raw)
        return cls(int(data["open"]), data.get("gain"), data.get("cost_s"), data.get("best"),
                   int(data.get("observed", 0)), float(data.get("at", 0.0)), data.get("regret"), data.get("mean"),
                   data.get("std"))


@dataclass(frozen=True)
class Assignment:
    sub_train_job_id: str
    train_job_id: str
    user_id: str
    reason: str
    rate: float | None = None  # the gain per second it was chosen at (None: cold, or not cost-aware)
    at: float = 0.0

    def encode(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def decode(cls, raw: str | bytes) -> Assignment:
        data = json.loads(raw)
        return cls(data["sub_train_job_id"], data["train_job_id"], data["user_id"], data["reason"],
                   data.get("rate"), float(data.get("at", 0.0)))


class PoolChannel:
    """Typed access to the pool's keys. ``client`` must use ``decode_responses=True``."""

    def __init__(self, client: redis.Redis, lease_s: float = 15.0) -> None:
        self.client = client
        self.lease_s = lease_s

    @staticmethod
    def key(*parts: str) -> str:
        return ":".join((PREFIX, *parts))

    # -- workers ---------------------------------------------------------------------------------------
    def announce(self, worker_id: str, info: dict[str, Any]) -> None:
        # One transaction: admin's liveness check (:meth:`live_workers`) must never see the entry without its
        # liveness key, or it retires a worker that has just come up.
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.key("workers"), worker_id, json.dumps(info))
        pipe.set(self.key("alive", worker_id), "1", px=int(self.lease_s * 1000))
        pipe.execute()

    def renew(self, worker_id: str, info: dict[str, Any] | None = None) -> None:
        """Extend the worker's liveness; with ``info``, also announce it again if it was retired meanwhile (its
        key lapsed while it was stalled, or Redis lost it): else a live worker would stay out of the pool for good."""
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.key("alive", worker_id), "1", px=int(self.lease_s * 1000))
        if info is not None:
            pipe.hsetnx(self.key("workers"), worker_id, json.dumps(info))
        pipe.execute()

    def retire(self, worker_id: str) -> None:
        pipe = self.client.pipeline()
        pipe.hdel(self.key("workers"), worker_id)
        pipe.hdel(self.key("busy"), worker_id)
        pipe.delete(self.key("alive", worker_id), self.key("assign", worker_id))
        pipe.execute()

    def live_workers(self) -> list[str]:
        """Announced workers whose liveness key has not lapsed; the dead ones are forgotten here."""
        workers = sorted(self.client.hkeys(self.key("workers")))
        alive = self.client.mget([self.key("alive", w) for w in workers]) if workers else []
        dead = [w for w, flag in zip(workers, alive, strict=True) if flag is None]
        for worker in dead:
            self.retire(worker)
        return [w for w, flag in zip(workers, alive, strict=True) if flag is not None]

    # -- assignments -----------------------------------------------------------------------------------
    def assign(self, worker_id: str, assignment: Assignment) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.key("busy"), worker_id, assignment.encode())
        pipe.lpush(self.key("assign", worker_id), assignment.encode())
        pipe.execute()

    def next_assignment(self, worker_id: str, timeout_s: float) -> Assignment | None:
        item = self.client.brpop([self.key("assign", worker_id)], timeout=timeout_s)
        return None if item is None else Assignment.decode(item[1])

    def done(self, worker_id: str) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(self.key("busy"), worker_id)
        self._nudge(pipe)
        pipe.execute()

    def busy(self) -> dict[str, Assignment]:
        return {w: Assignment.decode(raw) for w, raw in self.client.hgetall(self.key("busy")).items()}

    # -- bids --------------------------------------------------------------------------------------------
    def publish_bid(self, sub_train_job_id: str, bid: Bid) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.key("bids"), sub_train_job_id, replace(bid, at=time.time()).encode())
        self._nudge(pipe)
        pipe.execute()

    # -- waking the allocator ------------------------------------------------------------------------------
    def _nudge(self, pipe: redis.client.Pipeline) -> None:
        pipe.lpush(self.key("wake"), "1")
        pipe.ltrim(self.key("wake"), 0, 0)  # one token is enough: a pass sees every change made before it

    def wait_for_nudge(self, timeout_s: float) -> bool:
        """Block until a bid is published or a worker comes free (True), or ``timeout_s`` passes (False)."""
        return self.client.brpop([self.key("wake")], timeout=timeout_s) is not None

    def withdraw(self, sub_train_job_id: str) -> None:
        self.client.hdel(self.key("bids"), sub_train_job_id)

    def bids(self) -> dict[str, Bid]:
        return {sub: Bid.decode(raw) for sub, raw in self.client.hgetall(self.key("bids")).items()}

    # -- the allocator's snapshot -----------------------------------------------------------------------
    def publish_allocation(self, snapshot: dict[str, Any]) -> None:
        self.client.set(self.key("allocation"), json.dumps({**snapshot, "at": time.time()}))

    def allocation(self) -> dict[str, Any] | None:
        raw = self.client.get(self.key("allocation"))
        return None if raw is None else json.loads(raw)

    # -- the allocator's memory, across admin restarts ---------------------------------------------------
    def save_allocator(self, state: dict[str, Any]) -> None:
        self.client.set(self.key("allocator"), json.dumps({**state, "saved_at": time.time()}))

    def saved_allocator(self) -> dict[str, Any] | None:
        raw = self.client.get(self.key("allocator"))
        return None if raw is None else json.loads(raw)


__all__ = ["Assignment", "Bid", "PoolChannel"]
