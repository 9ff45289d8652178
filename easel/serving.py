"""The serving wire: where an inference job's requests and results travel, and in what format.

The predictor and the inference workers are separate services that never import each other; this module is
the contract between them (as :mod:`easel.tuning` is between the advisor and the train workers).

Requests — Kafka topic ``easel.inference.<job id>.requests`` with one partition per inference worker (the
workers form one consumer group, ``easel.inference.<job id>.workers``). Each instance of a task is one
message (msgpack map, never pickle)::

    {"task": "9f1c...", "index": 17, "deadline_at": 1718000000.25, "n": 300, "n_part": 150,
     "sent_at": 1718000000.01, "x": <float32 bytes>, "shape": [1, 8, 8]}      # numeric instances
    {... "value": <any msgpack value>}                                       # anything else

``n`` is the task's instance count and ``n_part`` how many of them went to this message's partition, so a
worker knows when it holds its whole share. The message key is ``<task>/<part>``; the partition is chosen
explicitly: a task's mini-batches are dealt round-robin across the partitions (SINGA-Easy §3.2), so every
worker plans its own share.

Results — Redis stream ``easel:inference:<job id>:results`` (one per job, read by the job's predictor with
one blocking ``XREAD``). Each entry has one field ``m``, a msgpack map::

    {"kind": "results", "task": "9f1c...", "worker": "w-1a2b", "at": 1718000000.2,
     "items": [[17, "served", 0.5, [0.01, 0.9, ...]], [18, "dropped", null, null], ...],
     "report": {...},          # present on a worker's last message for its share of the task
     "v": 3,                   # the registered model version that answered (absent: a trial deployed directly)
     "t": [1718000000.05, 1718000000.06, 1718000000.19]}   # served mini-batches: polled, began, done
    {"kind": "ready", "worker": "w-1a2b"}

Why Redis and not a Kafka results topic: a result is worth something only until its task's deadline, so it
needs no durability or replay; what it needs is low latency to one known reader. ``XADD`` returns once the
result is stored (so a worker can commit its Kafka offsets right after), and the predictor's single
``XREAD BLOCK`` wakes as soon as an entry lands (sub-millisecond), with no consumer-group join and no fetch
wait. A result that never arrives costs nothing extra: the predictor answers that instance as dropped at
the deadline.

Warm standbys (``EASEL_SERVING_STANDBY_WORKERS``) — an inference worker started with ``--standby`` loads and
calibrates its model, then waits outside the consumer group: it keeps a record in the hash
``easel:inference:<job id>:standbys`` fresh and blocks on its list ``easel:inference:<job id>:promote:<service
id>``. When a worker dies, the supervisor pushes the dead slot's name there; the standby joins the group and
serves as that worker (a fresh standby is launched behind it).

Answers — Redis key ``easel:inference:<job id>:answers:<task>`` (expires after ``EASEL_FEEDBACK_TTL_S``): the
predictor's answer to one request, kept so that true labels sent later (admin's ``POST .../feedback``) can be
scored: a msgpack list with one ``[status, label, model version]`` per instance.

Worker registry — Redis hash ``easel:inference:<job id>:workers``: worker id → JSON (pid, metrics port,
partitions, policy, ``seen_at``, start-up phase times), written when a worker has its partitions and is ready to
serve, refreshed every ``HEARTBEAT_S`` and removed when it stops; a record not refreshed for ``LIVE_S`` is a dead
worker's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

SERVED = "served"
DROPPED = "dropped"
STATUSES = (SERVED, DROPPED)
STREAM_MAXLEN = 10_000  # results entries kept (approximately) per job; each holds one mini-batch's answers


def requests_topic(job_id: str) -> str:
    return f"easel.inference.{job_id}.requests"


def consumer_group(job_id: str) -> str:
    return f"easel.inference.{job_id}.workers"


def results_stream(job_id: str) -> str:
    return f"easel:inference:{job_id}:results"


def workers_key(job_id: str) -> str:
    return f"easel:inference:{job_id}:workers"


def standbys_key(job_id: str) -> str:
    """Redis hash: standby worker's service id → JSON ``{"pid", "seen_at"}`` while it waits, loaded and calibrated."""
    return f"easel:inference:{job_id}:standbys"


def promote_key(job_id: str, service_id: str) -> str:
    """Redis list a standby worker waits on (BLPOP); the supervisor pushes the slot it takes over."""
    return f"easel:inference:{job_id}:promote:{service_id}"


STANDBY_PREFIX = "standby-"  # the service name of a warm standby inference worker starts so


def is_standby(service_name: str) -> bool:
    return service_name.startswith(STANDBY_PREFIX)


def answers_key(job_id: str, task: str) -> str:
    return f"easel:inference:{job_id}:answers:{task}"


def encode_answers(answers: Sequence[tuple[str, Any, int | None]]) -> bytes:
    """One request's answers: ``(status, predicted label or None, model version or None)`` per instance."""
    return msgpack.packb([list(a) for a in answers], use_bin_type=True)


def decode_answers(raw: bytes) -> list[tuple[str, Any, int | None]]:
    return [(str(s), label, version) for s, label, version in msgpack.unpackb(raw, raw=False)]


def job_keys(job_id: str) -> list[str]:
    """Every Redis key an inference job uses (for clean-up once it has stopped; promotion lists expire)."""
    return [results_stream(job_id), workers_key(job_id), standbys_key(job_id)]


