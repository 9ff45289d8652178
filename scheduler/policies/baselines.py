"""The baselines the scheduler is measured against (``SchedulerPolicy`` is in ``scheduler.policies.priced``).

Baselines that do not look at the deadline may plan more work than fits; the Plan marks what would finish
late. Whether that late work runs is the executor's ``LateRule`` (the policy's own, or a stricter shared
one: see ``scheduler.simulate(late_rule=...)``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np

from scheduler.checks import count, real, time_left
from scheduler.plan import Plan, build_plan, search_budget
from scheduler.policies.base import BasePolicy, LateRule, Policy
from scheduler.profile import Profile


def _single_model(profile: Profile, model: int, n_mb: int, run: int, deadline: float, name: str) -> Plan:
    counts = [0] * len(profile)
    counts[model] = run
    return build_plan(profile, counts, n_mb, deadline, name)


class FixedWidthPolicy(BasePolicy):
    """A static model at one slice rate: runs every mini-batch there, deadline or not (late ones count 0)."""

    def __init__(self, profile: Profile, rate: float) -> None:
        self.profile = profile
        self.model = profile.index_of_rate(rate)
        self.name = f"fixed r={rate:g}"

    def decide(
        self, n_mb: int, deadline: float, backlog: Sequence[tuple[int, float]] = (), now: float | None = None
    ) -> Plan:
        n_mb, deadline = count("n_mb", n_mb), time_left(deadline)
        return _single_model(self.profile, self.model, n_mb, n_mb, deadline, self.name)


class ClipperPolicy(BasePolicy):
    """Clipper-style: always the full (most accurate) model; mini-batches that would miss the deadline
    are dropped up front rather than served late."""

    late_rule = LateRule.FIT

    def __init__(self, profile: Profile, name: str = "clipper") -> None:
        self.profile = profile
        self.model = profile.most_accurate
        self.name = name

    def decide(
        self, n_mb: int, deadline: float, backlog: Sequence[tuple[int, float]] = (), now: float | None = None
    ) -> Plan:
        n_mb, deadline = count("n_mb", n_mb), time_left(deadline)
        t = self.profile.batch_times[self.model]
        fit = min(n_mb, int(search_budget(deadline) / t))
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
        quantile = real("quantile", quantile)
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

    def decide(
        self, n_mb: int, deadline: float, backlog: Sequence[tuple[int, float]] = (), now: float | None = None
    ) -> Plan:
        n_mb, deadline = count("n_mb", n_mb), time_left(deadline)
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
