"""The scheduler's safety reserve on a plan's total time (``SchedulerPolicy(safety=z)``, ``TimeNoise``)."""

from __future__ import annotations

import math
import statistics

import pytest

from easel.serving import split_mini_batches
from scheduler import LateRule, Profile, SchedulerPolicy, TimeNoise, make_workload, simulate, solve

TWO = Profile(rates=(1.0, 0.5), accuracies=(0.9, 0.7), batch_times=(0.1, 0.05))


def test_time_noise_learns_the_relative_spread_and_sums_it_as_independent_batches() -> None:
    noise = TimeNoise(alpha=0.5)
    assert noise.cv == 0.0 and noise.spread((0.1,), (4,)) == 0.0  # nothing measured: no reserve
    for _ in range(60):
        noise.observe(0.1, 0.12)  # 20 % over the planned time, every time
    assert noise.cv == pytest.approx(0.2) and noise.samples == 60
    # sd of the total = cv * sqrt(sum n_i t_i^2): 0.2 * sqrt(3 * 0.01 + 0.0025)
    assert noise.spread((0.1, 0.05), (3, 1)) == pytest.approx(0.2 * math.sqrt(0.0325))
    noise.observe(0.0, 1.0)  # a planned time of 0 teaches nothing
    assert noise.samples == 60
    stalled = TimeNoise(alpha=1.0)
    stalled.observe(0.1, 1.0)  # a 10x stall counts as 2x
    assert stalled.cv == pytest.approx(1.0)


def test_bad_time_noise_arguments_name_themselves() -> None:
    with pytest.raises(ValueError, match="alpha"):
        TimeNoise(alpha=0.0)
    with pytest.raises(ValueError, match="prior_cv"):
        TimeNoise(prior_cv=-0.1)
    with pytest.raises(ValueError, match="measured"):
        TimeNoise().observe(0.1, float("nan"))
    with pytest.raises(ValueError, match="safety"):
        SchedulerPolicy(TWO, safety=-1.0)
    with pytest.raises(ValueError, match="noise"):
        SchedulerPolicy(TWO, noise=0.2)  # type: ignore[arg-type]


def test_a_plan_that_fills_its_budget_is_replanned_inside_the_reserve() -> None:
    # 4 mini-batches, 0.4 s: the exact plan is 4 wide (0.4 s, nothing left). With a 20 % spread per batch the
    # reserve is 0.2 * sqrt(4 * 0.01) = 0.04 s, so the plan is made for 0.36 s: 3 wide + 1 narrow (0.35 s),
    # (3 * 0.9 + 0.7) / 4 = 0.85.
    assert solve(TWO, 4, 0.4).counts == (4, 0)
    policy = SchedulerPolicy(TWO, mode="myopic", safety=1.0, noise=TimeNoise(prior_cv=0.2))
    plan = policy.decide(4, 0.4)
    assert plan.counts == (3, 1) and plan.effective_accuracy == pytest.approx(0.85)
    # Off (the library's default) or nothing measured yet: the exact plan, unchanged.
    assert SchedulerPolicy(TWO, mode="myopic").decide(4, 0.4).counts == (4, 0)
    assert SchedulerPolicy(TWO, mode="myopic", safety=1.0).decide(4, 0.4).counts == (4, 0)


def test_the_reserve_never_drops_what_the_fastest_width_could_serve() -> None:
    # 8 mini-batches in 0.4 s: all narrow exactly (0.4 s). The reserve would leave 0.4 - 0.2 * sqrt(8 * 0.0025)
    # = 0.372 s, less than the all-fastest floor, so the budget stays at the floor: nothing dropped.
    policy = SchedulerPolicy(TWO, mode="myopic", safety=2.0, noise=TimeNoise(prior_cv=0.2))
    plan = policy.decide(8, 0.4)
    assert plan.counts == (0, 8) and plan.dropped == 0


def test_observe_feeds_the_shared_estimate_that_survives_a_rebuild() -> None:
    noise = TimeNoise(alpha=1.0)
    SchedulerPolicy(TWO, noise=noise).observe(0, 0.13)  # the wide width planned at 0.1 s took 0.13 s
    rebuilt = SchedulerPolicy(TWO, noise=noise)
    assert rebuilt.noise is noise and noise.cv == pytest.approx(0.3)


def test_under_noisy_batch_times_the_reserve_keeps_the_mini_batches_a_tight_plan_loses() -> None:
    # serving.json's sweep point that missed (N = 216, D = 0.5 s, in-pipeline batch times): with a 30 %
    # log-normal spread per batch the simulator reproduces the pipeline's loss of the tight plans (0.86
    # against fixed:0.5's 0.883); one standard deviation of reserve wins it back. Seeds fixed: deterministic.
    profile = Profile((1.0, 0.75, 0.5, 0.25), (0.9306, 0.925, 0.8833, 0.7722), (0.2876, 0.1580, 0.0769, 0.0315))
    tasks = make_workload("constant", 216 / 0.5, 40, 216, 0.5)

    def mean_accuracy(safety: float) -> float:
        return statistics.mean(
            simulate(profile, lambda: SchedulerPolicy(profile, safety=safety), tasks, n_workers=2, batch_size=32,
                     warmup=0.5, deal=split_mini_batches, late_rule=LateRule.START, jitter=0.3,
                     seed=seed).effective_accuracy for seed in range(3))

    assert mean_accuracy(1.0) > mean_accuracy(0.0) + 0.01


def test_past_capacity_the_reserves_change_no_plan() -> None:
    # The serving sweep's overload points (in-pipeline batch times, 142 mini-batches a share every 0.5 s: 1.4x
    # what the fastest width carries). Both reserves are floored at every mini-batch at the fastest width, so once
    # that no longer fits they cannot drop one more: the worker's reserves (1 sigma of time, 1 sigma of rate) plan
    # exactly what no reserve plans, at the first plan and at every re-plan of the tail.
    profile = Profile((1.0, 0.75, 0.5, 0.25), (0.9306, 0.925, 0.8833, 0.7722), (0.04456, 0.03173, 0.01496, 0.00502))
    reserved = SchedulerPolicy(profile, confidence=1.0, safety=1.0, noise=TimeNoise(prior_cv=0.3))
    bare = SchedulerPolicy(profile, confidence=0.0, safety=0.0)
    for k in range(20):
        for policy in (reserved, bare):
            policy.on_arrival(142, 0.5 * k)
    now = 9.5
    for n_mb, left, backlog in ((142, 0.47, ()), (90, 0.3, ()), (142, 0.47, ((142, 0.97),)), (12, 0.05, ((142, 0.5),))):
        plan = reserved.decide(n_mb, left, backlog, now)
        assert plan.counts == bare.decide(n_mb, left, backlog, now).counts
        assert plan.dropped > 0 and plan.counts[-1] == n_mb - plan.dropped  # all the fastest width, the rest dropped
    # Below capacity the same reserves do act: a share the fastest width serves with room to spare is planned
    # narrower with them (so the equality above is not a policy that ignores its reserves).
    assert reserved.decide(24, 0.47, (), now).counts != bare.decide(24, 0.47, (), now).counts
