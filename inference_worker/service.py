"""The inference worker: a Kafka consumer-group member that answers its share of every task by its deadline.

Two threads share a :class:`~inference_worker.book.TaskBook`:

* the **consumer** (main thread) polls the job's requests topic (with rotation, every generation of it that may
  hold work: the current one, the next one ahead of the switch, old ones until drained — a gapless switch),
  groups messages by task, commits offsets once their results are published (at-least-once), reports queue
  lag, and handles rebalances after each poll (never inside kafka-python's callbacks, which run on its IO thread): revoked partitions' queued
  messages are forgotten (their new owner is redelivered everything we did not commit); a failed poll (a
  broker restart) is retried with backoff, so the worker survives any number of rebalances and outages;
* the **executor** takes the task with the earliest deadline (EDF across concurrent tasks), splits its
  instances into mini-batches of ``S_mb`` (the partial one last, so a drop costs the fewest instances),
  asks the policy for a plan with the time left (``deadline_at - margin - now``) and the backlog behind it,
  runs the planned mini-batches fastest-first at their slice rates, publishes each mini-batch's results to
  the job's Redis results stream as soon as it is done, and answers the rest as dropped.

Beyond the paper: measured batch times feed an EWMA of each ``t_i`` and the policy is rebuilt on them when
they drift (:class:`~inference_worker.policy.LivePolicy`). Running a plan — between mini-batches, check the
clock against the plan and re-plan the rest with the time actually left, or drop what can no longer finish;
never start a mini-batch after its deadline — is :class:`scheduler.PlanExecutor`, the same code the
simulator runs, steered by the policy's own attributes (``replans``, ``late_rule``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import queue
import threading
import time
import traceback
from collections import Counter as Tally
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import redis
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from easel.backoff import Backoff, Throttle
from easel.batch_buffers import BatchBuffers
from easel.db.models import Service
from easel.db.session import session_scope
from easel.kafka_io import REVOKED, PartitionEvents
from easel.serving import (
    DEAD_LETTERS_MAXLEN,
    DROPPED,
    HEARTBEAT_S,
    SERVED,
    STREAM_MAXLEN,
    dead_letters_stream,
    generation_key,
    next_generation_key,
    promote_key,
    requests_topic,
    results_stream,
    standbys_key,
    worker_record,
    workers_key,
)
from easel.serving_wire import (
    CorruptMessage,
    decode_mini_batch,
    encode_ready,
    encode_results,
    output_array,
    parse_key,
)
from inference_worker.book import Group, Held, OffsetTracker, TaskBook
from inference_worker.metrics import WorkerMetrics, rate_label
from inference_worker.model import ServedModel
from inference_worker.policy import LivePolicy
from scheduler import LateRule, Plan, PlanExecutor

if TYPE_CHECKING:
    from easel.kafka_confluent import ConfluentConsumer

log = logging.getLogger("easel.inference_worker")

TOPIC_CHECK_S = 5.0  # how long a worker goes without partitions before it checks that the topic exists
# The queue-lag gauge is a metric: refreshed this often, not after every poll (a poll returns per message).
LAG_EVERY_S = 0.25
STANDBY_WAIT_S = 1  # a standby's BLPOP: how often it refreshes its record (and notices a stop)
# A commit must not stall the poll thread (its partitions' requests wait meanwhile): one that a broker does not
# answer in this time (a topic deleted under it, a broker restarting) is retried after the next poll.
COMMIT_TIMEOUT_MS = 2000
END_OFFSETS_TIMEOUT_MS = 500  # asked on the poll thread, only once an old generation looks drained
GENERATION_CHECK_S = 0.5  # how often a worker reads which requests topic generation the predictor sends to
# A poll of a generation other than the one the predictor sends to (the next, or an old one draining) waits this
# long, so that a message of the current one waits at most this for it: kafka-python makes no progress on a fetch
# in a poll that may not wait at all, nor on a group join in one of 2 ms (on Tansu; 10 ms joined in 2-4 s).
OTHER_GENERATIONS_WAIT_MS = 2
JOINING_WAIT_MS = 10  # ... while that generation's consumer holds no partition yet (its group join under way)
# A generation's consumer is opened, and its group joined, off the poll loop for up to this long (waiting 100 ms per
# poll: 2-4 s on the local broker) before the loop takes it over.
JOIN_AHEAD_S = 30.0
SWITCH_WAIT_S = 10.0  # the longest a worker reads an old generation after it was superseded (it drains first)
# A share's served answers go out together (Executor._hold_answers): at most this many mini-batches per results
# entry, and none held longer than this (what a worker that dies mid-share makes its successor redo).
PUBLISH_MINI_BATCHES = 16
PUBLISH_AFTER_S = 0.02


@dataclass
class WorkerConfig:
    job_id: str
    worker_id: str
    topic: str  # the requests topic (its first generation), read alone when ``consumer_for`` is None
    batch_size: int
    policy: str
    margin_s: float = 0.005
    drain_s: float = 10.0
    metrics_port: int | None = None
    service_id: str | None = None
    leave_group: bool = False  # send LeaveGroup on stop (see InferenceWorker.drain)
    model_version: int | None = None  # the registered version served, named in every result
    model_version_id: str | None = None
    # UNIX times of the start-up phases (process, imported, loaded, calibrated, subscribed), published in the
    # worker registry so that a recovery's seconds can be accounted for
    boot: dict[str, float] = field(default_factory=dict)
    # Re-creates the requests topic if it is gone (a restarted in-memory broker); called while the worker has
    # no partitions. Clients never auto-create it: that would make a one-partition topic.
    ensure_topic: Callable[[], None] | None = None
    # Follow the generations of the job's requests topic (easel.request_topics), starting at ``generation``:
    # ``consumer_for(n)`` makes the consumer of generation n (its own consumer group: one topic per group). None:
    # read ``topic`` alone with the consumer given.
    consumer_for: Callable[[int], KafkaConsumer] | None = None
    generation: int = 0
    publish_mini_batches: int = PUBLISH_MINI_BATCHES  # most served mini-batches in one results entry
    publish_after_s: float = PUBLISH_AFTER_S  # the longest a served answer waits for the rest of its entry


@dataclass
class _Share:
    """Running tallies of one task share, reported with its last results message."""

    n: int
    n_mb: int
    budget_s: float
    planned_accuracy: float
    served: int = 0
    dropped: int = 0
    expected_correct: float = 0.0
    rates: Tally = field(default_factory=Tally)
    replans: int = 0
    compute_s: float = 0.0  # the model's time on this share's mini-batches (what a round trip less it costs)

    def report(self, worker: str, policy: str) -> dict[str, Any]:
        return {"worker": worker, "policy": policy, "instances": self.n, "n_mb": self.n_mb,
                "budget_s": round(self.budget_s, 6), "served": self.served, "dropped": self.dropped,
                "rates": {rate_label(r): c for r, c in sorted(self.rates.items(), reverse=True)},
                "expected_correct": self.expected_correct, "planned_effective_accuracy": self.planned_accuracy,
                "replans": self.replans, "compute_s": round(self.compute_s, 6)}


@dataclass
class _HeldAnswers:
    """Served mini-batches of the running share waiting to go out in one results entry (one width)."""

    items: list[tuple[Held, Any]] = field(default_factory=list)
    rate: float | None = None
    began_at: float = 0.0


def _joined(outputs: list[Any]) -> Any:
    """The outputs of consecutive mini-batches as one block: one array when each is a numeric array of one row
    shape (the wire then carries raw bytes), else one list."""
    if len(outputs) == 1:
        return outputs[0]
    arrays = [output_array(o) for o in outputs]
    if all(a is not None for a in arrays) and len({a.shape[1:] for a in arrays}) == 1:  # type: ignore[union-attr]
        return np.concatenate(arrays)  # type: ignore[arg-type]
    return [value for block in outputs for value in block]


class _ShareRunner:
    """The worker's side of the plan executor for one share: runs chunks on the model, publishes answers."""

    def __init__(self, executor: Executor, group: Group, chunks: list[Held], end: float, missing: int) -> None:
        self.executor, self.group, self.chunks, self.end, self.missing = executor, group, chunks, end, missing
        self.share: _Share | None = None

    def planned(self, plan: Plan, first: bool) -> None:
        ex = self.executor
        if not first:
            assert self.share is not None
            self.share.replans += 1
            ex.metrics.replans.inc()
            return
        left = self.end - ex.clock()
        self.share = _Share(self.group.instances, len(self.chunks), left, plan.effective_accuracy)
        ex.metrics.tasks.inc()
        if log.isEnabledFor(logging.DEBUG):
            live = ex.live
            per_mb = getattr(live.policy, "time_per_mb", None)
            log.debug("task %s: %d instances (%d missing) in %d mini-batches, %.4f s left, t_i %s, "
                      "affordable s/mb %s, plan %s", self.group.task[:8], self.group.instances, self.missing,
                      len(self.chunks), left, [round(t, 4) for t in live.profile.batch_times],
                      f"{per_mb():.4f}" if per_mb else None, list(plan.counts))

    def run(self, index: int, model: int, last: bool) -> float | None:
        assert self.share is not None
        return self.executor._run_chunk(self.group, self.chunks[index], model, self.share, last)

    def drop(self, indices: Sequence[int], last: bool) -> None:
        assert self.share is not None
        self.executor._drop(self.group, [self.chunks[i] for i in indices], self.share, last)


