"""The plan executor's incremental bookkeeping (indices instead of slices, the plan's remaining time kept exactly
instead of summed again before every mini-batch) makes the same decisions as the executor that summed: every
plan, run, drop and re-plan identical on scripted shares, for every kind of policy."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

import pytest

from scheduler import (
    ArrivalRate,
    ClipperPolicy,
    FixedWidthPolicy,
    LateRule,
    ModelSwitchingPolicy,
    PlanCache,
    PlanExecutor,
    Policy,
    Profile,
    SchedulerPolicy,
)
from scheduler.simulation.executor import _PlannedTime

RATES = (0.25, 0.5, 0.75, 1.0)
ACCURACIES = (0.7722, 0.8833, 0.925, 0.9306)
TIMES = (0.0029, 0.0107, 0.022, 0.039)  # the serving benchmark's model, seconds per mini-batch of 32


def reference_run_share(policy: Policy, clock: Callable[[], float], floor: LateRule, full_size: int,
                        sizes: Sequence[int], deadline_at: float, runner: Recorder,
                        backlog: Callable[[float], Sequence[tuple[int, float]]], margin: float) -> None:
    """The executor's loop as it was before the incremental bookkeeping (the oracle): slices, and the remaining
    plan's time summed with ``math.fsum`` before each mini-batch."""
    replans, rule, end = policy.replans, max(floor, policy.late_rule), deadline_at - margin
    now = clock()
    behind = backlog(now)
    queued = sum(n for n, _ in behind)
    plan = policy.decide(len(sizes), end - now, behind, now)
    runner.planned(plan, True)
    times = policy.profile.batch_times
    models = list(plan.iter_models())
    pending = list(range(len(sizes)))
    if not replans:
        unplanned, pending = pending[len(models):], pending[: len(models)]
        if unplanned or not pending:
            runner.drop(unplanned, not pending)
    while pending:
        now = clock()
        if rule >= LateRule.START and now >= deadline_at:
            runner.drop(pending, True)
            return
        if replans:
            slack = end - now - math.fsum(times[m] for m in models)
            behind = backlog(now)
            if slack < 0 or slack >= min(times) or sum(n for n, _ in behind) > queued:
                queued = sum(n for n, _ in behind)
                plan = policy.decide(len(pending), end - now, behind, now)
                again = list(plan.iter_models())
                times = policy.profile.batch_times
                if again != models:
                    runner.planned(plan, False)
                models = again
        elif rule >= LateRule.FIT:
            slack = end - now - math.fsum(times[m] for m in models)
            cut = 0
            while cut < len(models) and slack < 0:
                slack += times[models[len(models) - 1 - cut]]
                cut += 1
            if cut:
                tail = pending[len(pending) - cut:]
                pending, models = pending[: len(pending) - cut], models[: len(models) - cut]
                runner.drop(tail, not pending)
                continue
        if not models:
            runner.drop(pending, True)
            return
        index, model = pending[0], models[0]
        pending, models = pending[1:], models[1:]
        seconds = runner.run(index, model, not pending)
        if seconds is not None and sizes[index] >= full_size:
            policy.observe(model, seconds)


