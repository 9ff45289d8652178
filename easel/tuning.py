"""The Redis protocol between one sub-train-job's advisor and its train workers.

PostgreSQL is the record of every trial; Redis is only the fast channel, so everything here can be lost
and rebuilt (an advisor that restarts re-reads the trials table). All keys of a sub-train-job live under
``easel:stj:<sub_train_job_id>``:

=========================  ======  ==============================================================
key                        type    meaning
=========================  ======  ==============================================================
``…:workers``              hash    worker id → JSON {service_id, pid, since}: workers announce themselves
``…:proposals``            list    JSON proposals {trial_id, no, knobs, attempt}; advisor LPUSH,
                                   workers BRPOP (a blocking read: no polling)
``…:control``              list    "stop" tokens, one per worker, pushed when the sub-job ends;
                                   workers BRPOP it together with ``proposals`` (control first)
``…:stopped``              string  set once the sub-job ends, for workers that join afterwards
``…:lease:<trial_id>``     string  the worker holding a trial, with a TTL of ``lease_s``; the worker
                                   renews it by heartbeat; an expired lease means the worker died
``…:events``               stream  worker → advisor: ``worker_up``, ``trial_started``, ``epoch``,
                                   ``trial_done``, ``trial_errored``, ``worker_down``; the advisor
                                   reads it with XREAD BLOCK
``…:units:<worker>``       list    MOP mode: units placed on that worker (proposals with a ``unit``);
                                   the worker BRPOPs it with ``control`` and ``proposals``
``…:shards``               hash    MOP mode: shard number → samples in it (set once by the advisor)
``…:shard:<k>``            string  MOP mode: the worker that owns shard k, with a TTL of ``lease_s``
                                   renewed by the worker for its whole life
``…:curve:<epoch>``        list    validation scores of the sub-job's trials at that epoch, for the
                                   job's pruner (:mod:`easel.pruning`: median rule, ASHA)
=========================  ======  ==============================================================

In MOP mode (model hopper parallelism, the job's ``MOP`` budget) the training set is cut into one shard
per worker; each worker owns a shard and reads only it. The advisor places one unit (one pass over one shard)
of a trial at a time on the worker owning a shard the trial has not visited in its current epoch; the trial
stays RUNNING between units and hops to another worker for its next unit (checkpoint → hop → resume).

With the promoting ASHA (budget ``PRUNER`` ``"asha_promote"``, :mod:`advisor.promoting`) a proposal carries
``until_epoch``: the worker trains the trial up to that epoch (a rung), writes the epoch's validation score
into the row's ``progress.rung_scores`` and pauses it (still RUNNING, ``progress.paused_at_epoch`` set, lease
released, event ``trial_paused``). The advisor later proposes the paused trial again to resume it from its
checkpoint up to the next rung, or ends it TERMINATED (pruned) when the budget ends.

A proposal whose lease expires is re-issued once (``attempt`` 2); if that lease expires too, the trial is
ERRORED with the reason. A worker writes its result to the trial row only while the row's ``attempts``
still equals its proposal's ``attempt``, so a late answer from a worker presumed dead is ignored.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import redis

from easel.pruning import MedianPruner

PREFIX = "easel:stj"
STOP = "stop"


def shard_blob_key(sub_train_job_id: str, shard: int) -> str:
    """Where MOP mode keeps shard ``shard`` of a sub-job's training set (an ``.npz``) in the blob store."""
    return f"shards/{sub_train_job_id}/{shard}.npz"