class Executor:
    """Runs tasks from the book, one at a time, EDF; see the module docstring."""

    def __init__(self, config: WorkerConfig, model: ServedModel, live: LivePolicy, book: TaskBook,
                 offsets: OffsetTracker, results: redis.Redis, metrics: WorkerMetrics,
                 clock: Callable[[], float] = time.time, timer: Callable[[], float] = time.perf_counter) -> None:
        """``clock``: UNIX time (deadlines are in it); ``timer``: what measures a mini-batch (both injectable,
        so that a test can drive the executor with a clock it controls)."""
        self.config, self.model, self.live, self.book = config, model, live, book
        self.offsets, self.results, self.metrics = offsets, results, metrics
        self.clock, self.timer = clock, timer
        self.stream = results_stream(config.job_id)
        self.buffers = BatchBuffers(config.batch_size)
        self.arrivals: deque[tuple[float, int]] = deque()  # appended by the consumer thread
        self._held_answers = _HeldAnswers()  # the running share's served answers not published yet
        self._thread = threading.Thread(target=self._run, name="executor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            group = self.book.take()
            if group is None:
                return
            self.metrics.inflight.set(len(group.items))
            try:
                self.run_group(group)
            except Exception:  # noqa: BLE001 - one bad task must not stop the worker
                log.error("task %s failed:\n%s", group.task, traceback.format_exc())
                with contextlib.suppress(Exception):
                    self._flush_answers(group, None)  # what was served is answered served (first answer wins)
                self._held_answers.items.clear()
                self._publish(group, list(group.items), DROPPED, None, None, None)
            finally:
                self.metrics.inflight.set(0)
                self.metrics.queued.set(self.book.queued_instances())

    # -- one task share ------------------------------------------------------------------------------
    def run_group(self, group: Group) -> None:
        size = self.config.batch_size
        # Each held item is one mini-batch (messages were cut at S_mb as they were polled). Full mini-batches first, the
        # partial one last: plans drop from the tail, so a drop costs the least.
        chunks = sorted(group.items, key=lambda h: (h.batch.count < size, h.batch.start))
        live = self.live
        now = self.clock()
        self.metrics.share_wait_seconds.inc(max(0.0, now - group.first_seen))
        if live.refresh(now):
            self.metrics.rebuilds.inc()
            log.info("profile rebuilt from measured batch times: %s", [round(t, 5) for t in live.planning_times()])
        while self.arrivals:
            at, mbs = self.arrivals.popleft()
            live.on_arrival(mbs, at)
        end = group.deadline_at - self.config.margin_s
        # Instances of this share still on their way (the book waited a little, not forever) are planned as
        # work queued behind it with the same deadline, so this part does not spend the whole task's time.
        missing = sum(group.expected.values()) - group.instances

        def behind(now: float) -> list[tuple[int, float]]:
            # Missing instances that have since arrived are in the book's backlog: count them once.
            still_missing = missing - self.book.held(group.task)
            ahead = [(math.ceil(still_missing / size), end - now)] if still_missing > 0 else []
            return ahead + self.book.backlog(size, now)

        # The plan executor (shared with the simulator): plan, run, observe, re-plan or drop.
        runner = _ShareRunner(self, group, chunks, end, missing)
        began = self.timer()
        PlanExecutor(live, self.clock, LateRule.START, full_size=size).run_share(
            [c.batch.count for c in chunks], group.deadline_at, runner, behind, margin=self.config.margin_s)
        self._flush_answers(group, None)  # a share ends on its last mini-batch, which flushes; never leave any
        self.metrics.share_seconds.inc(self.timer() - began)

    def _run_chunk(self, group: Group, chunk: Held, model: int, share: _Share, last: bool) -> float | None:
        rate = self.model.rates[model]
        at_rate = self.metrics.at_rate(rate)
        count = chunk.batch.count
        if count == self.config.batch_size:
            at_rate.batch_estimate.set(self.live.estimate(model))  # the estimate in use
        began = self.timer()
        began_at = self.clock()
        began_cpu = time.thread_time()
        try:
            array = chunk.batch.array
            queries = self.buffers.load(array) if array is not None else chunk.batch.values
            outputs = self.model.predict(queries, rate)
        except Exception:  # noqa: BLE001 - the template failed on these instances: answer them as dropped
            log.error("predict failed at rate %s for task %s:\n%s", rate, group.task, traceback.format_exc())
            self._drop(group, [chunk], share, last=last)
            return None
        done_at = self.clock()
        predicted = self.timer()
        self.metrics.predict_thread_cpu_seconds.inc(time.thread_time() - began_cpu)
        if self.model.last_device_s is not None:
            self.metrics.predict_device_seconds.inc(self.model.last_device_s)
        self.metrics.predict_seconds.inc(predicted - began)
        share.served += count
        share.rates[rate] += count
        share.expected_correct += count * self.model.accuracies[model]
        share.compute_s += done_at - began_at
        self._hold_answers(group, chunk, rate, outputs, began_at, share if last else None)
        answered = self.timer()
        self.metrics.answer_seconds.inc(answered - predicted)
        seconds = answered - began
        at_rate.batch_seconds.observe(seconds)
        at_rate.minibatches.inc()
        self.metrics.planned_seconds.inc(self.live.profile.batch_times[model])
        self.metrics.served.inc(count)
        self.metrics.expected_correct.inc(count * self.model.accuracies[model])
        return seconds

    def _hold_answers(self, group: Group, chunk: Held, rate: float, outputs: Any, began_at: float,
                      last_of: _Share | None) -> None:
        """Keep a served mini-batch's answers for the share's next results entry, which goes out at the share's
        end (``last_of``: then with its report), at a change of width, at ``PUBLISH_MINI_BATCHES``, or once the
        oldest answer held is ``PUBLISH_AFTER_S`` old. The predictor answers a task when all of it is answered, so
        one entry per mini-batch only cost a Redis write and a predictor read each; offsets are committed after
        the entry is out, as before."""
        held = self._held_answers
        if held.items and held.rate != rate:
            self._flush_answers(group, None)
        if not held.items:
            held.rate, held.began_at = rate, began_at
        held.items.append((chunk, outputs))
        now = self.clock()
        if (last_of is not None or len(held.items) >= self.config.publish_mini_batches
                or now - held.began_at >= self.config.publish_after_s):
            report = last_of.report(self.config.worker_id, self.live.name) if last_of is not None else None
            self._flush_answers(group, report, now)

    def _flush_answers(self, group: Group, report: dict[str, Any] | None, done_at: float | None = None) -> None:
        held = self._held_answers
        if not held.items:
            return
        items, held.items = held.items, []
        outputs = _joined([o for _chunk, o in items])
        self._publish(group, [chunk for chunk, _o in items], SERVED, held.rate, outputs, report,
                      (group.first_seen, held.began_at, self.clock() if done_at is None else done_at))

    def _drop(self, group: Group, chunks: list[Held], share: _Share, last: bool) -> None:
        self._flush_answers(group, None)  # answers held go out first (the report rides on the share's last entry)
        if not chunks and not last:
            return
        count = sum(h.batch.count for h in chunks)
        share.dropped += count
        self.metrics.dropped_minibatches.inc(len(chunks))
        self.metrics.instances.labels("dropped").inc(count)
        report = share.report(self.config.worker_id, self.live.name) if last else None
        self._publish(group, chunks, DROPPED, None, None, report)

    def _publish(self, group: Group, held: list[Held], status: str, rate: float | None,
                 outputs: Sequence[Any] | None, report: dict[str, Any] | None,
                 timing: tuple[float, float, float] | None = None) -> None:
        """One results entry for ``held`` (consecutive served mini-batches of one width, their ``outputs`` in
        order; or any number of dropped ones)."""
        ranges = [(h.batch.start, h.batch.count) for h in held]
        payload = encode_results(group.task, self.config.worker_id, self.clock(), status, ranges,
                                 rate if status == SERVED else None, outputs if status == SERVED else None,
                                 report, timing, self.config.model_version)
        if report is not None and log.isEnabledFor(logging.DEBUG):
            log.debug("task %s share done %.4f s before its deadline: served %d, dropped %d, rates %s, replans %d",
                      group.task[:8], group.deadline_at - self.clock(), report["served"], report["dropped"],
                      report["rates"], report["replans"])
        try:
            self.results.xadd(self.stream, {"m": payload}, maxlen=STREAM_MAXLEN, approximate=True)
        except redis.RedisError:
            # Unanswered instances are answered as dropped by the predictor at their deadline.
            log.exception("could not publish the results of %d mini-batches of task %s", len(held), group.task)
        for h in held:  # results are out (or never will be): these offsets may be committed
            self.offsets.done(h.partition, h.offset)


@dataclass(eq=False)
class _Reader:
    """One requests topic generation's consumer (its own consumer group), its rebalance events (recorded by the
    client's listener, acted on by the poll thread) and the partitions it holds."""

    generation: int
    consumer: Any
    events: PartitionEvents = field(default_factory=PartitionEvents)
    assigned: set[TopicPartition] = field(default_factory=set)
    superseded_at: float | None = None  # when a newer generation became the one the predictor sends to
    early: list[dict[TopicPartition, list[Any]]] = field(default_factory=list)  # polled while it joined its group


class InferenceWorker:
    """The consumer side and the life cycle: start, serve until stopped, drain.

    With rotation (``consumer_for``), the worker reads every generation it has a consumer open on: the one the
    predictor sends to, the next one (opened as soon as the predictor has made it, so its group is joined before
    the first task reaches it), and old ones until they drain. All of them feed the one book, earliest deadline
    first; an old generation's consumer is closed once its share is read to its end and answered."""

    def __init__(self, config: WorkerConfig, consumer: KafkaConsumer | ConfluentConsumer, model: ServedModel, live: LivePolicy,
                 results: redis.Redis, metrics: WorkerMetrics,
                 sessions: sessionmaker[Session] | None = None) -> None:
        self.config, self.model, self.live = config, model, live
        self.results, self.metrics, self.sessions = results, metrics, sessions
        self.offsets = OffsetTracker()
        self.book = TaskBook(self.offsets, margin_s=config.margin_s, on_expired=metrics.instances.labels("expired").inc)
        self.executor = Executor(config, model, live, self.book, self.offsets, results, metrics)
        self.stop = threading.Event()
        self.ready = threading.Event()
        self._generation = config.generation  # the requests topic generation the predictor sends to (as last told)
        self._readers: dict[int, _Reader] = {config.generation: _Reader(config.generation, consumer)}
        self._assignments: deque[tuple[float, list[int]]] = deque(maxlen=4)  # (when, partitions) after a rebalance
        self._lag_labels: set[str] = set()
        self._announced = 0.0
        self._lag_at = 0.0
        self._backoff = Backoff(base_s=0.1, cap_s=5.0)
        self._throttle = Throttle(5.0)
        self._unassigned_since: float | None = None
        # Generations whose consumer is still being closed (in the background): the registry record names the
        # oldest of them, so the predictor deletes a generation only once no consumer of it is open — librdkafka
        # 2.16 segfaults when a topic it fetches from is deleted on the local broker.
        self._closing: Tally = Tally()
        self._closing_lock = threading.Lock()
        self._reannounce = threading.Event()
        self._generation_checked = 0.0
        self._told = config.generation  # the newest generation the predictor is known to send to
        self._opening: set[int] = set()  # generations whose consumer is being opened (off the poll thread)
        self._opened: queue.SimpleQueue[tuple[int, _Reader | None]] = queue.SimpleQueue()

    @property
    def consumer(self) -> Any:
        """The consumer of the generation the predictor sends to."""
        return self._current.consumer

    @property
    def _current(self) -> _Reader:
        return self._readers[self._generation]

    @property
    def _assigned(self) -> set[TopicPartition]:
        """Every partition held, of every generation read."""
        return set().union(*(r.assigned for r in self._readers.values()))

    # -- rebalances ------------------------------------------------------------------------------------
    def _apply_rebalance(self, reader: _Reader) -> None:
        """Act on the rebalance events of ``reader``'s last ``poll``, on this (the poll) thread: the listener only
        records them, because kafka-python calls it on its IO thread, where nothing may block."""
        for kind, parts in reader.events.drain():
            if kind == REVOKED and not parts:  # the first join revokes nothing
                continue
            if kind == REVOKED:
                # No commit here: the generation is over, and everything answered was committed after the
                # poll that answered it. What is left is redelivered to the next owner (the predictor keeps
                # the first answer of an instance and counts the rest as duplicates).
                dropped = self.book.drop_partitions(parts)
                self.offsets.forget(parts)
                reader.assigned -= parts
                self._forget_lag(parts)
                log.info("partitions %s revoked (%d queued messages left to their next owner)", _names(parts),
                         dropped)
            else:
                reader.assigned |= parts
                if reader is self._current:
                    self._assignments.append((round(time.time(), 3), self._partition_numbers()))
                self.offsets.assign(parts)
                log.info("partitions %s assigned", _names(parts))
                self.announce()

    def _forget_lag(self, parts: set[TopicPartition]) -> None:
        for tp in parts:
            if _label(tp) in self._lag_labels:
                self.metrics.queue_lag.remove(_label(tp))
                self._lag_labels.discard(_label(tp))

    def announce(self, event: bool = True) -> None:
        """Register as ready in the job's worker registry (and, on an assignment, tell the predictor)."""
        now = time.time()
        record = worker_record(os.getpid(), self.config.metrics_port, self._partition_numbers(), self.live.name, now,
                               boot=self.config.boot, assignments=list(self._assignments),
                               generation=self.reading_generation(),
                               reading={str(g): parts for g, parts in self.partitions_by_generation().items()})
        try:
            pipe = self.results.pipeline()
            pipe.hset(workers_key(self.config.job_id), self.config.worker_id, record)
            if event:
                pipe.xadd(results_stream(self.config.job_id), {"m": encode_ready(self.config.worker_id)},
                          maxlen=STREAM_MAXLEN, approximate=True)
            pipe.execute()
        except redis.RedisError:
            log.exception("could not register in the worker registry")
        self._announced = now
        self.ready.set()

    def _partition_numbers(self) -> list[int]:
        """The partitions held, by number (of the requests topic generation the predictor sends to)."""
        return sorted({tp.partition for tp in self._current.assigned})

    # -- offsets -----------------------------------------------------------------------------------------
    def commit(self, partitions: set[TopicPartition] | None = None) -> None:
        for reader in list(self._readers.values()):
            self._commit(reader, reader.assigned if partitions is None else partitions & reader.assigned)

    def _commit(self, reader: _Reader, partitions: set[TopicPartition]) -> None:
        offsets = self.offsets.committable(partitions)
        if not offsets:
            return
        try:
            reader.consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()},
                                   timeout_ms=COMMIT_TIMEOUT_MS)
            self.offsets.mark_committed(offsets)
        except (CommitFailedError, KafkaError) as error:
            log.warning("commit of %s failed (a rebalance?): %s", offsets, error)

    def _update_lag(self) -> None:
        for reader in self._readers.values():
            for tp in reader.assigned:
                high = reader.consumer.highwater(tp)
                if high is None:
                    continue
                done = self.offsets.committed_offset(tp)
                if done is None and tp in reader.consumer.assignment():
                    done = reader.consumer.position(tp)
                if done is None:
                    done = high
                self.metrics.queue_lag.labels(_label(tp)).set(max(high - done, 0))
                self._lag_labels.add(_label(tp))

    # -- warm standby --------------------------------------------------------------------------------------
    def wait_as_standby(self) -> bool:
        """Loaded and calibrated, wait outside the consumer group until the supervisor promotes this worker
        (True: then :meth:`run` it) or it is told to stop (False). Its standby record is refreshed on every
        wait, so the supervisor promotes only a standby that is alive."""
        job, me = self.config.job_id, self.config.service_id or self.config.worker_id
        backoff = Backoff(base_s=0.2, cap_s=5.0)
        log.info("standby %s: loaded, waiting to be promoted", me)
        try:
            while not self.stop.is_set():
                try:
                    self.results.hset(standbys_key(job), me, json.dumps({"pid": os.getpid(), "seen_at": time.time()}))
                    popped = self.results.blpop([promote_key(job, me)], timeout=STANDBY_WAIT_S)
                    backoff.reset()
                except redis.RedisError as error:
                    if self._throttle.ready() is not None:
                        log.warning("standby cannot reach Redis (%s); retrying", error)
                    self.stop.wait(backoff.next_delay())
                    continue
                if popped is not None:
                    self.config.boot["promoted"] = time.time()
                    log.info("standby %s promoted: serving as %s", me, popped[1].decode(errors="replace"))
                    return True
            return False
        finally:
            with contextlib.suppress(redis.RedisError):
                self.results.hdel(standbys_key(job), me)


    # -- the loop ----------------------------------------------------------------------------------------
    def _poll_once(self, timeout_ms: int) -> None:
        """One poll of every generation read: the current one waits up to ``timeout_ms`` for its first message,
        the others only a few ms (their fetches stay in flight between polls)."""
        held = []
        size = self.config.batch_size
        self._adopt_opened()
        for reader in sorted(self._readers.values(), key=lambda r: r is self._current):  # the current one last
            wait_ms = (timeout_ms if reader is self._current
                       else OTHER_GENERATIONS_WAIT_MS if reader.assigned else JOINING_WAIT_MS)
            batch = reader.early.pop(0) if reader.early else reader.consumer.poll(timeout_ms=wait_ms,
                                                                                 max_records=5000)
            self._apply_rebalance(reader)
            for tp, records in batch.items():
                for record in records:
                    try:
                        pieces = decode_mini_batch(record.value).split(size)
                    except CorruptMessage as error:  # dead-lettered, never fatal
                        self.offsets.received(tp, record.offset)
                        self.dead_letter(tp, record.offset, record.key, record.value, str(error))
                        continue
                    self.offsets.received(tp, record.offset, parts=len(pieces))
                    held += [Held(piece, tp, record.offset) for piece in pieces]
            if batch and reader.generation > self._generation:
                self._told = max(self._told, reader.generation)
                self._move_to(reader.generation)  # the predictor sends there now: no need to wait to be told
        now = time.time()
        if held:
            for n_part, left in self.book.add(held, now):
                self.executor.arrivals.append((now, math.ceil(n_part / size)))
                self.metrics.time_left_at_arrival.observe(left)
            self.metrics.queued.set(self.book.queued_instances())
        self.commit()
        if now - self._lag_at >= LAG_EVERY_S:
            self._lag_at = now
            self._update_lag()
        # Refreshed while alive once it has served, partitions or not: in the middle of a rebalance (a rolling
        # update's, a relaunch's) it is about to serve again, and letting every record go stale then would make
        # the predictor refuse requests as if no worker were alive.
        reannounce = self._reannounce.is_set()
        if (self._current.assigned or self.ready.is_set()) and (reannounce or now - self._announced >= HEARTBEAT_S):
            self._reannounce.clear()
            self.announce(event=False)
        self._check_topic(now)
        self._follow_generations(now)

    def _follow_generations(self, now: float) -> None:
        """Keep a consumer open on every requests topic generation that may hold this worker's work (checked every
        ``GENERATION_CHECK_S``): the one the predictor sends to, the next one as soon as the predictor has made it,
        and an old one until its share is drained — read to its end and answered — or ``SWITCH_WAIT_S`` after it
        was superseded (what is left then is answered as dropped by the predictor at its deadline). Each
        generation has its own consumer group: the local broker's group coordinator is only reliable with one
        topic per group."""
        if self.config.consumer_for is None or now - self._generation_checked < GENERATION_CHECK_S:
            return
        self._generation_checked = now
        told, ahead = self._told_generations() if not self.stop.is_set() else (None, None)  # draining: no new ones
        self._told = max(self._told, told if told is not None else -1)
        for generation in range(self._generation + 1, max(self._told, ahead if ahead is not None else -1) + 1):
            self._open(generation)  # any between too: the predictor may have rotated twice since
        for reader in [r for r in self._readers.values() if r.generation < self._generation]:
            if reader.superseded_at is None:
                reader.superseded_at = now
            if self._drained(reader) or now - reader.superseded_at >= SWITCH_WAIT_S:
                self._close(reader)

    def _told_generations(self) -> tuple[int | None, int | None]:
        """The generation the predictor sends to and the one it has made next (Redis); None for either when Redis
        is away or has not been told."""
        try:
            raw = self.results.mget([generation_key(self.config.job_id), next_generation_key(self.config.job_id)])
            return tuple(int(v) if v else None for v in raw)  # type: ignore[return-value]
        except (redis.RedisError, ValueError):
            return None, None

    def _move_to(self, generation: int) -> None:
        """``generation`` (whose consumer is open) is the one the predictor sends to now; the older ones read on
        until they drain."""
        previous, self._generation = self._generation, generation
        log.info("requests topic generation %d -> %d (%s still read while they drain)", previous, generation,
                 sorted(g for g in self._readers if g < generation))
        if self.ready.is_set():
            self.announce(event=False)  # its partitions, as the predictor sees them, are the new generation's

    def _open(self, generation: int) -> None:
        """Open a consumer on ``generation`` (its own group), if this worker has none yet, off the poll thread: making
        a client talks to the broker, which must not hold up the generations read meanwhile (under load it took
        longer than a deadline). :meth:`_adopt_opened` takes it into the poll loop."""
        consumer_for = self.config.consumer_for
        assert consumer_for is not None
        if generation in self._readers or generation in self._opening:
            return
        self._opening.add(generation)
        topic = requests_topic(self.config.job_id, generation)

        def open_reader() -> None:
            reader: _Reader | None = None
            try:
                reader = _Reader(generation, consumer_for(generation))
                reader.consumer.subscribe([topic], listener=reader.events)
                # Join its group here, with the poll waits a join needs (the poll loop's short ones barely
                # progress it); anything polled meanwhile goes to the poll loop with the consumer.
                give_up = time.monotonic() + JOIN_AHEAD_S
                while not reader.consumer.assignment() and time.monotonic() < give_up and not self.stop.is_set():
                    batch = reader.consumer.poll(timeout_ms=100, max_records=5000)
                    if batch:
                        reader.early.append(batch)
            except Exception as error:  # noqa: BLE001 - the broker may be away: the next check tries again
                log.warning("could not open requests topic generation %d (%s); retrying", generation, error)
                if reader is not None:
                    _close_quietly(reader.consumer)
                reader = None
            self._opened.put((generation, reader))

        threading.Thread(target=open_reader, name=f"open-generation-{generation}", daemon=True).start()

    def _adopt_opened(self) -> None:
        """Take the consumers opened since the last poll into the loop, and move to the newest generation the
        predictor is known to send to once its consumer is open."""
        while not self._opened.empty():
            generation, reader = self._opened.get()
            self._opening.discard(generation)
            if reader is None:
                continue
            if self.stop.is_set():  # draining: nothing new is read
                self._close_in_background(reader.consumer, generation)
                continue
            self._readers[generation] = reader
            log.info("reading requests topic generation %d too", generation)
        newest = max((g for g in self._readers if g <= self._told), default=self._generation)
        if newest > self._generation:
            self._move_to(newest)

    def _drained(self, reader: _Reader) -> bool:
        """Everything this worker held of ``reader``'s generation is answered, and its partitions are read to
        their end — the end the broker reports now: the highwater a consumer caches is the one of its last fetch,
        stale when the predictor wrote more since (the generation would close with those requests unread, to be
        answered dropped by the predictor at their deadline). Both are needed: the local broker
        (Tansu) reports as end offset the last record batch's base offset + 1, short of a batch of several records
        — still beyond the position if that batch came after the last fetch, which is what this asks."""
        if self.offsets.unanswered(reader.assigned):
            return False
        positions: dict[TopicPartition, int] = {}
        for tp in reader.assigned:
            high, where = reader.consumer.highwater(tp), reader.consumer.position(tp)
            if high is None or where is None or where < high:
                return False  # known not to be at its end: no need to ask the broker
            positions[tp] = where
        if not positions:
            return True
        try:
            ends = reader.consumer.end_offsets(list(positions), timeout_ms=END_OFFSETS_TIMEOUT_MS)
        except KafkaError as error:  # the broker is away or slow: the next check asks again
            log.info("end offsets of requests topic generation %d not known (%s)", reader.generation, error)
            return False
        if not all(ends.get(tp) is not None and where >= ends[tp] for tp, where in positions.items()):
            return False
        log.info("requests topic generation %d read to its end: %s", reader.generation,
                 {_label(tp): (where, ends[tp]) for tp, where in positions.items()})
        return True

    def _close(self, reader: _Reader) -> None:
        """Stop reading an old generation: commit what is answered, forget what is left (answered as dropped by
        the predictor at its deadline), close its consumer off the poll thread."""
        self._commit(reader, reader.assigned)
        self.book.drop_partitions(reader.assigned)
        self.offsets.forget(reader.assigned)
        self._forget_lag(reader.assigned)
        del self._readers[reader.generation]
        # closing leaves the old generation's group (its other members take our partitions, if any are left)
        self._close_in_background(reader.consumer, reader.generation)
        log.info("requests topic generation %d drained: its consumer closed", reader.generation)

    def partitions_by_generation(self) -> dict[int, list[int]]:
        """The partitions this worker holds in each requests topic generation it reads."""
        return {g: sorted(tp.partition for tp in r.assigned) for g, r in sorted(self._readers.items())}

    def reading_generation(self) -> int:
        """The oldest requests topic generation this worker still has a consumer open on, or being opened (what it
        tells the predictor, which deletes only generations older than every live worker's)."""
        with self._closing_lock:
            return min([*self._readers, *self._closing, *self._opening])

    def _close_in_background(self, consumer: Any, generation: int) -> None:
        """Close a finished generation's consumer off the poll thread (leaving a group can take seconds); the
        registry keeps naming ``generation`` until it is closed, then says so at once."""
        with self._closing_lock:
            self._closing[generation] += 1

        def close() -> None:
            try:
                _close_quietly(consumer)
            finally:
                with self._closing_lock:
                    self._closing[generation] -= 1
                    if self._closing[generation] <= 0:
                        del self._closing[generation]
                self._reannounce.set()  # the poll thread tells the predictor (it owns the record's other fields)

        threading.Thread(target=close, name="close-consumer", daemon=True).start()

    def dead_letter(self, partition: TopicPartition, offset: int, key: Any, value: Any, reason: str) -> None:
        """A message that cannot be read: logged, counted, kept (capped) on the job's dead-letter stream, and
        the instances its key names answered dropped, so the predictor does not wait for the deadline."""
        self.metrics.dead_letters.inc()
        log.warning("dead-lettering the message at %s:%s (key %r): %s", partition, offset, key, reason)
        where = parse_key(key)
        try:
            pipe = self.results.pipeline()
            pipe.xadd(dead_letters_stream(self.config.job_id),
                      {"topic": partition.topic, "partition": partition.partition, "offset": offset, "key": key if isinstance(key, bytes) else str(key),
                       "reason": reason, "worker": self.config.worker_id, "bytes": len(value or b"")},
                      maxlen=DEAD_LETTERS_MAXLEN, approximate=True)
            if where is not None:
                task, start, count = where
                pipe.xadd(self.executor.stream, {"m": encode_results(task, self.config.worker_id, time.time(),
                                                                     DROPPED, [(start, count)],
                                                                     version=self.config.model_version)},
                          maxlen=STREAM_MAXLEN, approximate=True)
            pipe.execute()
        except redis.RedisError:
            log.exception("could not record the dead letter at %s:%s", partition, offset)
        self.offsets.done(partition, offset)

    def _check_topic(self, now: float) -> None:
        """Without partitions for a while, the topic may be gone (the broker restarted): make sure it exists."""
        if self._current.assigned or self.config.ensure_topic is None:
            self._unassigned_since = None
            return
        if self._unassigned_since is None:
            self._unassigned_since = now
        elif now - self._unassigned_since >= TOPIC_CHECK_S:
            self._unassigned_since = now
            try:
                self.config.ensure_topic()
            except Exception as error:  # noqa: BLE001 - the broker may still be down; try again later
                if self._throttle.ready() is not None:
                    log.warning("could not ensure the requests topic (%s)", error)

    def run(self) -> None:
        if self.config.consumer_for is not None:
            told, _ahead = self._told_generations()
            if told is not None and told > self._generation:  # a standby promoted after rotations: start there
                first = self._readers.pop(self._generation)
                self._generation = self._told = told
                self._readers[told] = _Reader(told, self.config.consumer_for(told))
                self._close_in_background(first.consumer, first.generation)  # never subscribed: nothing to leave
        current = self._current
        topic = self.config.topic if self.config.consumer_for is None else requests_topic(self.config.job_id,
                                                                                         self._generation)
        current.consumer.subscribe([topic], listener=current.events)
        self.config.boot.setdefault("subscribed", time.time())
        self.executor.start()
        log.info("worker %s serving %s with policy %s, S_mb=%d", self.config.worker_id, self.config.topic,
                 self.live.name, self.config.batch_size)
        try:
            while not self.stop.is_set():
                try:
                    self._poll_once(100)
                    self._backoff.reset()
                except (KafkaError, OSError) as error:
                    # A broker restart or a lost group membership: the client reconnects and rejoins on the
                    # next poll; only wait a little (capped, jittered) and say so once in a while.
                    if self._throttle.ready() is not None:
                        log.warning("polling failed (%s); retrying", error)
                    self.stop.wait(self._backoff.next_delay())
        finally:
            self.drain()

    def drain(self) -> None:
        """Stop taking requests, finish what is queued (within ``drain_s``), commit, unregister.

        The group membership then expires (session timeout) and the partitions go to the other workers.
        """
        log.info("draining: %d instances queued", self.book.queued_instances())
        for reader in self._readers.values():
            with contextlib.suppress(KafkaError):
                reader.consumer.pause(*reader.consumer.assignment())
        self.book.close()
        give_up = time.monotonic() + self.config.drain_s
        while not self.executor.join(0.0) and time.monotonic() < give_up:
            try:
                self._poll_once(50)  # paused: keeps the memberships alive and commits as results go out
            except KafkaError:
                break
            self.executor.join(0.05)
        try:
            self.commit()
        finally:
            with contextlib.suppress(redis.RedisError):
                self.results.hdel(workers_key(self.config.job_id), self.config.worker_id)
            if self.config.leave_group:
                for reader in self._readers.values():
                    reader.consumer.close()
            # else: exit without a LeaveGroup; the broker expires the membership after the session timeout.
            # Tansu (the local broker) can wedge a group when its members leave explicitly (a new member then
            # never gets a SyncGroup answer), while expiry works, so leaving is opt-in.
            log.info("worker %s stopped", self.config.worker_id)

    def record_service(self, metrics_port: int) -> None:
        """Put the metrics port and the model version on this worker's ``services`` row (how operators, tests and a
        rolling update find it); written once the model is loaded and calibrated, so it also says "ready"."""
        if self.sessions is None or not self.config.service_id:
            return
        with session_scope(self.sessions) as session:
            session.execute(update(Service).where(Service.id == self.config.service_id)
                            .values(port=metrics_port, heartbeat_at=datetime.now(UTC),
                                    model_version_id=self.config.model_version_id))


def _label(tp: TopicPartition) -> str:
    """A partition's metrics label: its number, and the generation of the requests topic past the first."""
    generation = tp.topic.rsplit(".", 1)[-1]
    return f"{generation}:{tp.partition}" if generation.startswith("g") and generation[1:].isdigit() else str(tp.partition)


def _names(parts: set[TopicPartition]) -> list[str]:
    return sorted(_label(tp) for tp in parts)


def _close_quietly(consumer: KafkaConsumer) -> None:
    with contextlib.suppress(Exception):
        consumer.close(autocommit=False)
