"""Scheduling policies behind one interface: the exact scheduler and the baselines it is measured against.

A policy sees a task (``n_mb`` mini-batches, ``deadline`` = seconds left until the task's deadline) and
returns a Plan. Baselines that do not look at the deadline may plan more work than fits; the Plan marks
what would finish late, and the simulator charges the worker for running it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from scheduler.cache import PlanCache
from scheduler.plan import Plan, build_plan, search_budget
from scheduler.profile import Profile
from scheduler.solve import solve


@runtime_checkable
class Policy(Protocol):
    name: str
    profile: Profile

    def decide(self, n_mb: int, deadline: float, backlog: Sequence[tuple[int, float]] = ()) -> Plan:
        """Plan a task of ``n_mb`` mini-batches with ``deadline`` seconds left.

        ``backlog`` lists the tasks already waiting behind it on the same worker, in run order, as
        ``(n_mb, seconds left until their deadline)``; policies may ignore it.
        """
        ...

    def observe(self, model: int, batch_time: float) -> None:
        """Feedback: one mini-batch of sub-model ``model`` took ``batch_time`` seconds."""
        ...


def _single_model(profile: Profile, model: int, n_mb: int, count: int, deadline: float, name: str) -> Plan:
    counts = [0] * len(profile)
    counts[model] = count
    return build_plan(profile, counts, n_mb, max(deadline, 0.0), name)


class SchedulerPolicy:
    """Easel's scheduler: the exact optimum for a time budget, optionally through a PlanCache.

    The budget is the time left until the task's deadline, capped so that every task already waiting
    behind it on this worker can still be served in full at the fastest width by its own deadline —
    but never below what this task needs at the fastest width (under overload, protecting the queue
    would only trade a sure mini-batch now for an equal one later). Why: spending all the time left on
    the head task is optimal for that task alone, but it keeps the queue at the edge of the deadline,
    and then any burst drops whole tasks. ``queue_aware=False`` gives that myopic variant.
    """

    def __init__(
        self,
        profile: Profile,
        cache: PlanCache | None = None,
        queue_aware: bool = True,
        name: str | None = None,
    ) -> None:
        self.profile = profile
        self.cache = cache
        self.queue_aware = queue_aware
        self.name = name or ("scheduler" if queue_aware else "scheduler (myopic)")
        fr = profile.frontier
        self._t_fast = fr.ts[0] if fr.ts else 0.0

    def budget(self, n_mb: int, deadline: float, backlog: Sequence[tuple[int, float]] = ()) -> float:
        budget = max(deadline, 0.0)
        if not self.queue_aware or not backlog or n_mb == 0:
            return budget
        floor = min(budget, n_mb * self._t_fast)
        share = budget
        queued = n_mb
        for n_j, left_j in backlog:
            queued += n_j
            share = min(share, left_j * n_mb / queued)
        return max(floor, share)

    def decide(self, n_mb: int, deadline: float, backlog: Sequence[tuple[int, float]] = ()) -> Plan:
        budget = self.budget(n_mb, deadline, backlog)
        if self.cache is not None:
            return self.cache.plan(self.profile, n_mb, budget)
        return solve(self.profile, n_mb, budget)

    def observe(self, model: int, batch_time: float) -> None:
        pass


class FixedWidthPolicy:
    """A static model at one slice rate: runs every mini-batch there, deadline or not (late ones count 0)."""

    def __init__(self, profile: Profile, rate: float) -> None:
        self.profile = profile
        self.model = profile.index_of_rate(rate)
        self.name = f"fixed r={rate:g}"

    def decide(self, n_mb: int, deadline: float, backlog: Sequence[tuple[int, float]] = ()) -> Plan:
        return _single_model(self.profile, self.model, n_mb, n_mb, deadline, self.name)

    def observe(self, model: int, batch_time: float) -> None:
        pass


class ClipperPolicy:
    """Clipper-style: always the full (most accurate) model; mini-batches that would miss the deadline
    are dropped up front rather than served late."""

    def __init__(self, profile: Profile, name: str = "clipper") -> None:
        self.profile = profile
        self.model = profile.most_accurate
        self.name = name

    def decide(self, n_mb: int, deadline: float, backlog: Sequence[tuple[int, float]] = ()) -> Plan:
        t = self.profile.batch_times[self.model]
        fit = min(n_mb, int(search_budget(max(deadline, 0.0)) / t))
        return _single_model(self.profile, self.model, n_mb, fit, deadline, self.name)

    def observe(self, model: int, batch_time: float) -> None:
        pass


class ModelSwitchingPolicy:
    """Model-Switching's Algorithm 1: the most accurate model whose measured p99 per-instance latency meets
    the deadline, else the fastest; the whole task runs on it (no dropping, late answers count 0).

    Per-instance latency of a task run on one model is the completion time of its mini-batch, so its p99
    is ``ceil(0.99 * n_mb)`` mini-batches at the measured p99 mini-batch time. Measurements come from
    ``observe`` (a sliding window per model), seeded with the profiled time.
    """

    def __init__(self, profile: Profile, window: int = 1000, quantile: float = 0.99) -> None:
        if not 0.0 < quantile <= 1.0:
            raise ValueError(f"quantile must be in (0, 1], got {quantile}")
        self.profile = profile
        self.quantile = quantile
        self.name = "model-switching"
        self._samples = [deque([t], maxlen=window) for t in profile.batch_times]
        self._p99 = list(profile.batch_times)
        self._stale = [False] * len(profile)  # recompute a quantile only when a decision needs it
        self._by_accuracy = sorted(range(len(profile)), key=lambda i: (-profile.accuracies[i], i))

    def latency_p99(self, model: int, n_mb: int) -> float:
        if self._stale[model]:
            self._p99[model] = float(np.quantile(np.fromiter(self._samples[model], float), self.quantile))
            self._stale[model] = False
        return math.ceil(self.quantile * n_mb) * self._p99[model]

    def decide(self, n_mb: int, deadline: float, backlog: Sequence[tuple[int, float]] = ()) -> Plan:
        for i in self._by_accuracy:
            if self.latency_p99(i, n_mb) <= deadline:
                return _single_model(self.profile, i, n_mb, n_mb, deadline, self.name)
        return _single_model(self.profile, self.profile.fastest, n_mb, n_mb, deadline, self.name)

    def observe(self, model: int, batch_time: float) -> None:
        self._samples[model].append(batch_time)
        self._stale[model] = True


def baseline_policies(profile: Profile) -> list[Policy]:
    """Every baseline: a fixed width per slice rate, Model-Switching and Clipper."""
    fixed: list[Policy] = [FixedWidthPolicy(profile, r) for r in sorted(profile.rates, reverse=True)]
    return [*fixed, ModelSwitchingPolicy(profile), ClipperPolicy(profile)]