@dataclass(frozen=True)
class Proposal:
    trial_id: str
    no: int
    knobs: dict[str, Any]
    attempt: int = 1
    unit: int | None = None  # MOP mode: run only this unit (index from 0), on the worker's shard
    shard: int | None = None
    until_epoch: int | None = None  # promoting ASHA: train up to this epoch (a rung), then pause there

    def encode(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def decode(cls, raw: str | bytes) -> Proposal:
        data = json.loads(raw)
        return cls(data["trial_id"], int(data["no"]), dict(data["knobs"]), int(data.get("attempt", 1)),
                   data.get("unit"), data.get("shard"), data.get("until_epoch"))


class TuningChannel:
    """Typed access to one sub-train-job's keys. ``client`` must use ``decode_responses=True``."""

    def __init__(self, client: redis.Redis, sub_train_job_id: str, lease_s: float = 15.0) -> None:
        self.client = client
        self.sub_train_job_id = sub_train_job_id
        self.lease_s = lease_s
        self.base = f"{PREFIX}:{sub_train_job_id}"

    def key(self, *parts: str) -> str:
        return ":".join((self.base, *parts))

    # -- workers -----------------------------------------------------------------------------------
    def announce(self, worker_id: str, info: dict[str, Any]) -> None:
        self.client.hset(self.key("workers"), worker_id, json.dumps(info))
        self.emit("worker_up", worker=worker_id)

    def retire(self, worker_id: str) -> None:
        self.client.hdel(self.key("workers"), worker_id)
        self.emit("worker_down", worker=worker_id)

    def workers(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self.client.hgetall(self.key("workers")).items()}

    # -- proposals ---------------------------------------------------------------------------------
    def propose(self, proposal: Proposal) -> None:
        self.client.lpush(self.key("proposals"), proposal.encode())

    def queued(self) -> list[Proposal]:
        return [Proposal.decode(raw) for raw in self.client.lrange(self.key("proposals"), 0, -1)]

    def clear_queue(self) -> None:
        self.client.delete(self.key("proposals"))

    def take(self, timeout_s: float, worker_id: str | None = None) -> Proposal | str | None:
        """Block until a proposal (or, with ``worker_id``, a unit placed on that worker) or a stop token
        arrives; None on timeout. Returns ``STOP`` to stop."""
        if self.client.exists(self.key("stopped")):
            return STOP
        sources = [self.key("control"), *([self.key("units", worker_id)] if worker_id else []), self.key("proposals")]
        item = self.client.brpop(sources, timeout=timeout_s)
        if item is None:
            return None
        source, raw = item
        return STOP if source == self.key("control") else Proposal.decode(raw)

    # -- MOP mode: shards and units ------------------------------------------------------------------
    def set_shards(self, sizes: list[int]) -> None:
        self.client.hset(self.key("shards"), mapping={str(k): size for k, size in enumerate(sizes)})

    def shard_sizes(self) -> list[int]:
        raw = self.client.hgetall(self.key("shards"))
        return [int(raw[str(k)]) for k in range(len(raw))]

    def claim_shard(self, worker_id: str) -> int | None:
        """Own the first shard nobody owns (a dead owner's lapses after ``lease_s``); None if none is free."""
        for k in range(len(self.shard_sizes())):
            if self.client.set(self.key("shard", str(k)), worker_id, nx=True, px=int(self.lease_s * 1000)):
                return k
        return None

    def renew_shard(self, shard: int, worker_id: str) -> bool:
        """Keep owning ``shard``; False once another worker owns it. A lease that lapsed while its owner was
        stalled (a busy machine) and that nobody took meanwhile is taken again: the owner is alive, and moving
        to another shard would break "one shard per worker" for nothing."""
        key = self.key("shard", str(shard))
        owner = self.client.get(key)
        if owner is None:
            return bool(self.client.set(key, worker_id, nx=True, px=int(self.lease_s * 1000)))
        if owner != worker_id:
            return False
        return bool(self.client.pexpire(key, int(self.lease_s * 1000)))

    def release_shard(self, shard: int, worker_id: str) -> None:
        if self.client.get(self.key("shard", str(shard))) == worker_id:
            self.client.delete(self.key("shard", str(shard)))

    def shard_owners(self) -> dict[int, str]:
        """Shard → the worker owning it now (unowned shards are left out)."""
        count = len(self.shard_sizes())
        owners = self.client.mget([self.key("shard", str(k)) for k in range(count)]) if count else []
        return {k: owner for k, owner in enumerate(owners) if owner}

    def place_unit(self, worker_id: str, proposal: Proposal) -> None:
        self.client.lpush(self.key("units", worker_id), proposal.encode())

    def placed_units(self, worker_id: str) -> list[Proposal]:
        return [Proposal.decode(raw) for raw in self.client.lrange(self.key("units", worker_id), 0, -1)]

    def clear_units(self, worker_id: str) -> None:
        self.client.delete(self.key("units", worker_id))

    def stop_workers(self) -> None:
        self.client.set(self.key("stopped"), "1")
        count = max(1, len(self.workers()))
        self.client.lpush(self.key("control"), *([STOP] * count))

    # -- leases ------------------------------------------------------------------------------------
    def acquire_lease(self, trial_id: str, worker_id: str) -> bool:
        return bool(self.client.set(self.key("lease", trial_id), worker_id, nx=True, px=int(self.lease_s * 1000)))

    def renew_lease(self, trial_id: str, worker_id: str) -> bool:
        """Extend the lease if this worker still holds it."""
        key = self.key("lease", trial_id)
        if self.client.get(key) != worker_id:
            return False
        return bool(self.client.pexpire(key, int(self.lease_s * 1000)))

    def release_lease(self, trial_id: str) -> None:
        self.client.delete(self.key("lease", trial_id))

    def lease_holder(self, trial_id: str) -> str | None:
        return self.client.get(self.key("lease", trial_id))

    # -- events ------------------------------------------------------------------------------------
    def emit(self, event: str, **fields: Any) -> None:
        payload = {k: json.dumps(v) for k, v in fields.items()}
        self.client.xadd(self.key("events"), {"type": event, **payload}, maxlen=100_000, approximate=True)

    def read_events(self, last_id: str, block_s: float, count: int = 100) -> list[tuple[str, dict[str, Any]]]:
        """Events after ``last_id`` (``"0"`` = from the start), waiting up to ``block_s`` for the first."""
        reply = self.client.xread({self.key("events"): last_id}, count=count, block=int(block_s * 1000))
        events = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                decoded = {k: (v if k == "type" else json.loads(v)) for k, v in fields.items()}
                events.append((entry_id, decoded))
        return events

    # -- early stopping ----------------------------------------------------------------------------
    def record_epoch(self, epoch: int, score: float) -> None:
        self.client.rpush(self.key("curve", str(epoch)), repr(float(score)))

    def scores_at(self, epoch: int) -> list[float]:
        """Every score recorded at ``epoch`` so far, in the order they were recorded."""
        return [float(v) for v in self.client.lrange(self.key("curve", str(epoch)), 0, -1)]

    def should_stop_early(self, epoch: int, score: float, min_trials: int = 3) -> bool:
        """Median rule: stop when this trial's score at ``epoch`` is below the median of the sub-job's
        other trials at the same epoch (only once at least ``min_trials`` have reported there)."""
        return MedianPruner(min_trials).should_prune(epoch, score, self.scores_at(epoch))

    def reset(self) -> None:
        """Forget the whole channel (tests and finished sub-jobs)."""
        for key in self.client.scan_iter(f"{self.base}:*"):
            self.client.delete(key)
