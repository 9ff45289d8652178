"""What a worker holds between Kafka and the model: tasks waiting to run (EDF), and offsets not yet safe to commit.

Both are shared by the consumer thread (which adds what it polls and commits) and the executor thread (which
takes the most urgent task, runs it and marks its messages done), so each guards itself with a lock.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

from easel.serving_wire import MiniBatch

# Where a message came from: a ``kafka.TopicPartition`` in the worker (it reads every generation of its job's
# requests topic), anything hashable in a test.
Partition = Hashable


@dataclass(slots=True)
class Held:
    """One mini-batch of a polled message, and where it came from (a message of several mini-batches is held as
    several, sharing its offset)."""

    batch: MiniBatch
    partition: Partition
    offset: int


@dataclass(slots=True)
class Group:
    """The mini-batches of one task this worker holds (possibly from several partitions after a rebalance)."""

    task: str
    deadline_at: float
    first_seen: float
    items: list[Held] = field(default_factory=list)
    expected: dict[Partition, int] = field(default_factory=dict)  # partition -> the task's n_part there
    starts: set[int] = field(default_factory=set)  # the first index of each mini-batch held
    instances: int = 0

    @property
    def complete(self) -> bool:
        return self.instances >= sum(self.expected.values())

    def n_mb(self, batch_size: int) -> int:
        return math.ceil(self.instances / batch_size)


class OffsetTracker:
    """Per partition: offsets polled but not yet answered, and the next offset to poll.

    The committable offset of a partition is its smallest unanswered offset (or, with none, one past the
    highest polled): everything before it has had its result published, so committing it is at-least-once. A
    message of several mini-batches is answered once each of them is (``received(..., parts=k)``, then ``done``
    once per part).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[Partition, dict[int, int]] = {}  # offset -> its parts not answered yet
        self._next: dict[Partition, int] = {}
        self._committed: dict[Partition, int] = {}

    def assign(self, partitions: Iterable[Partition]) -> None:
        with self._lock:
            for p in partitions:
                self._pending.setdefault(p, {})

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Partitions revoked in a rebalance: their new owner answers whatever we did not commit."""
        with self._lock:
            for p in partitions:
                self._pending.pop(p, None)
                self._next.pop(p, None)
                self._committed.pop(p, None)

    def received(self, partition: Partition, offset: int, parts: int = 1) -> None:
        if parts < 1:
            raise ValueError(f"parts must be >= 1, got {parts}")
        with self._lock:
            pending = self._pending.setdefault(partition, {})
            pending[offset] = pending.get(offset, 0) + parts
            if offset + 1 > self._next.get(partition, 0):
                self._next[partition] = offset + 1

    def done(self, partition: Partition, offset: int) -> None:
        with self._lock:
            pending = self._pending.get(partition)
            if pending is not None and offset in pending:
                pending[offset] -= 1
                if pending[offset] <= 0:
                    del pending[offset]

    def committable(self, partitions: Iterable[Partition] | None = None) -> dict[Partition, int]:
        """Offsets that moved since the last :meth:`mark_committed`: ``{partition: offset to commit}``."""
        with self._lock:
            out = {}
            for p in (self._pending if partitions is None else partitions):
                if p not in self._next:
                    continue
                pending = self._pending.get(p) or ()
                offset = min(pending) if pending else self._next[p]
                if offset > self._committed.get(p, -1):
                    out[p] = offset
            return out

    def mark_committed(self, offsets: dict[Partition, int]) -> None:
        with self._lock:
            for p, offset in offsets.items():
                if p in self._next:
                    self._committed[p] = max(self._committed.get(p, -1), offset)

    def unanswered(self, partitions: Iterable[Partition] | None = None) -> int:
        """Messages polled and not answered yet (of ``partitions``, or of all)."""
        with self._lock:
            if partitions is None:
                return sum(len(v) for v in self._pending.values())
            return sum(len(self._pending.get(p) or ()) for p in partitions)

    def committed_offset(self, partition: Partition) -> int | None:
        with self._lock:
            return self._committed.get(partition)


class TaskBook:
    """Tasks waiting for the executor, served earliest-deadline-first.

    ``take`` blocks until a task is available (or the book is closed and empty). Tasks whose deadline
    (less ``margin_s``) has passed are purged unrun: their predictor has answered them as dropped already.
    A task whose instances have not all arrived yet is given up to ``assemble_s`` (and at most a tenth of
    its time) for the rest.
    """

    def __init__(self, offsets: OffsetTracker, margin_s: float = 0.0, assemble_s: float = 0.05,
                 on_expired: Callable[[int], object] | None = None) -> None:
        self.offsets = offsets
        # told how many instances each task purged unrun had (the worker's ``expired`` metric), under the lock
        self.on_expired = on_expired
        self.margin_s = margin_s
        self.assemble_s = assemble_s
        self._cond = threading.Condition()
        self._groups: dict[str, Group] = {}
        self._shares: dict[tuple[str, Partition], float] = {}  # (task, partition) seen -> its deadline
        self._closed = False
        self.expired_instances = 0
        self.duplicates = 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._groups)

    def held(self, task: str) -> int:
        """Instances of ``task`` waiting in the book (the part of a share that arrived after the rest was taken)."""
        with self._cond:
            group = self._groups.get(task)
            return group.instances if group is not None else 0

    def queued_instances(self) -> int:
        with self._cond:
            return sum(g.instances for g in self._groups.values())

    def add(self, held: Iterable[Held], now: float | None = None) -> list[tuple[int, float]]:
        """Add polled messages; returns, per newly seen (task, partition) share, its instance count and the seconds
        left until its deadline as its first mini-batch arrived (the most time any plan of it can have)."""
        now = time.time() if now is None else now
        arrivals = []
        with self._cond:
            if len(self._shares) > 1024:
                self._shares = {k: d for k, d in self._shares.items() if d > now}
            for h in held:
                r = h.batch
                group = self._groups.get(r.task)
                if group is None:
                    group = self._groups[r.task] = Group(r.task, r.deadline_at, now)
                if r.start in group.starts:  # the same mini-batch twice (a redelivery): answer it once
                    self.duplicates += r.count
                    self.offsets.done(h.partition, h.offset)
                    continue
                if h.partition not in group.expected:
                    group.expected[h.partition] = r.n_part
                if (r.task, h.partition) not in self._shares:  # a share arrives once, even if run in parts
                    self._shares[(r.task, h.partition)] = r.deadline_at
                    arrivals.append((r.n_part, r.deadline_at - now))
                group.deadline_at = min(group.deadline_at, r.deadline_at)
                group.items.append(h)
                group.starts.add(r.start)
                group.instances += r.count
            self._cond.notify_all()
        return arrivals

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def drop_partitions(self, partitions: Iterable[Partition]) -> int:
        """Forget queued messages of revoked partitions (their new owner gets them); returns how many messages."""
        wanted = set(partitions)
        removed = 0
        with self._cond:
            for task in list(self._groups):
                group = self._groups[task]
                keep = [h for h in group.items if h.partition not in wanted]
                removed += len(group.items) - len(keep)
                group.items = keep
                group.starts = {h.batch.start for h in keep}
                group.instances = sum(h.batch.count for h in keep)
                for p in wanted:
                    group.expected.pop(p, None)
                if not group.items:
                    del self._groups[task]
        return removed

    def _purge(self, now: float) -> None:
        for task in [t for t, g in self._groups.items() if g.deadline_at - self.margin_s <= now]:
            group = self._groups.pop(task)
            self.expired_instances += group.instances
            if self.on_expired is not None:
                self.on_expired(group.instances)
            for h in group.items:
                self.offsets.done(h.partition, h.offset)

    def take(self, timeout_s: float | None = None) -> Group | None:
        """The most urgent task (removed from the book), or None if closed and empty / on timeout."""
        give_up = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while True:
                now = time.time()
                self._purge(now)
                if self._groups:
                    group = min(self._groups.values(), key=lambda g: (g.deadline_at, g.first_seen))
                    patience = min(self.assemble_s, 0.1 * (group.deadline_at - group.first_seen))
                    wait = min(group.first_seen + patience, group.deadline_at - self.margin_s) - now
                    if group.complete or wait <= 0 or self._closed:
                        del self._groups[group.task]
                        group.items.sort(key=lambda h: h.batch.start)
                        return group
                    self._cond.wait(wait)
                    continue
                if self._closed:
                    return None
                remaining = None if give_up is None else give_up - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def backlog(self, batch_size: int, now: float | None = None) -> list[tuple[int, float]]:
        """Waiting tasks in EDF order as ``(n_mb, seconds left)`` (what the scheduler's budget rule reads)."""
        now = time.time() if now is None else now
        with self._cond:
            groups = sorted(self._groups.values(), key=lambda g: (g.deadline_at, g.first_seen))
            return [(g.n_mb(batch_size), g.deadline_at - self.margin_s - now) for g in groups]
