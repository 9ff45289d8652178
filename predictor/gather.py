"""Gathering answers: one blocking reader of the job's Redis results stream hands each result to its task.

Each request registers a :class:`TaskWaiter` before its instances are queued; :class:`ResultRouter` runs one
``XREAD BLOCK`` loop (no polling with sleeps) and dispatches every entry (a run of mini-batches' answers) to its
waiter, which records them with array operations, not per instance. The first answer for a ``(task, index)``
wins: redelivered duplicates after a worker failure are counted and ignored, and answers for tasks already
answered (past their deadline) are counted as late.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from easel.backoff import Backoff, Throttle
from easel.serving import SERVED
from easel.serving_wire import Ready, Results, decode_entry

log = logging.getLogger("easel.predictor")


def _stream_id(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


READ_BLOCK_MS = 1000  # the longest one XREAD waits for results (and so the longest a stop waits for the loop to end)
SERVED_CODE, DROPPED_CODE = 1, 2  # TaskWaiter.status: 0 while an instance has no answer


@dataclass(frozen=True, slots=True)
class ServedBlock:
    """The served instances of one results entry that were answered first (by this entry)."""

    indices: np.ndarray  # task indices, ascending
    outputs: np.ndarray | list[Any]  # their rows (or values), in the same order
    rate: float | None


class TaskWaiter:
    """The answers of one task so far, as arrays over its instances; ``event`` is set when all have one.

    An instance's first answer wins; a later one (a mini-batch redelivered after a worker died and answered
    twice) is counted in ``duplicates``.
    """

    __slots__ = ("answered_at", "blocks", "duplicates", "event", "n", "remaining", "reports", "sent_at", "started",
                 "status", "versions", "worker_names", "workers")

    def __init__(self, n: int, started: float) -> None:
        self.n = n
        self.started = started  # perf_counter() when the request arrived
        self.sent_at = time.time()  # wall clock, reset when its instances are queued
        self.status = np.zeros(n, np.int8)  # 0 unanswered, SERVED_CODE, DROPPED_CODE
        self.answered_at = np.zeros(n)  # seconds after ``started``
        self.workers = np.full(n, -1, np.int32)  # index into worker_names
        self.versions = np.full(n, -1, np.int64)  # the model version that answered each instance (-1: none)
        self.worker_names: list[str] = []
        self.blocks: list[ServedBlock] = []
        self.remaining = n
        self.duplicates = 0
        self.reports: list[dict[str, Any]] = []
        self.event = asyncio.Event()

    def _worker(self, name: str) -> int:
        try:
            return self.worker_names.index(name)
        except ValueError:
            self.worker_names.append(name)
            return len(self.worker_names) - 1

    def answer(self, results: Results, now: float) -> None:
        served = results.status == SERVED
        code = SERVED_CODE if served else DROPPED_CODE
        worker = self._worker(results.worker)
        row = 0  # the first output row of the current range
        for start, count in results.ranges:
            first, stop = max(start, 0), min(start + count, self.n)
            if stop <= first:  # not an index range of this task
                self.duplicates += count
                row += count
                continue
            fresh = self.status[first:stop] == 0
            taken = int(fresh.sum())
            self.duplicates += count - taken
            if taken:
                self.status[first:stop][fresh] = code
                self.answered_at[first:stop][fresh] = now - self.started
                self.workers[first:stop][fresh] = worker
                self.versions[first:stop][fresh] = -1 if results.version is None else results.version
                self.remaining -= taken
                if served and results.outputs is not None:
                    rows = slice(row + first - start, row + stop - start)
                    self.blocks.append(ServedBlock(np.arange(first, stop)[fresh], _take(results.outputs[rows], fresh),
                                                   results.rate))
            row += count


def _take(outputs: np.ndarray | list[Any], mask: np.ndarray) -> np.ndarray | list[Any]:
    if mask.all():
        return outputs
    if isinstance(outputs, np.ndarray):
        return outputs[mask]
    return [value for value, keep in zip(outputs, mask.tolist(), strict=True) if keep]


class ResultRouter:
    def __init__(self, client: aioredis.Redis, stream: str, on_ready: Callable[[str], None] | None = None,
                 on_stage: Callable[[str, float], None] | None = None) -> None:
        self.client = client
        self.stream = stream
        self.on_ready = on_ready
        self.on_stage = on_stage  # (stage, seconds) for each served results entry (a run of mini-batches: compute spans them): where its latency went
        self.waiters: dict[str, TaskWaiter] = {}
        self.late_results = 0
        self.duplicates = 0
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()
        self._stopping = False

    def open(self, task: str, n: int, started: float) -> TaskWaiter:
        waiter = self.waiters[task] = TaskWaiter(n, started)
        return waiter

    def close(self, task: str) -> None:
        waiter = self.waiters.pop(task, None)
        if waiter is not None:
            self.duplicates += waiter.duplicates

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="result-router")
        await self._started.wait()

    async def stop(self) -> None:
        """Ends the read loop: cancels the read in flight and, should the cancel be lost, the flag ends the loop after
        that read (at most its XREAD's block). A cancel alone is not enough: redis-py's read returned normally from a
        cancelled XREAD on Python 3.11 (seen in a test: the router read on, 'cancelling', until the test timed out)."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})  # not `await task` under suppress: the caller's own cancel must get out
            if not self._task.cancelled():
                self._task.exception()  # shutting down: an error of the loop's is not reported, only retrieved

    async def _last_id(self) -> bytes | str:
        newest = await self.client.xrevrange(self.stream, count=1)
        return newest[0][0] if newest else "0-0"

    async def _run(self) -> None:
        last: bytes | str = "0-0"
        try:
            last = await self._last_id()
        finally:
            self._started.set()
        backoff, throttle = Backoff(base_s=0.05, cap_s=2.0), Throttle(5.0)
        while not self._stopping:
            try:
                response = await self.client.xread({self.stream: last}, block=READ_BLOCK_MS, count=1000)
            except RedisError as error:
                if throttle.ready() is not None:
                    log.warning("reading results failed (%s); retrying", error)
                await asyncio.sleep(backoff.next_delay())  # back off from a failing server, then block again
                last = await self._resume_from(last)
                continue
            backoff.reset()
            finished = False
            for _stream, entries in response or ():
                for entry_id, fields in entries:
                    last = entry_id
                    raw = fields.get(b"m") or fields.get("m")
                    if raw is not None:
                        finished |= self.dispatch(raw)
            if finished:
                # The requests just completed answer first: their tasks were woken before this one, so one turn
                # of the loop lets them build and write their answers before the next read is sent (a 1-instance
                # request otherwise waited for the XREAD round of Python in front of it).
                await asyncio.sleep(0)

    async def _resume_from(self, last: bytes | str) -> bytes | str:
        """After an outage: a Redis that restarted without its data starts the stream over at small ids,
        which an XREAD after our old id would never return; read such a new stream from its start."""
        try:
            newest = await self._last_id()
        except RedisError:
            return last
        if _stream_id(newest) < _stream_id(last):
            log.warning("the results stream restarted (Redis lost its data); reading it from the start")
            return "0-0"
        return last

    def _stages(self, sent_at: float, timing: list[float], published_at: float, received_at: float) -> None:
        """``to_predictor`` (done to read here) in two parts as well: ``publish`` (the worker's hold and encoding of
        the entry, done to its ``at`` stamp just before the XADD) and ``results_hop`` (the XADD to this read)."""
        polled, began, done = timing
        assert self.on_stage is not None
        for stage, seconds in (("to_worker", polled - sent_at), ("queued", began - polled),
                               ("compute", done - began), ("to_predictor", received_at - done),
                               ("publish", published_at - done), ("results_hop", received_at - published_at)):
            self.on_stage(stage, max(seconds, 0.0))

    def dispatch(self, raw: bytes) -> bool:
        """Hand one entry to its task; True when that completed the task (its request can answer now)."""
        try:
            message = decode_entry(raw)
        except ValueError:
            log.warning("skipping a malformed results entry")
            return False
        if isinstance(message, Ready):
            if self.on_ready is not None:
                self.on_ready(message.worker)
            return False
        if not isinstance(message, Results):
            return False
        waiter = self.waiters.get(message.task)
        if waiter is None:
            self.late_results += message.count
            return False
        waiter.answer(message, time.perf_counter())
        if message.timing and len(message.timing) == 3 and self.on_stage is not None:
            self._stages(waiter.sent_at, message.timing, message.at, time.time())
        if message.report:
            waiter.reports.append(message.report)
        if waiter.remaining == 0 and not waiter.event.is_set():
            waiter.event.set()
            return True
        return False