class Recorder:
    """A scripted runner: batch times drawn from a seeded spread around the profile's (some far over), the
    clock advanced by them; every call recorded."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.now = 1000.0
        self.log: list[tuple[object, ...]] = []

    def clock(self) -> float:
        return self.now

    def planned(self, plan: object, first: bool) -> None:
        self.log.append(("planned", plan, first))

    def run(self, index: int, model: int, last: bool) -> float | None:
        if self.rng.random() < 0.02:  # the template failed: answered dropped, nothing learnt
            self.log.append(("failed", index, model, last))
            return None
        seconds = TIMES[model] * (self.rng.uniform(0.5, 1.4) if self.rng.random() < 0.9 else 3.0)
        self.now += seconds
        self.log.append(("run", index, model, last, seconds))
        return seconds

    def drop(self, indices: Sequence[int], last: bool) -> None:
        self.log.append(("drop", tuple(indices), last))


POLICIES: dict[str, Callable[[Profile], Policy]] = {
    "scheduler": lambda p: SchedulerPolicy(p, cache=PlanCache(), time_budget=None),
    "scheduler-safety": lambda p: SchedulerPolicy(p, time_budget=None, safety=1.0),
    "scheduler-myopic": lambda p: SchedulerPolicy(p, mode="myopic", time_budget=None),
    "clipper": lambda p: ClipperPolicy(p),
    "fixed": lambda p: FixedWidthPolicy(p, 0.5),
    "model-switching": lambda p: ModelSwitchingPolicy(p),
}


def scripted(name: str, seed: int, incremental: bool) -> list[tuple[object, ...]]:
    profile = Profile(RATES, ACCURACIES, TIMES)
    policy = POLICIES[name](profile)
    runner, shapes = Recorder(seed), random.Random(seed + 1)
    for floor in (LateRule.RUN, LateRule.START, LateRule.FIT):
        for _ in range(25):
            policy.on_arrival(12, runner.now)
            n_mb = shapes.randint(1, 40)
            sizes = [32] * (n_mb - 1) + [shapes.randint(1, 32)]
            deadline_at = runner.now + shapes.uniform(0.1, 1.3) * n_mb * TIMES[1]
            waiting = [(shapes.randint(1, 9), shapes.uniform(0.0, 0.4)) for _ in range(shapes.randint(0, 2))]
            grows = shapes.random() < 0.3  # work arrives behind the share while it runs

            def backlog(now: float, waiting: list = waiting, grows: bool = grows, at: float = runner.now,
                        due: float = deadline_at) -> list[tuple[int, float]]:
                extra = [(3, due + 0.05 - now)] if grows and now > at + 0.01 else []
                return [(n, left - (now - at)) for n, left in waiting] + extra

            if incremental:
                PlanExecutor(policy, runner.clock, floor, full_size=32).run_share(
                    sizes, deadline_at, runner, backlog, margin=0.002)
            else:
                reference_run_share(policy, runner.clock, floor, 32, sizes, deadline_at, runner, backlog, 0.002)
            runner.log.append(("share done", runner.now))
    return runner.log


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_the_incremental_executor_decides_exactly_as_the_one_that_summed(name: str) -> None:
    expected, got = scripted(name, 0, incremental=False), scripted(name, 0, incremental=True)
    kinds = [e[0] for e in got]
    assert kinds.count("run") > 100 and kinds.count("drop") > 10  # the scripts overrun, and drop
    if POLICIES[name](Profile(RATES, ACCURACIES, TIMES)).replans:
        assert sum(1 for e in got if e[0] == "planned" and e[2] is False) > 10  # and re-plan
    assert got == expected


def test_the_planned_time_left_is_the_correctly_rounded_sum_fsum_gives() -> None:
    rng = random.Random(7)
    times = tuple(rng.uniform(1e-4, 0.05) for _ in range(4)) + (0.1, 0.2, 1e-9)
    planned = _PlannedTime(times)
    models = [rng.randrange(len(times)) for _ in range(500)]
    planned.plan([(m, 1) for m in models])
    for k in range(len(models) + 1):
        assert planned.seconds() == math.fsum(times[m] for m in models[k:])
        if k < len(models):
            planned.ran(models[k])
    assert planned.seconds() == 0.0


def test_an_arrival_rate_answers_from_its_memo_only_until_work_arrives() -> None:
    """The estimates a worker reads on every (re-)plan are remembered between arrivals, and each arrival
    changes them exactly as for an estimate that never remembered anything (one fed the same arrivals)."""
    rng = random.Random(3)
    asked, events = ArrivalRate(2.0, confidence=1.0), []
    now = 0.0
    for step in range(200):
        now += rng.expovariate(20.0)
        n_mb = rng.randint(1, 6)
        asked.add(n_mb, now)
        events.append(("add", n_mb, now))
        if step % 40 == 0:
            horizon = rng.uniform(0.1, 1.0)
            asked.cover(horizon)
            events.append(("cover", horizon, 0.0))
        for _ in range(2):  # the second answer comes from the memo
            answers = (asked.upper(), asked.mean(), asked.seen())
        if step % 25 == 0 or step == 199:
            unasked = ArrivalRate(2.0, confidence=1.0)
            for kind, value, at in events:
                unasked.add(int(value), at) if kind == "add" else unasked.cover(value)
            assert answers == (unasked.upper(), unasked.mean(), unasked.seen())
    assert len(set(answers)) > 1 and answers[0] > 0.0
