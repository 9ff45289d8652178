"""The serving contract: where an inference job's requests and results travel (their bytes: :mod:`easel.serving_wire`).

The predictor and the inference workers are separate services that never import each other; this module is
the contract between them (as :mod:`easel.tuning` is between the advisor and the train workers).

Requests — Kafka topic ``easel.inference.<job id>.requests`` with one partition per inference worker (the
workers form one consumer group, ``easel.inference.<job id>.workers``). Each message carries consecutive
mini-batches of one task's share on one partition (up to ``EASEL_SERVING_MESSAGE_KB``; a worker cuts them at
``S_mb`` again): a small header and the tensor's raw bytes (the format is :mod:`easel.serving_wire`'s). The
partition is chosen explicitly: a task's mini-batches are dealt round-robin across the partitions
(SINGA-Easy §3.2, :func:`split_mini_batches`), so every worker plans its own share.

Results — Redis stream ``easel:inference:<job id>:results`` (one per job, read by the job's predictor with
one blocking ``XREAD``): one entry per run of served mini-batches of one width (a worker gathers a share's answers,
up to 16 mini-batches or 20 ms) or batch of drops, and ``ready`` entries when a
worker gets its partitions (format: :mod:`easel.serving_wire`).

Dead letters — Redis stream ``easel:inference:<job id>:dead_letters`` (capped): request messages a worker could
not read (a corrupt header), with why, where they were and their key; their instances are answered dropped.

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
import re
from collections.abc import Sequence
from typing import Any

import msgpack

SERVED = "served"
DROPPED = "dropped"
STATUSES = (SERVED, DROPPED)
STREAM_MAXLEN = 10_000  # results entries kept (approximately) per job; each holds up to 16 mini-batches' answers
DEAD_LETTERS_MAXLEN = 1_000  # dead letters kept (approximately) per job, for an operator to inspect


def requests_topic(job_id: str, generation: int = 0) -> str:
    """The job's requests topic of ``generation`` (:mod:`easel.request_topics` rotates them): 0 is the plain
    name, later ones end ``.g<N>``."""
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        raise ValueError(f"generation must be a whole number >= 0, got {generation!r}")
    base = f"easel.inference.{job_id}.requests"
    return base if generation == 0 else f"{base}.g{generation}"


def requests_pattern(job_id: str) -> str:
    """A regular expression matching every generation of the job's requests topic (workers subscribe to it)."""
    return rf"^easel\.inference\.{re.escape(job_id)}\.requests(\.g[1-9][0-9]*)?$"


def requests_generation(job_id: str, topic: str) -> int | None:
    """Which generation of the job's requests topic ``topic`` is; None when it is not one."""
    match = re.match(requests_pattern(job_id), topic)
    if match is None:
        return None
    return int(match.group(1)[2:]) if match.group(1) else 0


def consumer_group(job_id: str, generation: int = 0) -> str:
    """The workers' consumer group for ``generation`` of the requests topic: one topic per group (the local broker's
    group coordinator loses assignments of groups that read several topics)."""
    base = f"easel.inference.{job_id}.workers"
    return base if generation == 0 else f"{base}.g{generation}"


def results_stream(job_id: str) -> str:
    return f"easel:inference:{job_id}:results"


def workers_key(job_id: str) -> str:
    return f"easel:inference:{job_id}:workers"


def dead_letters_stream(job_id: str) -> str:
    return f"easel:inference:{job_id}:dead_letters"


def standbys_key(job_id: str) -> str:
    """Redis hash: standby worker's service id → JSON ``{"pid", "seen_at"}`` while it waits, loaded and calibrated."""
    return f"easel:inference:{job_id}:standbys"


def promote_key(job_id: str, service_id: str) -> str:
    """Redis list a standby worker waits on (BLPOP); the supervisor pushes the slot it takes over."""
    return f"easel:inference:{job_id}:promote:{service_id}"


def generation_key(job_id: str) -> str:
    """Redis string: the requests topic generation the predictor sends to (:mod:`easel.request_topics`). Workers
    read it beside the old one until their share of the old one is answered, and say the oldest they read in their
    registry record (``generation``); an old generation is deleted once no live worker reads it."""
    return f"easel:inference:{job_id}:generation"


def next_generation_key(job_id: str) -> str:
    """Redis string: the requests topic generation the predictor has made ahead and sends to next. Workers open
    its consumer as soon as it exists and read it beside the current one, so the first task sent there after a
    rotation is read at once, whatever backlog the old generation still holds."""
    return f"easel:inference:{job_id}:generation:next"


