"""Policies: the baselines do what their papers say, and the scheduler never plans worse than any of them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler import (
    ArrivalRate,
    ClipperPolicy,
    FixedWidthPolicy,
    ModelSwitchingPolicy,
    PlanCache,
    Policy,
    SchedulerPolicy,
    baseline_policies,
    on_off_arrivals,
    paper_xray_profile,
    poisson_arrivals,
    solve,
    within_deadline,
)

XRAY = paper_xray_profile()


def test_every_policy_satisfies_the_protocol() -> None:
    for policy in [SchedulerPolicy(XRAY), *baseline_policies(XRAY)]:
        assert isinstance(policy, Policy)
    names = [p.name for p in baseline_policies(XRAY)]
    assert names == ["fixed r=1", "fixed r=0.75", "fixed r=0.5", "fixed r=0.25", "model-switching", "clipper"]


def test_fixed_width_runs_everything_and_counts_late_minibatches_as_zero() -> None:
    plan = FixedWidthPolicy(XRAY, 1.0).decide(10, 0.2)  # 4 of 10 full-width mini-batches fit in 0.2 s
    assert plan.counts == (10, 0, 0, 0)
    assert plan.dropped == 0 and plan.late == 6
    assert plan.effective_accuracy == pytest.approx(4 * 0.7937 / 10)


def test_clipper_drops_what_would_miss_the_deadline() -> None:
    plan = ClipperPolicy(XRAY).decide(10, 0.2)
    assert plan.counts == (4, 0, 0, 0)
    assert plan.dropped == 6 and plan.late == 0
    assert within_deadline(plan.total_time, 0.2)


def test_model_switching_picks_the_most_accurate_model_whose_p99_latency_fits() -> None:
    ms = ModelSwitchingPolicy(XRAY)
    # 100 mini-batches: p99 latency = 99 mini-batches; r=0.5 needs 2.25 s, r=0.25 1.55 s.
    assert ms.decide(100, 10.0).counts == (100, 0, 0, 0)
    assert ms.decide(100, 2.3).counts == (0, 0, 100, 0)
    assert ms.decide(100, 1.0).counts == (0, 0, 0, 100)  # nothing fits: the smallest model
    # Measured latencies rise (contention): the same deadline now selects a faster model.
    for _ in range(200):
        ms.observe(2, 0.03)
    assert ms.decide(100, 2.3).counts == (0, 0, 0, 100)
    with pytest.raises(ValueError, match="quantile"):
        ModelSwitchingPolicy(XRAY, quantile=0.0)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 300), st.floats(0.0, 20.0))
def test_scheduler_plans_at_least_as_well_as_every_baseline_for_one_task(n_mb: int, deadline: float) -> None:
    ours = SchedulerPolicy(XRAY).decide(n_mb, deadline)
    assert within_deadline(ours.total_time, deadline)
    for baseline in baseline_policies(XRAY):
        assert ours.effective_accuracy >= baseline.decide(n_mb, deadline).effective_accuracy - 1e-12


def test_scheduler_without_a_queue_is_the_exact_optimum_and_can_use_a_cache() -> None:
    cache = PlanCache(quantum=0.001)
    for mode in ("myopic", "queue", "priced"):
        policy = SchedulerPolicy(XRAY, mode=mode)
        assert policy.decide(40, 1.3).counts == solve(XRAY, 40, 1.3).counts
    cached = SchedulerPolicy(XRAY, cache=cache)
    assert cached.decide(40, 1.3).counts == solve(XRAY, 40, 1.3).counts
    assert len(cache) == 1
    with pytest.raises(ValueError, match="mode"):
        SchedulerPolicy(XRAY, mode="greedy")


def test_queue_budget_is_a_fair_share_but_never_below_the_fastest_width() -> None:
    policy = SchedulerPolicy(XRAY, mode="queue")
    # Alone: all the time left.
    assert policy.budget(8, 5.0) == 5.0
    # Three equal tasks behind it with 5.1, 5.2, 5.3 s left: its share is 5.3 / 4.
    assert policy.budget(8, 5.0, [(8, 5.1), (8, 5.2), (8, 5.3)]) == pytest.approx(5.3 / 4)
    # A queue that cannot all be served: the head still gets its fastest-width time.
    assert policy.budget(8, 5.0, [(800, 0.1)]) == pytest.approx(8 * 0.01568)
    assert SchedulerPolicy(XRAY, mode="myopic").budget(8, 5.0, [(800, 0.1)]) == 5.0


def test_priced_mode_prices_time_by_the_arrival_rate() -> None:
    policy = SchedulerPolicy(XRAY)
    assert policy.time_per_mb() == float("inf")
    assert policy.priced_profile() is XRAY  # no load measured: time is free
    # 8 mini-batches every 0.1 s for 30 s: 12.5 ms per mini-batch, below the fastest model's 15.68 ms.
    for i in range(301):
        policy.on_arrival(8, i * 0.1)
    assert policy.time_per_mb() < 0.0125
    priced = policy.priced_profile()
    assert priced is not XRAY
    assert priced.frontier.index == (3,)  # only the fastest model is worth its time
    plan = policy.decide(8, 5.0, [(8, 5.1)])
    assert plan.counts == (0, 0, 0, 8)
    assert plan.effective_accuracy == pytest.approx(0.6512)  # reported with the real accuracies
    # Light load (one task every 10 s): the price is zero again.
    light = SchedulerPolicy(XRAY)
    for i in range(5):
        light.on_arrival(8, i * 10.0)
    assert light.priced_profile() is XRAY


def test_priced_mode_prefers_hull_models_over_filling_odd_time() -> None:
    # Eight mini-batches every 190 ms: time is priced at a hull slope, so a budget of 194 ms buys
    # 8 x r=0.5 (181.8 ms) rather than 1 x r=0.75 + 7 x r=0.5, which spends 12 ms on a model off the hull
    # for less accuracy than those 12 ms buy the next task.
    policy = SchedulerPolicy(XRAY)
    for i in range(200):
        policy.on_arrival(8, i * 0.19)
    assert solve(XRAY, 8, 0.194).counts == (0, 1, 7, 0)
    assert policy.decide(8, 0.194, [(8, 0.4)]).counts == (0, 0, 8, 0)


def test_bad_scheduler_arguments() -> None:
    for kwargs in ({"rate_window": 0.0}, {"utilisation": 1.5}, {"confidence": -1.0}):
        with pytest.raises(ValueError):
            SchedulerPolicy(XRAY, **kwargs)


def test_arrival_rate_bound_tightens_for_steady_arrivals_and_stays_above_for_random_ones() -> None:
    steady = ArrivalRate(window=10.0, confidence=3.0)
    assert steady.upper() == 0.0
    for i in range(1000):  # 8 mini-batches every 0.1 s = 80 per second, for 100 s
        steady.add(8, i * 0.1)
    assert steady.upper() == pytest.approx(80.0, rel=0.01)  # past windows show no spread
    rng = np.random.default_rng(0)
    bursty = ArrivalRate(window=10.0, confidence=3.0)
    for t in np.cumsum(rng.exponential(0.1, size=1000)):
        bursty.add(8, float(t))
    assert bursty.upper() > 80.0 * 1.05  # Poisson counts vary, so the bound sits above the rate
    with pytest.raises(ValueError, match="window"):
        ArrivalRate(window=0.0, confidence=1.0)


def test_a_new_arrival_rate_counts_the_gaps_not_the_arrivals() -> None:
    rate = ArrivalRate(window=10.0, confidence=0.0)
    for i in range(3):  # 8 mini-batches every 0.5 s: 16 per second, not 24 over the first second
        rate.add(8, i * 0.5)
    assert rate.upper() == pytest.approx(16.0)


@given(n_mb=st.integers(1, 40), behind=st.integers(1, 200), left=st.floats(0.01, 2.0))
@settings(max_examples=200, deadline=None)
def test_a_task_held_at_the_floor_is_served_at_the_fastest_width_even_through_the_cache(
        n_mb: int, behind: int, left: float) -> None:
    """The queue rule never budgets a task below all-fastest; the plan cache rounding its budget down to a
    quantum must not turn that floor into a dropped mini-batch."""
    policy = SchedulerPolicy(XRAY, cache=PlanCache(), mode="queue")
    fastest = min(XRAY.batch_times)
    if n_mb * fastest > left:
        return  # not even the fastest width fits: drops are right
    plan = policy.decide(n_mb, left, [(behind, left)])
    assert sum(plan.counts) == n_mb


def test_every_policy_names_a_bad_argument() -> None:
    for policy in [SchedulerPolicy(XRAY), *baseline_policies(XRAY)]:
        for bad in (None, "1.0", float("nan"), float("inf"), -float("inf")):
            with pytest.raises(ValueError, match="deadline"):
                policy.decide(4, bad)  # type: ignore[arg-type]
        for bad in (None, "4", 2.5, -1):
            with pytest.raises(ValueError, match="n_mb"):
                policy.decide(bad, 1.0)  # type: ignore[arg-type]
        assert policy.decide(4, -0.5).deadline == 0.0, "time already past counts as none left"
    for kwargs, name in (({"utilisation": "1"}, "utilisation"), ({"confidence": float("nan")}, "confidence"),
                         ({"rate_window": None}, "window"), ({"time_budget": float("inf")}, "time_budget")):
        with pytest.raises(ValueError, match=name):
            SchedulerPolicy(XRAY, **kwargs)
    with pytest.raises(ValueError, match="quantile"):
        ModelSwitchingPolicy(XRAY, quantile="0.99")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="now"):
        SchedulerPolicy(XRAY).on_arrival(4, float("nan"))


def test_a_task_alone_until_its_deadline_gets_its_whole_time_unpriced() -> None:
    # Periodic tasks every 0.5 s, each due 0.5 s later: the price of time (high at this load) buys nothing
    # when the next task arrives only after this one's deadline, so the task is planned as the per-task ILP.
    policy = SchedulerPolicy(XRAY)
    for i in range(100):
        policy.on_arrival(16, i * 0.5)
    now = 99 * 0.5
    assert policy.priced_profile() is not XRAY, "the load is high enough to price time"
    alone = policy.decide(16, 0.5, (), now)
    assert alone.counts == solve(XRAY, 16, 0.5).counts
    # The same task with another one queued behind it, or no clock to compare with: priced as before.
    assert policy.decide(16, 0.5, [(16, 0.9)], now).method == "scheduler:priced"
    assert policy.decide(16, 0.5).method == "scheduler:priced"
    # Decided late enough that the next arrival (at 50.0) comes before this deadline: priced again.
    assert policy.decide(16, 0.5, (), now + 0.1).method == "scheduler:priced"


def test_the_rate_arrivals_see_is_the_burst_rate_under_on_off_traffic_and_the_mean_otherwise() -> None:
    rng = np.random.default_rng(1)
    steady, bursty = ArrivalRate(window=30.0, confidence=3.0), ArrivalRate(window=30.0, confidence=3.0)
    for rate in (steady, bursty):
        rate.cover(0.5)  # tasks due 0.5 s after they arrive
    for t in poisson_arrivals(25.0, 3000, rng):
        steady.add(4, float(t))
    for t in on_off_arrivals(25.0, 3000, rng, on=1.0, off=3.0):  # 100 tasks/s for 1 s in every 4 s
        bursty.add(4, float(t))
    assert steady.seen() == pytest.approx(100.0, rel=0.1)  # Poisson: the mean rate
    assert steady.seen() < steady.upper()  # so the confidence bound still prices it, as before
    # A mini-batch arriving in a burst sees ~400 per second within its deadline (~300 averaged over where it
    # falls in the burst), four times what the 30-second mean says.
    assert bursty.seen() > 2.5 * 100.0 and bursty.upper() < 1.5 * 100.0
    assert ArrivalRate(window=30.0, confidence=3.0).seen() == 0.0


def test_a_burst_longer_than_the_deadline_prices_time_at_the_fastest_width_from_its_first_task() -> None:
    # On-off traffic whose bursts overload the worker at the fastest width: every width but the fastest
    # costs the burst more mini-batches than it gains, and the long-run mean (a quarter of the burst rate)
    # would say otherwise. The first task of a new burst, after 3 s of silence, is already priced right.
    policy = SchedulerPolicy(XRAY)
    rng = np.random.default_rng(2)
    arrivals = on_off_arrivals(3.0, 300, rng, on=1.0, off=3.0)  # 8 mini-batches: 96/s in bursts, 24/s mean
    for t in arrivals:
        policy.on_arrival(8, float(t))
        policy.decide(8, 0.5, (), float(t))  # tasks due 0.5 s later
    assert policy.rate.upper() * 0.01568 < 0.75, "on average the fastest width has time to spare"
    assert policy.rate.seen() * 0.01568 > 1.0, "but not within a burst"
    start = float(arrivals[-1]) + 3.5
    policy.on_arrival(8, start)
    assert policy.decide(8, 0.5, [(8, 0.5)], start).counts == (0, 0, 0, 8)
