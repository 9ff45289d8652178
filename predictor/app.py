"""The predictor: the HTTP front of one inference job.

``POST /predict`` ``{"instances": [...], "deadline_s": 0.5}``:

1. every instance is checked against the model's input shape (a bad one is a 422 naming its index, before
   anything is queued);
2. the request becomes a task (a fresh task id); its instances are dealt to the requests topic's partitions
   in whole mini-batches (SINGA-Easy §3.2), one Kafka message per mini-batch: a small header (task, index
   range, deadline_at) and the tensor's raw bytes (:mod:`easel.serving_wire`);
3. the answers are gathered from the job's results stream until every instance has one or the deadline
   passes; an instance without an answer by then is answered ``dropped`` — nothing is silently lost. The
   deadline is a timer of its own: a slow or failing send (a broker restart) cannot delay the answer.

Before step 2, admission control (:mod:`predictor.admission`) refuses a task with 429 + Retry-After when the
job's queued work (expected compute seconds) or instances in flight would exceed their bounds, and with 503
``unavailable`` when no inference worker is alive (``/health`` says the same) — a clear error, not a hang.

The response lists, per instance, its prediction (label and probabilities), status (``served`` or
``dropped``), the slice rate used, its latency, the worker and the model version that answered it (per
instance: during a rolling update one request may be answered by both versions), and the task's totals (see
:func:`build_response`); JSON (orjson) by default, msgpack for clients that send ``Accept:
application/msgpack``. Instances come as a list (JSON or msgpack), or — msgpack only, the fast form — as one
tensor ``{"dtype": "<f4", "shape": [N, ...], "data": <bytes>}``.
``GET /health`` tells how many workers are ready; ``GET /metrics`` is Prometheus text.

Every route but ``/health`` needs an API key of this inference job (:mod:`predictor.auth`); admission
control gives each key a fair share of the job's bounds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Literal

import msgpack
import numpy as np
import orjson
import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, Field, ValidationError, field_validator
from sqlalchemy.orm import Session, sessionmaker

from easel.api_errors import (
    Invalid,
    PayloadTooLarge,
    Unavailable,
    describe_validation_errors,
    install_error_handlers,
)
from easel.backoff import Throttle
from easel.blobstore import BlobStore
from easel.db.session import session_scope
from easel.jobs import lifecycle, load_deployment
from easel.kafka_io import ResilientProducer, SendsRecords, make_serving_producer
from easel.request_topics import delete_generations, ensure_generations, ensure_started, generations
from easel.serving import (
    DROPPED,
    SERVED,
    answers_key,
    calibrated_fastest_batch_s,
    calibration_key,
    deal_mini_batches,
    encode_answers,
    generation_key,
    live_workers,
    mini_batches_per_message,
    next_generation_key,
    requests_topic,
    results_stream,
    workers_key,
)
from easel.serving_wire import encode_mini_batch, message_key
from easel.settings import Settings
from predictor import explain as explain_routes
from predictor.admission import Admission
from predictor.auth import CURRENT_KEY, ENTERED, KeyRateLimit, KeyVerifier, PredictorAuth, database_lookup
from predictor.gather import ResultRouter, TaskWaiter
from predictor.instances import InvalidInstance, InvalidTensor, from_tensor, to_batch
from predictor.response import (
    COLUMNS,
    INSTANCES,
    answer_count,
    build_columns,
    kept_answers,
    pack_msgpack,
    predictions_of,
    totals,
)
from predictor.rotation import TopicRotation

log = logging.getLogger("easel.predictor")

# Work up to these sizes runs on the event loop (a thread hop and the GIL hand-offs it brings cost more);
# bigger tasks are checked, sent and answered in a thread, so that the loop stays free for the deadline
# timers of every task in flight (inline, a burst of 2000-instance tasks on a busy machine made answers late).
INLINE_INSTANCES = 256
INLINE_SEND_MESSAGES = 8
MAX_MESSAGE_BYTES = 32 << 20  # the largest mini-batch message the producer sends (the workers fetch up to this)
# Requests topic generations (predictor.rotation): a retired one is deleted this long after the last deadline sent
# to it (and once no worker reads it); the housekeeping loop runs this often; it looks for strays this often.
ROTATION_GRACE_S = 5.0
ROTATION_TICK_S = 1.0
# The predictor sends to the next generation once the workers read every partition of it (they open its consumer
# when it is made and join its group: 2-4 s on the local broker), or at the latest this long after it was made.
ROTATION_LEAD_S = 30.0
STRAYS_EVERY_S = 10.0


@dataclass
class JobInfo:
    """What the predictor needs to know about the deployed trial."""

    job_id: str
    trial_id: str
    n_workers: int
    batch_size: int
    input_shape: tuple[int, ...] | None = None
    classes: list[str] | None = None
    accuracy: dict[float, float] = field(default_factory=dict)
    fastest_batch_s: float | None = None  # the profile's quickest mini-batch (admission control's unit of work)


def load_job_info(sessions: sessionmaker[Session], blobs: BlobStore, job_id: str,
                  batch_size: int | None = None) -> JobInfo:
    deployment = load_deployment(sessions, blobs, job_id)
    if deployment.input_shape is None:
        log.warning("the deployed parameters name no input shape: instances are passed on unchecked")
    times = [t for t in deployment.profile.batch_time_s if t > 0]
    return JobInfo(deployment.job_id, deployment.trial_id, deployment.n_workers,
                   batch_size or deployment.batch_size, deployment.input_shape, deployment.classes,
                   deployment.profile.accuracy_by_rate(), min(times) if times else None)


MSGPACK = "application/msgpack"
MSGPACK_TYPES = (MSGPACK, "application/x-msgpack")
MAX_BODY_BYTES = 512 << 20


class TensorIn(BaseModel):
    """Every instance in one array, sent as its raw little-endian bytes (msgpack bodies only)."""

    dtype: str = Field(description="numpy type string, e.g. <f4 (float32)")
    shape: list[int] = Field(min_length=1, description="[N, *instance shape]")
    data: bytes = Field(description="the array's C-order bytes")


class PredictIn(BaseModel):
    instances: list[Any] | TensorIn = Field(description="the queries: a list (e.g. images as nested lists of "
                                                        "numbers), or one tensor of them (msgpack)")
    deadline_s: float = Field(gt=0, description="seconds from now by which every instance must be answered")
    answers: Literal["instances", "columns"] = Field(
        default=INSTANCES, description="the answer's form: one entry per instance (``predictions``), or one column "
                                       "per field (``columns``: arrays, far cheaper for large tasks; see "
                                       "predictor/response.py)")

    @field_validator("instances")
    @classmethod
    def _not_empty(cls, value: list[Any] | TensorIn) -> list[Any] | TensorIn:
        if isinstance(value, list) and not value:
            raise ValueError("List should have at least 1 item after validation, not 0")
        return value

    def count(self) -> int:
        return len(self.instances) if isinstance(self.instances, list) else self.instances.shape[0]


def _loads_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)  # what orjson refuses but Python reads (NaN, Infinity): 422 by the instance


def parse_body(raw: bytes, binary: bool) -> PredictIn:
    """The request document from JSON or msgpack bytes; a 422 naming what is wrong otherwise."""
    try:
        data = msgpack.unpackb(raw, raw=False) if binary else _loads_json(raw)
    except Exception:  # noqa: BLE001 - any decoding failure is the client's
        raise Invalid(f"the body is not a valid {'msgpack' if binary else 'JSON'} document", code="invalid") from None
    try:
        return PredictIn.model_validate(data)
    except ValidationError as error:
        raise Invalid(describe_validation_errors(list(error.errors()))) from None


class PredictorMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("easel_predictor_requests", "predict requests by HTTP status", ["code"], registry=r)
        self.instances = Counter("easel_predictor_instances", "instances answered, by status", ["status"], registry=r)
        self.seconds = Histogram("easel_predictor_request_seconds", "predict request time",
                                 buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30),
                                 registry=r)
        self.inflight = Gauge("easel_predictor_inflight_tasks", "tasks waiting for answers", registry=r)
        self.late = Gauge("easel_predictor_late_results", "results that came after their task was answered",
                          registry=r)
        self.duplicates = Gauge("easel_predictor_duplicate_results", "redelivered results ignored", registry=r)
        self.stages = Histogram(
            "easel_predictor_stage_seconds", "where a request's time went: auth (key check and rate limit), accept "
            "(arrival at the handler to its mini-batches queued for the broker) and, per served results entry, "
            "to_worker (queue to poll), queued (in the worker), compute, to_predictor (results back: publish, the "
            "worker's hold and encoding, plus results_hop, its XADD to the predictor's read); then respond (last "
            "answer in to the answer built) and encode (the answer's bytes)", ["stage"],
            buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r)
        self.workers_ready = Gauge("easel_predictor_workers_ready", "inference workers registered", registry=r)
        self.queued_work = Gauge("easel_predictor_queued_work_seconds", "expected compute seconds admitted and "
                                 "not yet answered", registry=r)
        self.refused = Counter("easel_predictor_refused", "requests refused by admission control", ["reason"],
                               registry=r)
        self.late_answers = Counter("easel_predictor_late_answers", "answers later than deadline + LATE_MARGIN_S",
                                    registry=r)


class Predictor:
    """The job's producer, results router and the request path; one per process."""

    def __init__(self, settings: Settings, info: JobInfo, sessions: sessionmaker[Session] | None = None,
                 boot: dict[str, float] | None = None, service_id: str | None = None) -> None:
        self.settings = settings
        self.service_id = service_id  # reported by /health: which launch of the predictor slot answers
        self.boot = {} if boot is None else boot  # start-up phase times (UNIX), "ready" once serving
        self.info = info
        self.sessions = sessions
        self.rotation = TopicRotation(int(settings.serving_topic_rotate_mb * 2**20), settings.serving_topic_retention_s,
                                      ROTATION_GRACE_S, ROTATION_LEAD_S)
        self._housekeeping: asyncio.Task[None] | None = None
        self._stopping = False
        self.metrics = PredictorMetrics()
        self.producer: ResilientProducer | None = None
        self.partitions: list[int] = list(range(info.n_workers))
        self.redis: aioredis.Redis | None = None
        self._results_redis: aioredis.Redis | None = None
        self.router: ResultRouter | None = None
        self._rotation = itertools.count()
        self._running_marked = False
        self.admission = Admission(settings.serving_max_queued_work_s, settings.serving_max_inflight_instances,
                                   info.batch_size, info.fastest_batch_s)
        self._live: tuple[float, int | None] = (0.0, None)  # (when read, live workers) — read at most every second
        # Every answer's lateness past its deadline, as this predictor measured it (what the overload and
        # chaos checks read): answered, and answered later than deadline + margin.
        self._producers_made = 0
        self.answered_tasks = 0
        self.late_tasks = 0
        self.worst_lateness_s = 0.0

    # -- life cycle ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        # No idempotence: duplicates are harmless here (workers and the router keep an instance's first
        # answer), while an idempotent producer can fail for good after a broker restart (unknown producer id).
        self.redis = aioredis.Redis.from_url(self.settings.resolved_redis_url, socket_connect_timeout=5,
                                             socket_timeout=self.settings.redis_socket_timeout_s,
                                             health_check_interval=30)
        existing = await asyncio.to_thread(ensure_started, self.settings, self.info.job_id, len(self.partitions))
        try:  # a relaunched predictor continues with the generation the workers were told
            told = await self.redis.get(generation_key(self.info.job_id))
        except Exception:  # noqa: BLE001 - Redis away: the broker's newest generation is the best guess
            told = None
        self.rotation.adopt(existing, time.time(), int(told) if told else None)
        self.producer = ResilientProducer(self._new_producer)
        partitions = await asyncio.to_thread(self.producer.partitions_for, self.topic)
        if partitions:
            self.partitions = sorted(partitions)
        # The router's blocking XREAD has a connection of its own: no pool checkout per read (one read per
        # answered mini-batch, the predictor's most frequent Redis call).
        self._results_redis = aioredis.Redis.from_url(
            self.settings.resolved_redis_url, socket_connect_timeout=5,
            socket_timeout=self.settings.redis_socket_timeout_s, health_check_interval=30,
            single_connection_client=True)
        self.router = ResultRouter(self._results_redis, results_stream(self.info.job_id), self._on_ready,
                                   lambda stage, seconds: self.metrics.stages.labels(stage).observe(seconds))
        await self.router.start()
        self._on_ready("")  # workers may have registered before we started
        self._housekeeping = asyncio.get_running_loop().create_task(self._rotate_topics())
        self.boot["ready"] = time.time()

    @property
    def topic(self) -> str:
        """The requests topic generation this predictor sends to now."""
        return requests_topic(self.info.job_id, self.rotation.current)

    async def _unread(self, generations: list[int]) -> list[int]:
        """Those of ``generations`` that no live worker reads any more (each says which generation it reads in its
        registry record); none while the registry cannot be read."""
        if not generations:
            return []
        assert self.redis is not None
        records = live_workers(await self.redis.hgetall(workers_key(self.info.job_id)), time.time()).values()
        if any("generation" not in record for record in records):
            return []  # a worker that does not say what it reads may read anything
        oldest = min((int(record["generation"]) for record in records), default=None)
        return [g for g in generations if oldest is None or g < oldest]

    async def _joined(self, generation: int) -> bool:
        """Every partition of ``generation`` is held by a live worker's consumer (each says what it reads, by
        generation, in its registry record); True without live workers (nobody to wait for)."""
        assert self.redis is not None
        records = live_workers(await self.redis.hgetall(workers_key(self.info.job_id)), time.time()).values()
        held = {int(p) for record in records for p in (record.get("reading") or {}).get(str(generation), ())}
        return not records or held >= set(self.partitions)

    async def _rotate_topics(self) -> None:
        """Make the next requests topic generation, rotate to it when due (telling the workers in Redis), delete
        retired ones once drained (:mod:`predictor.rotation`); broker and Redis errors are retried next tick."""
        job, rotation, throttle = self.info.job_id, self.rotation, Throttle(30.0)
        strays_checked = 0.0
        assert self.redis is not None
        while not self._stopping:
            await asyncio.sleep(ROTATION_TICK_S)
            try:
                now = time.time()
                if rotation.needs_next():
                    await asyncio.to_thread(ensure_generations, self.settings, job, [rotation.current + 1],
                                            len(self.partitions))
                    rotation.next_made(time.time())
                if rotation.due(now, joined=await self._joined(rotation.current + 1)):
                    log.info("requests topic: generation %d after %d rotations", rotation.rotate(now),
                             rotation.rotations)
                    if self.producer is not None:
                        self.producer.renew()  # forget the old topic (see ResilientProducer.renew)
                told = {generation_key(job): str(rotation.current)}
                if rotation.next_wanted(now):  # workers open its consumer ahead (a gapless switch)
                    told[next_generation_key(job)] = str(rotation.current + 1)
                await self.redis.mset(told)
                if rotation.enabled and now - strays_checked >= STRAYS_EVERY_S:
                    strays_checked = now
                    rotation.retire_strays(await asyncio.to_thread(generations, self.settings, job), now)
                doomed = await self._unread(rotation.deletable(now))
                if doomed:
                    deleted = await asyncio.to_thread(delete_generations, self.settings, job, doomed)
                    rotation.deleted(doomed)
                    log.info("requests topic: deleted retired %s", deleted)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the broker may be restarting; the next tick retries
                if throttle.ready() is not None:
                    log.warning("requests topic housekeeping failed (%s); retrying", error)

    def _new_producer(self) -> SendsRecords:
        """A fresh producer — after a broker restart too, when the (in-memory) broker may have lost the
        requests topic, so it is ensured first, with the partitions the workers expect."""
        self._producers_made += 1
        if self._producers_made > 1:  # a replacement, not the first
            try:
                current = self.rotation.current
                ensure_generations(self.settings, self.info.job_id, [current, current + 1], len(self.partitions))
            except Exception as error:  # noqa: BLE001 - the producer reconnects anyway; the next failure retries
                log.warning("could not ensure the requests topic (%s)", error)
        # A message is a whole mini-batch: room for big inputs (32 images of 3x224x224 floats are 19 MB).
        return make_serving_producer(self.settings, max_request_size=MAX_MESSAGE_BYTES)

    async def stop(self) -> None:
        self._stopping = True  # ends the housekeeping loop even if a Redis call swallows the cancel (see ResultRouter.stop)
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            await asyncio.wait({self._housekeeping})
            if not self._housekeeping.cancelled():
                self._housekeeping.exception()  # shutting down: retrieved, not reported
        if self.router is not None:
            await self.router.stop()
        if self.producer is not None:
            await asyncio.to_thread(self.producer.close, 5)
        for client in (self._results_redis, self.redis):
            if client is not None:
                await client.aclose()

    def _on_ready(self, _worker: str) -> None:
        asyncio.get_running_loop().create_task(self._check_ready())

    async def workers_ready(self) -> int:
        assert self.redis is not None
        count = len(live_workers(await self.redis.hgetall(workers_key(self.info.job_id)), time.time()))
        self.metrics.workers_ready.set(count)
        self._live = (time.monotonic(), count)
        # Count admitted work in the workers' own measured batch times once they have calibrated (the model's
        # stored profile was timed where it trained: 70x slower than the serving machine in one benchmark).
        measured = calibrated_fastest_batch_s(await self.redis.hgetall(calibration_key(self.info.job_id)),
                                              self.info.batch_size)
        if measured is not None:
            self.admission.count_work_in(measured)
        return count

    async def live_workers(self) -> int | None:
        """Live workers per the registry (cached for a second); None when Redis cannot be read."""
        read_at, count = self._live
        if time.monotonic() - read_at < 1.0:
            return count
        try:
            return await self.workers_ready()
        except Exception:  # noqa: BLE001 - unknown, not zero: results may still flow once Redis is back
            self._live = (time.monotonic(), None)
            return None

    async def _check_ready(self) -> None:
        try:
            ready = await self.workers_ready()
        except Exception:  # noqa: BLE001 - readiness is advisory
            log.exception("cannot read the worker registry")
            return
        if ready >= self.info.n_workers and not self._running_marked and self.sessions is not None:
            self._running_marked = True
            await asyncio.to_thread(self._mark_running)
            log.info("all %d workers ready: inference job %s is RUNNING", ready, self.info.job_id)

    def _mark_running(self) -> None:
        with session_scope(self.sessions) as session:  # type: ignore[arg-type]
            lifecycle.mark_inference_job_running(session, self.info.job_id)

    # -- the request path -------------------------------------------------------------------------------
    def _per_message(self, batch: np.ndarray | list[Any]) -> int:
        """Mini-batches per message: as many as ``EASEL_SERVING_MESSAGE_KB`` holds (one for non-array instances,
        whose size is not known before they are packed)."""
        if not isinstance(batch, np.ndarray) or not len(batch):
            return 1
        return mini_batches_per_message(self.info.batch_size, batch[0].nbytes, self.settings.serving_message_kb << 10)

    def _send(self, task: str, batch: np.ndarray | list[Any], deadline_at: float) -> None:
        """Consecutive mini-batches of each partition's share per message, whole mini-batches dealt round-robin
        (``deal_mini_batches``)."""
        assert self.producer is not None
        n = len(batch)
        now = time.time()
        send, topic = self.producer.send, requests_topic(self.info.job_id, self.rotation.sending(deadline_at))
        last_part = None
        sent = 0
        for part, start, stop, share in deal_mini_batches(n, self.partitions, self.info.batch_size,
                                                          next(self._rotation), self._per_message(batch)):
            # answered as dropped already: sending the rest is wasted work (checked once per partition)
            if part != last_part and time.time() >= deadline_at:
                break
            last_part = part
            value = encode_mini_batch(task, start, deadline_at, n, share, now, batch[start:stop])
            send(topic, value=value, key=message_key(task, start, stop - start), partition=part)
            sent += len(value)
        self.rotation.sent(sent)

    async def predict(self, body: PredictIn, arrived: float | None = None) -> dict[str, Any]:
        """``arrived``: ``perf_counter()`` when the request reached the handler (its latencies count from there)."""
        received = time.time()
        started = time.perf_counter() if arrived is None else arrived
        if body.deadline_s > self.settings.serving_max_deadline_s:
            raise Invalid(f"deadline_s {body.deadline_s} exceeds the longest accepted, "
                          f"{self.settings.serving_max_deadline_s:g} s", code="invalid_deadline")
        count = body.count()
        if count > self.settings.serving_max_instances:
            raise PayloadTooLarge(f"{count} instances; at most {self.settings.serving_max_instances} per request")
        try:
            if count > INLINE_INSTANCES:  # big tasks are checked off the event loop
                batch = await asyncio.to_thread(self._batch, body)
            else:
                batch = self._batch(body)
        except InvalidInstance as error:
            raise Invalid(str(error), code="invalid_instance") from None
        except InvalidTensor as error:
            raise Invalid(f"instances: {error}", code="invalid_tensor") from None
        assert self.router is not None
        workers = await self.live_workers()
        if workers == 0:
            self.metrics.refused.labels("no_workers").inc()
            raise Unavailable("no inference worker of this job is alive; the supervisor relaunches them — retry "
                              "shortly", headers={"Retry-After": "2"})
        try:
            ticket = self.admission.admit(len(batch), workers or self.info.n_workers, CURRENT_KEY.get())
        except Exception:
            self.metrics.refused.labels("overloaded").inc()
            raise
        self.metrics.queued_work.set(self.admission.work_s)
        task = uuid.uuid4().hex
        deadline_at = received + body.deadline_s
        waiter = self.router.open(task, len(batch), started)
        self.metrics.inflight.inc()
        try:
            waiter.sent_at = time.time()
            # The deadline's timer runs on its own: sending happens beside it, and whatever is not answered
            # when it fires is answered as dropped, even if the send is still stuck on a broker. A small task
            # is handed to the producer right here when that cannot block (no task and loop turn in front of it).
            sending = None if self._sent_inline(task, batch, deadline_at) else asyncio.ensure_future(
                self._send_now(task, batch, deadline_at))
            self.metrics.stages.labels("accept").observe(time.perf_counter() - started)
            left = deadline_at - time.time()
            if waiter.remaining and left > 0:
                # the event awaited in this task (not wait_for's task around it): its set wakes us in one turn
                with suppress(TimeoutError):
                    async with asyncio.timeout(left):
                        await waiter.event.wait()
            if sending is not None and not sending.done():
                sending.add_done_callback(_log_send_failure)
        finally:
            self.router.close(task)
            self.admission.release(ticket)
            self.metrics.queued_work.set(self.admission.work_s)
            self.metrics.inflight.dec()
            self.metrics.late.set(self.router.late_results)
            self.metrics.duplicates.set(self.router.duplicates)
        lateness = time.time() - deadline_at
        self.answered_tasks += 1
        self.worst_lateness_s = max(self.worst_lateness_s, lateness)
        if lateness > LATE_MARGIN_S:
            self.late_tasks += 1
            self.metrics.late_answers.inc()
        elapsed = time.perf_counter() - started
        build = build_columns if body.answers == COLUMNS else build_response
        arguments = (task, waiter, self.info, body.deadline_s, elapsed, self.metrics)
        if waiter.n > INLINE_INSTANCES:
            response = await asyncio.to_thread(build, *arguments)
        else:
            response = build(*arguments)
        # When the predictor had the request (before the key check) and had its answer built, UNIX time: what a
        # client reads its transport time in and out against (benchmarks/serving.py's http_in / http_out).
        entered = ENTERED.get()
        response["totals"]["received_at"] = round(entered[0] if entered is not None else received, 6)
        response["totals"]["answered_at"] = round(time.time(), 6)
        # after the answer is written (the rest of this turn of the loop), not in front of it
        asyncio.get_running_loop().call_soon(self._keep_answers, task, response)
        if waiter.remaining == 0:  # from the last answer's arrival (as the router saw it) to the answer built
            last = waiter.started + float(waiter.answered_at.max())
            self.metrics.stages.labels("respond").observe(max(time.perf_counter() - last, 0.0))
        return response

    def _keep_answers(self, task: str, response: dict[str, Any]) -> None:
        """Keep the answers for feedback (true labels sent later by request id), off the answer's path."""
        if self.redis is None:
            return
        payload = encode_answers(kept_answers(response))
        saving = asyncio.ensure_future(self.redis.set(answers_key(self.info.job_id, task), payload,
                                                      ex=self.settings.feedback_ttl_s))
        saving.add_done_callback(_log_keep_failure)

    def _batch(self, body: PredictIn) -> np.ndarray | list[Any]:
        instances = body.instances
        if isinstance(instances, TensorIn):
            return from_tensor(instances.dtype, instances.shape, instances.data, self.info.input_shape)
        return to_batch(instances, self.info.input_shape)

    def _sent_inline(self, task: str, batch: np.ndarray | list[Any], deadline_at: float) -> bool:
        """Queue a small task's messages on the event loop, if the producer is healthy (then it cannot block);
        False: it is left to :meth:`_send_now`."""
        assert self.producer is not None
        messages = -(-len(batch) // (self.info.batch_size * self._per_message(batch)))
        if messages > INLINE_SEND_MESSAGES or not self.producer.healthy:
            return False
        try:
            self._send(task, batch, deadline_at)
        except Exception:  # noqa: BLE001 - what was not queued is answered as dropped at the deadline
            log.exception("could not queue all instances of task %s", task)
        return True

    async def _send_now(self, task: str, batch: np.ndarray | list[Any], deadline_at: float) -> None:
        try:
            await asyncio.to_thread(self._send, task, batch, deadline_at)
        except Exception:  # noqa: BLE001 - what was not queued is answered as dropped at the deadline
            log.exception("could not queue all instances of task %s", task)


LATE_MARGIN_S = 0.5  # an answer later than deadline + this is counted late (a busy 2-core machine's jitter)


def _log_keep_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("could not keep a request's answers for feedback: %s", future.exception())


def _log_send_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("a send finished with an error after its deadline: %s", future.exception())


def build_response(task: str, waiter: TaskWaiter, info: JobInfo, deadline_s: float, elapsed_s: float,
                   metrics: PredictorMetrics | None = None) -> dict[str, Any]:
    """The answer: one entry per instance (``served`` with its prediction, or ``dropped``), and totals.

    ``totals.expected_effective_accuracy`` is the profile accuracy of each served instance's slice rate,
    summed over the task's instances (dropped ones count 0): the effective accuracy the plan expects.
    Per-block work (labels, rows to lists, latencies) is done with numpy; what remains per instance is the
    entry's dict.
    """
    n = waiter.n
    status = waiter.status
    names = waiter.worker_names
    workers_of = [names[w] if w >= 0 else None for w in waiter.workers.tolist()]
    versions_of = [v if v >= 0 else None for v in waiter.versions.tolist()]
    answered = status != 0
    latencies = np.round(np.where(answered, waiter.answered_at, elapsed_s), 6).tolist()
    predictions: list[dict[str, Any] | None] = [None] * n
    for block in waiter.blocks:
        rate = block.rate
        for i, prediction in zip(block.indices.tolist(), predictions_of(block.outputs, info.classes), strict=True):
            predictions[i] = {"index": i, "status": SERVED, "prediction": prediction, "slice_rate": rate,
                              "latency_s": latencies[i], "worker": workers_of[i],
                              "model_version": versions_of[i]}
    served = 0  # an instance answered served without outputs (a malformed entry) has no prediction: dropped
    for i in range(n):
        if predictions[i] is None:
            predictions[i] = {"index": i, "status": DROPPED, "prediction": None, "slice_rate": None,
                              "latency_s": latencies[i], "worker": workers_of[i], "model_version": versions_of[i]}
        else:
            served += 1
    return {"task_id": task, "predictions": predictions,
            "totals": totals(waiter, info, deadline_s, elapsed_s, served, metrics)}


def create_app(settings: Settings, info: JobInfo, sessions: sessionmaker[Session] | None = None,
               boot: dict[str, float] | None = None, service_id: str | None = None) -> FastAPI:
    predictor = Predictor(settings, info, sessions, boot, service_id)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await predictor.start()
        try:
            yield
        finally:
            await predictor.stop()

    app = FastAPI(title="Easel predictor", description=__doc__, lifespan=lifespan)
    app.state.predictor = predictor
    install_error_handlers(app, "predictor", log)
    # Every route but /health needs an API key of this job (see predictor.auth).
    app.add_middleware(
        PredictorAuth, verifier=KeyVerifier(database_lookup(sessions, info.job_id), settings.predictor_key_cache_s),
        rate_limit=KeyRateLimit(settings.resolved_redis_url, settings.predictor_key_rate_limit,
                                settings.predictor_key_rate_window_s))
    explain_routes.install(app, explain_routes.Explanations(
        settings, info.job_id, info.trial_id, info.input_shape, info.classes, list(info.accuracy), sessions))

    request_schema = PredictIn.model_json_schema()

    @app.post(
        "/predict", summary="Answer every instance by the deadline (served or dropped)",
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": request_schema}, MSGPACK: {"schema": request_schema}}}},
    )
    async def predict(request: Request) -> Response:
        """JSON by default; ``Content-Type: application/msgpack`` (and ``Accept: application/msgpack``) for
        the same document in msgpack, which parses an order of magnitude faster for large tasks."""
        arrived = time.perf_counter()
        entered = ENTERED.get()
        if entered is not None:  # the key check and rate limit in front of this handler
            predictor.metrics.stages.labels("auth").observe(max(arrived - entered[1], 0.0))
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"request body over {MAX_BODY_BYTES >> 20} MiB")
        # Full already: refuse before parsing, so a burst costs the predictor (and the answers it owes
        # before their deadlines) as little as possible.
        predictor.admission.refuse_if_full(CURRENT_KEY.get())
        raw = await request.body()
        binary = request.headers.get("content-type", "").split(";")[0].strip().lower() in MSGPACK_TYPES
        body = await asyncio.to_thread(parse_body, raw, binary) if len(raw) > 256 << 10 else parse_body(raw, binary)
        result = await predictor.predict(body, arrived)
        predictor.metrics.requests.labels("200").inc()
        binary_answer = MSGPACK in request.headers.get("accept", "")
        encode = (lambda: pack_msgpack(result)) if binary_answer else (
            lambda: orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY))
        encoding = time.perf_counter()
        content = await asyncio.to_thread(encode) if answer_count(result) > INLINE_INSTANCES else encode()
        predictor.metrics.stages.labels("encode").observe(time.perf_counter() - encoding)
        return Response(content, media_type=MSGPACK if binary_answer else "application/json")

    @app.get("/health", summary="Liveness, and how many inference workers are ready (503 when none is)")
    async def health() -> Response:
        try:
            ready = await predictor.workers_ready()
        except Exception:  # noqa: BLE001 - health reports it rather than failing
            ready = -1
        # True health: without a live worker (or without Redis, where the answers travel) nothing is served.
        status = "ok" if ready > 0 else "unavailable"
        body = {"status": status, "inference_job_id": info.job_id, "trial_id": info.trial_id,
                "workers": info.n_workers, "workers_ready": ready, "batch_size": info.batch_size,
                "input_shape": list(info.input_shape) if info.input_shape else None,
                "slice_rates": sorted(info.accuracy, reverse=True),
                "queued_work_s": round(predictor.admission.work_s, 3),
                "inflight_instances": predictor.admission.instances,
                "peak_inflight_instances": predictor.admission.peak_instances,
                "max_inflight_instances": predictor.admission.max_instances,
                "refused": predictor.admission.refused,
                "answered_tasks": predictor.answered_tasks, "late_tasks": predictor.late_tasks,
                "worst_lateness_s": round(predictor.worst_lateness_s, 4),
                "service_id": predictor.service_id, "boot": predictor.boot,
                "requests_topic": {"generation": predictor.rotation.current, "rotations": predictor.rotation.rotations,
                                   "retiring": predictor.rotation.retiring}}
        if status != "ok":
            body["error"] = "unavailable"
            body["detail"] = ("no inference worker is alive" if ready == 0
                              else "the worker registry (Redis) cannot be read")
        return Response(json.dumps(body), status_code=200 if status == "ok" else 503,
                        media_type="application/json")

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(predictor.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


__all__ = ["JobInfo", "Predictor", "build_response", "create_app", "load_job_info"]
