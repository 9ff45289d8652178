"""Which policy plans a worker's tasks, and the live profile it plans with.

``make_policy`` turns a policy name (``EASEL_SERVING_POLICY`` or ``--policy``) into a ``scheduler`` Policy:
Easel's scheduler (the default), or one of the baselines the benchmark compares it with. ``LivePolicy``
wraps it with what the paper leaves out: the profile's mini-batch times ``t_i`` follow the machine (an
EWMA of measured batch times; optionally plus ``spread`` EWMA standard deviations as slack), and when they
drift the policy is rebuilt on the new profile, keeping its arrival-rate estimate (a policy with an estimate
of its own gets its recent arrivals replayed) so its view of the load survives the rebuild.

Only widths that run get measured, so two guards keep an estimate from going stale or wrong for good: one
slow mini-batch (a GIL hand-off, a burst on a peer process) moves the EWMA by at most ``OUTLIER_CAP`` times
its current value; and a width not measured for ``fresh_s`` is estimated from its calibrated time scaled
by how much the nearest recently measured width has slowed down (or sped up) relative to its own
calibration. Without them a worker that once saw a stalled narrow batch never runs that width again.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence

from scheduler import (
    DEFAULT_TIME_BUDGET,
    ArrivalRate,
    ClipperPolicy,
    FixedWidthPolicy,
    LateRule,
    ModelSwitchingPolicy,
    Plan,
    PlanCache,
    Policy,
    Profile,
    SchedulerPolicy,
    TimeNoise,
)

POLICY_HELP = "scheduler[:priced|queue|myopic] (default), fixed:<rate>, model-switching, clipper"
OUTLIER_CAP = 2.0  # one observation counts as at most this many times the current estimate


def make_policy(name: str, profile: Profile, cache: PlanCache | None = None, rate_window_s: float = 30.0,
                arrivals: ArrivalRate | None = None, confidence: float = 3.0,
                time_budget: float | None = DEFAULT_TIME_BUDGET, safety: float = 0.0,
                noise: TimeNoise | None = None) -> Policy:
    """``arrivals``: an arrival-rate estimate for the scheduler to use (and update) instead of a new one;
    ``time_budget``: the most seconds one of the scheduler's decisions may search; ``safety``, ``noise``: the
    standard deviations of a plan's total time the scheduler keeps free, and the spread estimate it keeps."""
    name = name.strip().lower()
    if name == "scheduler" or name.startswith("scheduler:"):
        mode = name.partition(":")[2] or "priced"
        return SchedulerPolicy(profile, cache=cache, mode=mode, rate_window=rate_window_s, confidence=confidence,
                               rate=arrivals, time_budget=time_budget, safety=safety, noise=noise)
    if name.startswith("fixed:"):
        rate = float(name.partition(":")[2])
        matches = [r for r in profile.rates if math.isclose(r, rate)]
        if not matches:
            raise ValueError(f"fixed width {rate} is not one of the model's slice rates {list(profile.rates)}")
        return FixedWidthPolicy(profile, matches[0])
    if name == "model-switching":
        return ModelSwitchingPolicy(profile)
    if name == "clipper":
        return ClipperPolicy(profile)
    raise ValueError(f"unknown serving policy {name!r}; use {POLICY_HELP}")