# -- requests ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Request:
    """One instance of a task, as a worker receives it."""

    task: str
    index: int
    deadline_at: float
    n: int
    n_part: int
    sent_at: float
    array: np.ndarray | None  # numeric instances
    value: Any = None  # any other instance

    @property
    def instance(self) -> Any:
        return self.array if self.array is not None else self.value


def encode_request(task: str, index: int, deadline_at: float, n: int, n_part: int, sent_at: float,
                   instance: np.ndarray | Any) -> bytes:
    body: dict[str, Any] = {"task": task, "index": index, "deadline_at": deadline_at, "n": n, "n_part": n_part,
                            "sent_at": sent_at}
    if isinstance(instance, np.ndarray):
        body["x"] = np.ascontiguousarray(instance, dtype="<f4").tobytes()
        body["shape"] = list(instance.shape)
    else:
        body["value"] = instance
    return msgpack.packb(body, use_bin_type=True)


def decode_request(raw: bytes) -> Request:
    body = msgpack.unpackb(raw, raw=False)
    x = body.get("x")
    array = None
    if x is not None:
        array = np.frombuffer(x, dtype="<f4").reshape(body["shape"])
    return Request(str(body["task"]), int(body["index"]), float(body["deadline_at"]), int(body["n"]),
                   int(body["n_part"]), float(body.get("sent_at", 0.0)), array, body.get("value"))


def split_mini_batches(n_instances: int, n_parts: int, batch_size: int, offset: int = 0) -> list[int]:
    """Instances per partition: whole mini-batches dealt round-robin from ``offset``, the partial one last.

    SINGA-Easy §3.2. The one owner of this rule: the predictor deals with it, and ``scheduler.simulate``
    is handed it (``deal=``), since the pure scheduler library may not import the platform.
    """
    for name, value, least in (("n_instances", n_instances, 0), ("n_parts", n_parts, 1), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
    n_mb = -(-n_instances // batch_size)
    base, extra = divmod(n_mb, n_parts)
    mbs = [0] * n_parts
    for j in range(n_parts):
        mbs[(offset + j) % n_parts] = base + (1 if j < extra else 0)
    sizes = [mb * batch_size for mb in mbs]
    short = n_mb * batch_size - n_instances  # the last mini-batch is short by this much
    if short:
        # The partition that received the last dealt mini-batch holds the partial one.
        last = (offset + (extra - 1 if extra else n_parts - 1)) % n_parts
        sizes[last] -= short
    return sizes


# -- results ----------------------------------------------------------------------------------------------
Item = tuple[int, str, float | None, Any]  # (index, status, slice rate, output)


def encode_results(task: str, worker: str, items: Sequence[Item], at: float,
                   report: dict[str, Any] | None = None, timing: Sequence[float] | None = None,
                   version: int | None = None) -> bytes:
    """``timing``: when the worker polled the task, began and finished the mini-batch (wall clock), so the
    predictor can split each answer's latency into stages; ``version``: the model version the worker serves."""
    body: dict[str, Any] = {"kind": "results", "task": task, "worker": worker, "at": at,
                            "items": [list(item) for item in items]}
    if report is not None:
        body["report"] = report
    if timing is not None:
        body["t"] = [float(t) for t in timing]
    if version is not None:
        body["v"] = int(version)
    return msgpack.packb(body, use_bin_type=True)


def encode_ready(worker: str) -> bytes:
    return msgpack.packb({"kind": "ready", "worker": worker}, use_bin_type=True)


def decode_entry(raw: bytes) -> dict[str, Any]:
    return msgpack.unpackb(raw, raw=False)


HEARTBEAT_S = 2.0  # how often a worker refreshes its registry record
LIVE_S = 10.0  # a record older than this belongs to a worker that died without unregistering


def worker_record(pid: int, metrics_port: int | None, partitions: Sequence[int], policy: str, now: float,
                  **extra: Any) -> str:
    """``extra``: what else the worker tells about itself — ``boot`` (UNIX times of its start-up phases:
    ``process``, ``imported``, ``loaded``, ``calibrated``, ``subscribed``) and ``assignments`` (its last few
    ``[time, partitions]``), which the chaos benchmark reads to say where a recovery's seconds went."""
    return json.dumps({"pid": pid, "metrics_port": metrics_port, "partitions": sorted(partitions), "policy": policy,
                       "seen_at": now, **extra})


def live_workers(records: dict[Any, Any], now: float) -> dict[str, dict[str, Any]]:
    """The registry's records (``HGETALL``) of workers seen in the last ``LIVE_S`` seconds."""
    live = {}
    for key, raw in records.items():
        try:
            record = json.loads(raw)
        except (TypeError, ValueError):
            continue
        if now - float(record.get("seen_at", 0.0)) <= LIVE_S:
            live[key.decode() if isinstance(key, bytes) else str(key)] = record
    return live


__all__ = [
    "DROPPED", "HEARTBEAT_S", "LIVE_S", "SERVED", "STANDBY_PREFIX", "STATUSES", "STREAM_MAXLEN", "Item", "Request",
    "answers_key", "consumer_group", "decode_answers", "decode_entry", "decode_request", "encode_answers",
    "encode_ready", "encode_request", "encode_results", "is_standby", "job_keys", "live_workers", "promote_key",
    "requests_topic", "standbys_key",
    "results_stream", "split_mini_batches", "worker_record", "workers_key",
]