def calibration_key(job_id: str) -> str:
    """Redis hash: ``calibration_field`` → JSON mini-batch times per slice rate, measured by the job's first
    worker; a relaunched worker or a standby plans with them instead of calibrating again."""
    return f"easel:inference:{job_id}:calibration"


def calibration_field(model_id: str, batch_size: int) -> str:
    """The served model (its version id, or trial id) and ``S_mb``: a calibration holds for both alone."""
    return f"{model_id}:{batch_size}"


def calibrated_fastest_batch_s(fields: dict[Any, Any], batch_size: int) -> float | None:
    """The quickest mini-batch the job's workers measured on their own machine (``HGETALL`` of
    :func:`calibration_key`) at ``S_mb`` = ``batch_size`` — the slowest model's during a rolling update; None when
    no worker has calibrated yet. The profile stored with a model was measured where it trained, which may be a
    different (or busier) machine: this is what admission control should count work in."""
    fastest = []
    for field, raw in fields.items():
        name = field.decode() if isinstance(field, bytes) else str(field)
        if not name.endswith(f":{batch_size}"):
            continue
        try:
            times = [float(t) for t in json.loads(raw)]
        except (TypeError, ValueError):
            continue
        if times and all(0 < t < float("inf") for t in times):
            fastest.append(min(times))
    return max(fastest) if fastest else None


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
    return [results_stream(job_id), workers_key(job_id), dead_letters_stream(job_id), standbys_key(job_id),
            calibration_key(job_id), generation_key(job_id), next_generation_key(job_id)]


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


def deal_mini_batches(n_instances: int, partitions: Sequence[int], batch_size: int,
                      offset: int = 0, per_message: int = 1) -> list[tuple[int, int, int, int]]:
    """The messages of a task: ``(partition, start, stop, share)`` per message, in sending order.

    Each partition's share (:func:`split_mini_batches`) is a contiguous index range, cut into mini-batches
    of ``batch_size`` from its start, so the one partial mini-batch is the last of its share; ``share`` is
    the share's instance count (what a worker waits for). A message carries up to ``per_message`` consecutive
    mini-batches of one share (a worker cuts it at ``batch_size`` again): at saturation the broker's and both
    clients' cost is per message, so fewer, larger messages leave more of the CPU to the model.
    """
    if isinstance(per_message, bool) or not isinstance(per_message, int) or per_message < 1:
        raise ValueError(f"per_message must be a whole number >= 1, got {per_message!r}")
    sizes = split_mini_batches(n_instances, len(partitions), batch_size, offset)
    step = batch_size * per_message
    messages = []
    index = 0
    for part, size in zip(partitions, sizes, strict=True):
        for start in range(index, index + size, step):
            messages.append((part, start, min(start + step, index + size), size))
        index += size
    return messages


def mini_batches_per_message(batch_size: int, instance_bytes: int, message_bytes: int) -> int:
    """How many mini-batches of ``instance_bytes`` per instance fit in ``message_bytes`` (at least one; 0 bytes:
    one mini-batch per message)."""
    for name, value, least in (("batch_size", batch_size, 1), ("instance_bytes", instance_bytes, 0),
                               ("message_bytes", message_bytes, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
    if message_bytes == 0 or instance_bytes == 0:
        return 1
    return max(1, message_bytes // (batch_size * instance_bytes))


HEARTBEAT_S = 2.0  # how often a worker refreshes its registry record
LIVE_S = 10.0  # a record older than this belongs to a worker that died without unregistering


def worker_record(pid: int, metrics_port: int | None, partitions: Sequence[int], policy: str, now: float,
                  **extra: Any) -> str:
    """``extra``: what else the worker tells about itself — ``boot`` (UNIX times of its start-up phases:
    ``process``, ``imported``, ``loaded``, ``calibrated``, ``subscribed``) and ``assignments`` (its last few
    ``[time, partitions]``), which the chaos benchmark reads to say where a recovery's seconds went; ``generation``
    (the oldest requests topic generation it reads) and ``reading`` (its partitions in each generation it reads),
    which the predictor's topic rotation waits on."""
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
    "DEAD_LETTERS_MAXLEN", "DROPPED", "HEARTBEAT_S", "LIVE_S", "SERVED", "STANDBY_PREFIX", "STATUSES",
    "STREAM_MAXLEN", "answers_key", "calibrated_fastest_batch_s", "calibration_field", "calibration_key", "consumer_group", "dead_letters_stream", "deal_mini_batches", "decode_answers",
    "encode_answers", "generation_key", "is_standby", "job_keys", "live_workers", "next_generation_key", "promote_key", "requests_generation", "requests_pattern", "requests_topic", "results_stream",
    "split_mini_batches", "standbys_key", "worker_record", "workers_key",
]
