"""Easel's scheduling policy: choose a time budget (and a price of time) for the task at the head of a
worker's queue, then plan it with ``solve`` within the request path's time budget."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from scheduler.checks import count, positive, real, time_left
from scheduler.gc_pause import gc_paused
from scheduler.plan import Plan, feasible_plan, within_deadline
from scheduler.policies.arrival_rate import ArrivalRate
from scheduler.policies.base import BasePolicy, LateRule
from scheduler.policies.time_noise import TimeNoise
from scheduler.profile import Profile
from scheduler.solvers.cache import PlanCache
from scheduler.solvers.solve import DEFAULT_TIME_BUDGET, solve

MODES = ("myopic", "queue", "priced")
# Price time a hair below the hull slope so that, between the two hull models the price makes equal,
# the more accurate one wins (a lexicographic tie-break: reduced value first, then accuracy).
_PRICE_SHADE = 1e-3
# "Next arrival after the deadline" with a little room for float noise in arrival stamps.
_ALONE_RTOL = 1e-6
_LEAST_BUDGET = 1e-6  # a solve left no time still searches its minimum of bounds (exact.MIN_NODES)
# Arrival bursts a task's budget leaves room for, in standard deviations (``SchedulerPolicy.arrival_cap``):
# at 2 the serving profiles' heavier loads still lost to the fastest width by 1-2 standard errors.
_BURST_SIGMAS = 3.0


class SchedulerPolicy(BasePolicy):
    """Plans each task exactly; the modes differ in the budget and the objective handed to the solver.

    * ``myopic`` — budget = all the time left until the task's deadline; maximise its accuracy. Optimal
      for one task alone, but under load it keeps the queue at the edge of the deadline, where the
      budget swings from task to task, and by concavity uneven budgets lose accuracy.
    * ``queue`` — budget = the task's fair share of the time its queue has, ``min_j left_j * n / (n +
      n_1 + ... + n_j)`` over the tasks ``j`` waiting behind it, and never below what the task needs at
      the fastest width (under overload, starving it would only trade a sure mini-batch now for one later).
    * ``priced`` (default) — as ``queue``, capped at the task's long-run share of the worker's time
      (``n_mb`` times the seconds per mini-batch the measured arrival rate leaves, ``long_run_share``),
      and time has a price: the solver maximises
      ``sum n_i (p_i - mu t_i)``, with ``mu`` the slope of the profile's accuracy/time hull at the time
      per mini-batch this worker can afford in the long run and within bursts that outlast a deadline
      (``time_per_mb``). That slope is the Lagrange multiplier of the worker's capacity: in steady state
      the best average is the hull, and pricing keeps each task from buying accuracy off the hull (a model
      that only fills one task's odd leftover time), leaving that time to the next task instead. At light
      load the price is 0 and this is plain accuracy maximisation.

    Why the cap: the queue share sees only work that has arrived. Under random arrivals the next task
    often lands while this one runs, and time this task already spent on wide models cannot be given back
    (the executor re-plans when work arrives behind a share, but only the mini-batches not yet run). On
    profiles where one task alone can fill its whole deadline, spending it all whenever the queue happens
    to be empty left the next arrival to drop mini-batches worth far more than the width bought; the price
    alone cannot stop that, since at the hull slope the two models of a segment are worth the same.

    Time saved is worth a price only if later work can use it. When nothing waits behind the task and the
    next arrival is predicted after its deadline (``ArrivalRate.next_arrival``: periodic tasks spaced by at
    least their deadline), the task gets all its time and no price — the per-task optimum, which is what
    a non-overlapping load can reach.

    Each plan is the best one ``solve`` finds for its (priced) problem and budget within ``time_budget``
    seconds for the whole decision, the plan cache's solves included (exact on measured profiles;
    ``plan.gap`` says otherwise); the returned Plan reports the real
    accuracies. The executor re-plans against the clock (``replans``) and never runs a mini-batch that can
    no longer finish (``LateRule.FIT``).

    ``safety`` (z, default 0: off) keeps z standard deviations of the plan's total time free
    (:class:`TimeNoise`, the spread measured from ``observe``): a plan whose mean time leaves less than that
    in its budget is planned again with the budget less the reserve (never below every mini-batch at the
    fastest width). Why: an overrun drops the last mini-batch, worth far more than the width the tight plan
    bought (see ``scheduler.policies.time_noise``).

    Past capacity the reserves shrink to nothing, by construction. A reserve against lateness is worth something
    only while it trades width for on-time mini-batches; once the task's work no longer fits at the fastest width
    (``n_mb * t_fast >= budget``, the plan already drops), reserving time could only turn servable mini-batches into
    drops. Both reserves are floored there: the safety reserve never cuts the budget below every mini-batch at the
    fastest width, and the rate's confidence only moves the price and the arrival cap, which ``budget`` floors the
    same way; the plan of a share that drops is all-fastest up to the budget, with or without them, at the first
    plan and at every re-plan of its tail. (Tested in ``tests/scheduler/test_scheduler_safety.py``; measured by
    ``benchmarks/scheduler.py --sections e``: reserves on and off give the same accuracy at every load past the
    fastest width's capacity, constant or Poisson arrivals.)
    """

    replans = True
    late_rule = LateRule.FIT

    def __init__(
        self,
        profile: Profile,
        cache: PlanCache | None = None,
        mode: str = "priced",
        rate_window: float = 30.0,
        utilisation: float = 1.0,
        confidence: float = 3.0,
        name: str | None = None,
        rate: ArrivalRate | None = None,
        time_budget: float | None = DEFAULT_TIME_BUDGET,
        safety: float = 0.0,
        noise: TimeNoise | None = None,
    ) -> None:
        if not isinstance(profile, Profile):
            raise ValueError(f"profile must be a scheduler.Profile, got {type(profile).__name__}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        utilisation = real("utilisation", utilisation)
        if not 0.0 < utilisation <= 1.0:
            raise ValueError(f"utilisation must be in (0, 1], got {utilisation}")
        if cache is not None and not isinstance(cache, PlanCache):
            raise ValueError(f"cache must be a scheduler.PlanCache or None, got {type(cache).__name__}")
        self.time_budget = None if time_budget is None else positive("time_budget", time_budget)
        self.safety = real("safety", safety)
        if self.safety < 0.0:
            raise ValueError(f"safety must be >= 0 standard deviations, got {safety}")
        if noise is not None and not isinstance(noise, TimeNoise):
            raise ValueError(f"noise must be a scheduler.TimeNoise or None, got {type(noise).__name__}")
        # ``noise`` lets a caller that rebuilds the policy (new batch times) keep its spread estimate
        self.noise = noise if noise is not None else TimeNoise()
        self.utilisation = utilisation
        # ``rate`` lets a caller that rebuilds the policy (new batch times) keep its load estimate
        self.rate = rate if rate is not None else ArrivalRate(rate_window, confidence)
        self.profile = profile
        self.cache = cache
        self.mode = mode
        self.name = name or ("scheduler" if mode == "priced" else f"scheduler ({mode})")
        fr = profile.frontier
        self._t_fast = fr.ts[0] if fr.ts else 0.0
        # One priced profile per hull segment: there are at most K prices, so build them once.
        self._segments: list[tuple[float, Profile]] = []
        if fr.ts:
            hull = fr.hulls[-1]
            for j, slope in enumerate(hull.slopes):
                mu = slope * (1.0 - _PRICE_SHADE)
                pairs = zip(profile.accuracies, profile.batch_times, strict=True)
                reduced = tuple(max(0.0, p - mu * t) for p, t in pairs)
                self._segments.append((hull.ts[j + 1], Profile(profile.rates, reduced, profile.batch_times)))

    def on_arrival(self, n_mb: int, now: float) -> None:
        self.rate.add(n_mb, now)

    def observe(self, model: int, batch_time: float) -> None:
        self.noise.observe(self.profile.batch_times[model], batch_time)

    def time_per_mb(self) -> float:
        """Long-run time per mini-batch this worker can afford: ``utilisation / rate``.

        ``rate`` is the larger of an upper confidence bound on the arrival rate and the rate arriving work
        sees within a deadline of itself (``ArrivalRate.upper``, ``ArrivalRate.seen``). Why the safety: at
        a utilisation of 1 the queue drifts to the deadline and then drops whole tasks, and a rate
        estimate that happens to come out low would price time too cheaply. Why the second: a burst longer
        than the deadline cannot be spread over the quiet time around it, so under on-off traffic the
        long-run mean prices time far below what it is worth while work is actually arriving — a worker
        would buy wide models at the start of every burst and drop the fastest width's worth of work later.
        """
        rate = max(self.rate.upper(), self.rate.seen())
        return self.utilisation / rate if rate > 0.0 else float("inf")

    def alone(self, deadline: float, backlog: Sequence[tuple[int, float]], now: float | None) -> bool:
        """Nothing waits behind the task and the next one is predicted after its deadline."""
        if backlog or now is None:
            return False
        nxt = self.rate.next_arrival()
        return nxt is None or now + deadline <= nxt + _ALONE_RTOL * deadline

    def long_run_share(self) -> float:
        """Seconds per mini-batch this worker has in the long run: ``utilisation`` over the arrival rate
        itself (``ArrivalRate.mean``, or the rate arrivals see within a deadline if that is larger), not
        its upper bound; ``inf`` before any load is measured."""
        rate = max(self.rate.mean(), self.rate.seen())
        return self.utilisation / rate if rate > 0.0 else float("inf")

    def budget(self, n_mb: int, deadline: float, backlog: Sequence[tuple[int, float]] = ()) -> float:
        budget = max(deadline, 0.0)
        if self.mode == "myopic" or n_mb == 0:
            return budget
        floor = min(budget, n_mb * self._t_fast)
        share = budget
        queued = n_mb
        for n_j, left_j in backlog:
            queued += n_j
            share = min(share, left_j * n_mb / queued)
        if math.isnan(share):  # a malformed backlog entry
            raise ValueError(f"backlog must hold (n_mb, seconds left) pairs of finite numbers, got {backlog!r}")
        if self.mode == "priced":
            share = min(share, self.arrival_cap(n_mb, budget))
        return max(floor, share)

    def arrival_cap(self, n_mb: int, deadline: float) -> float:
        """The most a task may spend given the work that will arrive before its deadline (``inf`` before any
        load is measured): the larger of

        * its long-run share, ``n_mb * long_run_share()`` — what the worker can give every task; and
        * ``deadline - reserve``: arrivals are a random walk of drift ``rho`` (load at the fastest width,
          per second, at the rate's upper bound: this is the safety margin) and spread ``sigma``; work
          arriving within ``s`` seconds still fits at the fastest width unless it runs ``_BURST_SIGMAS``
          spreads above its mean, and the most that excess can exceed the ``(1 - rho) s`` of spare time is
          ``z^2 sigma^2 / (4 (1 - rho))`` (the maximum of a Brownian motion with drift). With a deadline
          long against a task's time it is a small part of it.
        """
        share = self.long_run_share()
        if math.isinf(share):
            return math.inf
        rho = self._t_fast / self.time_per_mb()
        if rho >= 1.0:
            return n_mb * share
        # Tasks of about this one's size arriving at rate rho / (n_mb t_fast): sigma^2 = rho * n_mb * t_fast.
        reserve = _BURST_SIGMAS**2 * rho * n_mb * self._t_fast / (4.0 * (1.0 - rho))
        return max(n_mb * share, deadline - reserve)

    def priced_profile(self) -> Profile:
        """The profile with accuracies ``max(0, p - mu t)`` for the current price (itself when mu = 0)."""
        per_mb = self.time_per_mb()
        for end, priced in self._segments:
            if per_mb <= end:
                return priced
        return self.profile

    @gc_paused
    def decide(
        self, n_mb: int, deadline: float, backlog: Sequence[tuple[int, float]] = (), now: float | None = None
    ) -> Plan:
        n_mb, deadline = count("n_mb", n_mb), time_left(deadline)
        if now is not None:
            now = real("now", now)
        self.rate.cover(deadline)
        if self.mode != "myopic" and self.alone(deadline, backlog, now):
            budget, target = deadline, self.profile  # the per-task optimum: no later work to leave time to
        else:
            budget = self.budget(n_mb, deadline, backlog)
            target = self.priced_profile() if self.mode == "priced" else self.profile
        start = time.perf_counter()
        plan = self._solve(target, n_mb, budget, self.time_budget)
        if self.safety and plan.counts:
            reserve = self.safety * self.noise.spread(self.profile.batch_times, plan.counts)
            if plan.total_time > budget - reserve:
                tighter = max(budget - reserve, min(budget, n_mb * self._t_fast))
                if tighter < budget:  # the decision's time budget covers both searches
                    left = None if self.time_budget is None else max(
                        self.time_budget - (time.perf_counter() - start), _LEAST_BUDGET)
                    plan = self._solve(target, n_mb, tighter, left)
        if target is self.profile:
            return plan
        # The priced problem's gap is in priced units: against the real objective nothing is proven.
        return feasible_plan(self.profile, plan.counts, n_mb, plan.deadline, "scheduler:priced", math.inf)

    def _solve(self, target: Profile, n_mb: int, budget: float, time_budget: float | None) -> Plan:
        """The best plan for ``budget`` on ``target`` within ``time_budget`` seconds of search, through the plan
        cache when there is one."""
        if self.cache is None:
            return solve(target, n_mb, budget, time_budget=time_budget)
        start = time.perf_counter()
        plan = self.cache.plan(target, n_mb, budget, time_budget)
        if sum(plan.counts) < n_mb and within_deadline(n_mb * self._t_fast, budget):
            # A budget held at the floor (every mini-batch at the fastest width) is never cut by the
            # cache's quantum: solve that one at its own budget, in what is left of the decision's time.
            left = None if time_budget is None else max(time_budget - (time.perf_counter() - start), _LEAST_BUDGET)
            plan = solve(target, n_mb, budget, time_budget=left)
        return plan
