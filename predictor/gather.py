"""Gathering answers: one blocking reader of the job's Redis results stream hands each result to its task.

Each request registers a :class:`TaskWaiter` before its instances are queued; :class:`ResultRouter` runs one
``XREAD BLOCK`` loop (no polling with sleeps) and dispatches every entry to its waiter. The first answer
for a ``(task, index)`` wins: redelivered duplicates after a worker failure are counted and ignored, and
answers for tasks already answered (past their deadline) are counted as late.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from easel.backoff import Backoff, Throttle
from easel.serving import SERVED, decode_entry

log = logging.getLogger("easel.predictor")


def _stream_id(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


class TaskWaiter:
    """The answers of one task so far; ``event`` is set when every instance has one."""

    __slots__ = ("answered_at", "duplicates", "event", "n", "outputs", "rates", "remaining", "reports", "sent_at",
                 "started", "status", "versions", "workers")

    def __init__(self, n: int, started: float) -> None:
        self.n = n
        self.started = started  # perf_counter() when the request arrived
        self.sent_at = time.time()  # wall clock, reset when its instances are queued
        self.status: list[str | None] = [None] * n
        self.outputs: list[Any] = [None] * n
        self.rates: list[float | None] = [None] * n
        self.workers: list[str | None] = [None] * n
        self.versions: list[int | None] = [None] * n  # the model version that answered each instance
        self.answered_at: list[float] = [0.0] * n
        self.remaining = n
        self.duplicates = 0
        self.reports: list[dict[str, Any]] = []
        self.event = asyncio.Event()

    def answer(self, index: int, status: str, rate: float | None, output: Any, worker: str, now: float,
               version: int | None = None) -> None:
        if not 0 <= index < self.n or self.status[index] is not None:
            self.duplicates += 1
            return
        self.status[index] = status
        if status == SERVED:
            self.outputs[index] = output
            self.rates[index] = rate
        self.workers[index] = worker
        self.versions[index] = version
        self.answered_at[index] = now - self.started
        self.remaining -= 1


class ResultRouter:
    def __init__(self, client: aioredis.Redis, stream: str, on_ready: Callable[[str], None] | None = None,
                 on_stage: Callable[[str, float], None] | None = None) -> None:
        self.client = client
        self.stream = stream
        self.on_ready = on_ready
        self.on_stage = on_stage  # (stage, seconds) for each served mini-batch: where its latency went
        self.waiters: dict[str, TaskWaiter] = {}
        self.late_results = 0
        self.duplicates = 0
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

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
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError, Exception):  # shutting down: nothing to report
                await self._task

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
        while True:
            try:
                response = await self.client.xread({self.stream: last}, block=1000, count=1000)
            except RedisError as error:
                if throttle.ready() is not None:
                    log.warning("reading results failed (%s); retrying", error)
                await asyncio.sleep(backoff.next_delay())  # back off from a failing server, then block again
                last = await self._resume_from(last)
                continue
            backoff.reset()
            for _stream, entries in response or ():
                for entry_id, fields in entries:
                    last = entry_id
                    raw = fields.get(b"m") or fields.get("m")
                    if raw is not None:
                        self.dispatch(raw)

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

    def _stages(self, sent_at: float, timing: list[float], received_at: float) -> None:
        polled, began, done = timing
        assert self.on_stage is not None
        for stage, seconds in (("to_worker", polled - sent_at), ("queued", began - polled),
                               ("compute", done - began), ("to_predictor", received_at - done)):
            self.on_stage(stage, max(seconds, 0.0))

    def dispatch(self, raw: bytes) -> None:
        try:
            message = decode_entry(raw)
        except Exception:  # noqa: BLE001 - a malformed entry is skipped
            log.warning("skipping a malformed results entry")
            return
        kind = message.get("kind")
        if kind == "ready":
            if self.on_ready is not None:
                self.on_ready(str(message.get("worker")))
            return
        if kind != "results":
            return
        waiter = self.waiters.get(message.get("task"))
        items = message.get("items") or []
        if waiter is None:
            self.late_results += len(items)
            return
        now = time.perf_counter()
        worker = str(message.get("worker"))
        version = message.get("v")
        for index, status, rate, output in items:
            waiter.answer(int(index), str(status), rate, output, worker, now, version)
        timing = message.get("t")
        if timing and self.on_stage is not None:
            self._stages(waiter.sent_at, timing, time.time())
        report = message.get("report")
        if report:
            waiter.reports.append(report)
        if waiter.remaining == 0:
            waiter.event.set()
