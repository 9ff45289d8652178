"""The policy interface and the baselines the scheduler is measured against (``SchedulerPolicy`` is in
``scheduler.sched_policy``).

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

from scheduler.plan import Plan, build_plan, search_budget
from scheduler.profile import Profile


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

    def on_arrival(self, n_mb: int, now: float) -> None:
        """Feedback: a task of ``n_mb`` mini-batches joined this worker's queue at time ``now``."""
        ...


class BasePolicy:
    """No-op feedback hooks, for policies that do not learn from what they see."""

    name: str
    profile: Profile

    def observe(self, model: int, batch_time: float) -> None:
        pass

    def on_arrival(self, n_mb: int, now: float) -> None:
        pass


def _single_model(profile: Profile, model: int, n_mb: int, count: int, deadline: float, name: str) -> Plan:
    counts = [0] * len(profile)
    counts[model] = count
    return build_plan(profile, counts, n_mb, max(deadline, 0.0), name)


class FixedWidthPolicy(BasePolicy):
    """A static model at one slice rate: runs every mini-batch there, deadline or not (late ones count 0)."""

    def __init__(self, profile: Profile, rate: float) -> None:
        self.profile = profile
        self.model = profile.index_of_rate(rate)
        self.name = f"fixed r={rate:g}"

    def decide(self, n_mb: int, deadline: float, backlog: Sequence[tuple[int, float]] = ()) -> Plan:
        return _single_model(self.profile, self.model, n_mb, n_mb, deadline, self.name)


class ClipperPolicy(BasePolicy):
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


class ModelSwitchingPolicy(BasePolicy):
    """Model-Switching's Algorithm 1: the most accurate model whose measured p99 per-instance latency meets
    the deadline, else the fastest; the whole task runs on it (no dropping, late answers count 0).

    Per-instance latency of a task run on one model is the completion time of its mini-batch, so its p99
    is ``ceil(0.99 * n_mb)`` mini-batches at the measured p99 mini-batch time. Measurements come from
    ``observe`` (a sliding window per model, its quantile refreshed every ``refresh`` samples, as a
    latency monitor would), seeded with the profiled time.
    """

    def __init__(
        self, profile: Profile, window: int = 1000, quantile: float = 0.99, refresh: int = 64
    ) -> None:
        if not 0.0 < quantile <= 1.0:
            raise ValueError(f"quantile must be in (0, 1], got {quantile}")
        self.profile = profile
        self.quantile = quantile
        self.name = "model-switching"
        self._samples = [deque([t], maxlen=window) for t in profile.batch_times]
        self._p99 = list(profile.batch_times)
        self._refresh = max(1, refresh)
        self._fresh = [0] * len(profile)  # samples since the quantile was last computed
        self._by_accuracy = sorted(range(len(profile)), key=lambda i: (-profile.accuracies[i], i))

    def latency_p99(self, model: int, n_mb: int) -> float:
        if self._fresh[model] >= self._refresh:
            self._p99[model] = float(np.quantile(np.fromiter(self._samples[model], float), self.quantile))
            self._fresh[model] = 0
        return math.ceil(self.quantile * n_mb) * self._p99[model]

    def decide(self, n_mb: int, deadline: float, backlog: Sequence[tuple[int, float]] = ()) -> Plan:
        for i in self._by_accuracy:
            if self.latency_p99(i, n_mb) <= deadline:
                return _single_model(self.profile, i, n_mb, n_mb, deadline, self.name)
        return _single_model(self.profile, self.profile.fastest, n_mb, n_mb, deadline, self.name)

    def observe(self, model: int, batch_time: float) -> None:
        self._samples[model].append(batch_time)
        self._fresh[model] += 1


def baseline_policies(profile: Profile) -> list[Policy]:
    """Every baseline: a fixed width per slice rate, Model-Switching and Clipper."""
    fixed: list[Policy] = [FixedWidthPolicy(profile, r) for r in sorted(profile.rates, reverse=True)]
    return [*fixed, ModelSwitchingPolicy(profile), ClipperPolicy(profile)]