class LivePolicy:
    """A policy over a profile whose times track measurements.

    ``observe`` updates the EWMA (mean and variance) of each sub-model's mini-batch time from full
    mini-batches; plans use mean + ``spread`` standard deviations (:meth:`estimate`); ``refresh``
    (between tasks) rebuilds the profile and the policy once some ``t_i`` has drifted by more than
    ``tolerance`` relative to the profile in use, at most every ``min_interval_s``. Model-Switching
    measures latencies itself and is never rebuilt. ``safety``: standard deviations of a plan's total time the
    scheduler keeps free (``EASEL_SERVING_SAFETY_SIGMAS``), on a spread of batch times (``TimeNoise``) measured
    for the worker's life like its load. Both reserves (``safety`` and ``rate_confidence``) are the scheduler's to
    apply, and it applies neither past capacity: a share that cannot be served at the fastest width is planned
    all-fastest up to its deadline with or without them (``SchedulerPolicy``). How its plans run (re-planning, the
    late rule) is the wrapped policy's, so the worker's ``PlanExecutor`` treats a LivePolicy like any policy.
    """

    def __init__(self, name: str, rates: Sequence[float], accuracies: Sequence[float], times: Sequence[float],
                 cache: PlanCache | None = None, alpha: float = 0.2, tolerance: float = 0.1,
                 min_interval_s: float = 1.0, rate_window_s: float = 10.0, spread: float = 0.0,
                 fresh_s: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 rate_confidence: float = 1.0, time_budget: float | None = DEFAULT_TIME_BUDGET,
                 safety: float = 0.0) -> None:
        self.name = name
        self.rates = tuple(float(r) for r in rates)
        self.accuracies = tuple(float(p) for p in accuracies)
        self.ewma = [max(float(t), 1e-6) for t in times]
        self.calibrated = tuple(self.ewma)
        self.fresh_s = fresh_s
        self.clock = clock
        self._seen = [-math.inf for _ in times]  # clock() of each width's last full mini-batch
        self.ewvar = [0.0 for _ in times]  # EWMA of the squared deviation from the mean
        self.spread = spread
        self.cache = cache
        self.alpha = alpha
        self.tolerance = tolerance
        self.min_interval_s = min_interval_s
        self.rate_window_s = rate_window_s
        self.profile = Profile(self.rates, self.accuracies, self.planning_times())
        # one load estimate for the worker's life: rebuilding the policy on new batch times keeps it
        self.arrivals = ArrivalRate(rate_window_s, confidence=rate_confidence)
        self.time_budget = time_budget
        # and one estimate of how far batch times stray from the plan's, for the scheduler's safety reserve
        self.safety = safety
        self.noise = TimeNoise()
        self.policy = self._make()
        self.rebuilds = 0
        self._last_rebuild = -math.inf
        self._arrivals: deque[tuple[float, int]] = deque()

    @property
    def replans(self) -> bool:
        return self.policy.replans

    @property
    def late_rule(self) -> LateRule:
        return self.policy.late_rule

    def estimate(self, model: int) -> float:
        """Seconds a full mini-batch of ``model`` is planned to take: the EWMA mean plus ``spread`` EWMA
        standard deviations. The default spread is 0: the worker re-plans whenever the clock runs behind or ahead
        of the plan, and on the shared-CPU benchmark a one-deviation slack cost more (needless drops of the
        fastest width, whose relative noise is largest) than the overruns it avoided."""
        return self._mean(model, self.clock()) + self.spread * self.ewvar[model] ** 0.5

    def _mean(self, model: int, now: float) -> float:
        if now - self._seen[model] <= self.fresh_s:
            return self.ewma[model]
        fresh = [j for j, seen in enumerate(self._seen) if now - seen <= self.fresh_s]
        if not fresh:  # idle for a while: the most recently measured width is the reference
            latest = max(range(len(self._seen)), key=self._seen.__getitem__)
            if self._seen[latest] == -math.inf or latest == model:
                return self.ewma[model]
            fresh = [latest]
        ref = min(fresh, key=lambda j: abs(self.rates[j] - self.rates[model]))
        return self.calibrated[model] * self.ewma[ref] / self.calibrated[ref]

    def planning_times(self) -> tuple[float, ...]:
        return tuple(self.estimate(i) for i in range(len(self.ewma)))

    def on_arrival(self, n_mb: int, now: float) -> None:
        self._arrivals.append((now, n_mb))
        while self._arrivals and self._arrivals[0][0] < now - self.rate_window_s:
            self._arrivals.popleft()
        self.policy.on_arrival(n_mb, now)

    def observe(self, model: int, seconds: float, full: bool = True) -> None:
        self.policy.observe(model, seconds)
        if full:
            if self.clock() - self._seen[model] > self.fresh_s:
                self.ewma[model] = self._mean(model, self.clock())  # pick up from the estimate in use
            self._seen[model] = self.clock()
            deviation = min(seconds, OUTLIER_CAP * self.ewma[model]) - self.ewma[model]
            self.ewma[model] += self.alpha * deviation
            self.ewvar[model] = (1 - self.alpha) * (self.ewvar[model] + self.alpha * deviation * deviation)

    def drift(self) -> float:
        return max(abs(e - t) / t for e, t in zip(self.planning_times(), self.profile.batch_times, strict=True))

    def refresh(self, now: float) -> bool:
        """Rebuild on the measured times if they drifted; True if it did."""
        if isinstance(self.policy, ModelSwitchingPolicy) or now - self._last_rebuild < self.min_interval_s:
            return False
        if self.drift() <= self.tolerance:
            return False
        self.profile = Profile(self.rates, self.accuracies, self.planning_times())
        self.policy = self._make()
        if getattr(self.policy, "rate", None) is not self.arrivals:  # a policy with its own view of the load
            for at, n_mb in self._arrivals:
                self.policy.on_arrival(n_mb, at)
        self._last_rebuild = now
        self.rebuilds += 1
        return True

    def _make(self) -> Policy:
        return make_policy(self.name, self.profile, self.cache, self.rate_window_s, self.arrivals,
                           time_budget=self.time_budget, safety=self.safety, noise=self.noise)

    def decide(self, n_mb: int, deadline: float, backlog: Sequence[tuple[int, float]] = (),
               now: float | None = None) -> Plan:
        return self.policy.decide(n_mb, max(deadline, 0.0), backlog, now)
