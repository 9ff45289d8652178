"""Edge cases of the solvers, the Plan, and request validation."""

from __future__ import annotations

import gc
import math

import pytest

from scheduler import (
    Plan,
    Profile,
    SchedulerPolicy,
    build_plan,
    effective_accuracy,
    milp_optimum,
    paper_fast_case,
    paper_xray_profile,
    solve,
    solve_bnb,
    solve_dp,
    solve_fast,
    within_deadline,
)
from scheduler.gc_pause import gc_paused

EXACT = (solve_fast, solve_bnb)


def value(profile: Profile, plan: Plan) -> float:
    return math.fsum(c * p for c, p in zip(plan.counts, profile.accuracies, strict=True))


@pytest.mark.parametrize("solver", EXACT)
def test_single_model_takes_as_many_as_fit(solver) -> None:
    profile = Profile((1.0,), (0.8,), (0.1,))
    plan = solver(profile, 10, 0.35)
    assert plan.counts == (3,)
    assert plan.dropped == 7
    assert plan.effective_accuracy == pytest.approx(0.24)


@pytest.mark.parametrize("solver", EXACT)
def test_equal_times_use_only_the_most_accurate(solver) -> None:
    profile = Profile((0.25, 0.5, 1.0), (0.6, 0.9, 0.7), (0.2, 0.2, 0.2))
    plan = solver(profile, 10, 1.0)
    assert plan.counts == (0, 5, 0)


@pytest.mark.parametrize("solver", EXACT)
def test_equal_accuracies_use_only_the_fastest(solver) -> None:
    profile = Profile((0.25, 0.5, 1.0), (0.7, 0.7, 0.7), (0.3, 0.1, 0.2))
    plan = solver(profile, 10, 0.75)
    assert plan.counts == (0, 7, 0)


@pytest.mark.parametrize("solver", (*EXACT, solve_dp))
def test_zero_deadline_and_zero_minibatches(solver) -> None:
    profile = paper_xray_profile()
    for n, d in ((10, 0.0), (0, 5.0), (0, 0.0)):
        plan = solver(profile, n, d)
        assert plan.counts == (0, 0, 0, 0)
        assert plan.dropped == n
        assert plan.effective_accuracy == 0.0
        assert plan.order == ()


@pytest.mark.parametrize("solver", EXACT)
def test_dominated_model_is_never_used(solver) -> None:
    # Model 1 is slower and less accurate than model 0; it must never appear, whatever the budget.
    profile = Profile((1.0, 0.75, 0.5), (0.9, 0.8, 0.5), (0.3, 0.4, 0.1))
    assert profile.frontier.index == (2, 0)
    for d in (0.05, 0.1, 0.25, 0.7, 1.3, 2.9, 3.0, 10.0):
        assert solver(profile, 10, d).counts[1] == 0


def test_zero_accuracy_model_is_never_used() -> None:
    profile = Profile((1.0, 0.5), (0.9, 0.0), (0.3, 0.01))
    plan = solve(profile, 10, 0.5)
    assert plan.counts == (1, 0)


def test_deadline_just_below_and_at_a_multiple() -> None:
    profile = Profile((1.0,), (0.5,), (0.1,))
    assert solve(profile, 5, 0.3).counts == (3,)  # 3 * 0.1 > 0.3 in floats; the shared tolerance fits it
    assert solve(profile, 5, 0.3 * (1 - 1e-6)).counts == (2,)
    assert solve(profile, 5, 0.1 * (1 - 1e-6)).counts == (0,)


def test_all_to_most_accurate_when_time_is_plentiful() -> None:
    profile = paper_xray_profile()
    plan = solve(profile, 100, 100 * 0.0494)
    assert plan.counts == (100, 0, 0, 0)
    assert plan.effective_accuracy == pytest.approx(0.7937)
    assert plan.method.startswith("trivial")


def test_paper_rule_for_tight_deadlines_is_not_optimal_but_solve_is() -> None:
    # D <= N * min(t): the paper sends everything to the fastest model; one r = 0.5 mini-batch is better.
    profile = paper_xray_profile()
    paper = paper_fast_case(profile, 100, 0.5)
    assert paper is not None and paper.counts == (0, 0, 0, 31)
    best = solve(profile, 100, 0.5)
    assert best.counts == (0, 0, 1, 30)
    assert best.effective_accuracy > paper.effective_accuracy
    assert milp_optimum(profile, 100, 0.5).value == pytest.approx(value(profile, best), abs=1e-9)


def test_paper_rule_for_loose_deadlines_is_optimal() -> None:
    profile = paper_xray_profile()
    paper = paper_fast_case(profile, 50, 50 * 0.0494)
    assert paper is not None
    assert paper.counts == solve(profile, 50, 50 * 0.0494).counts
    assert paper_fast_case(profile, 50, 2.0) is None
    with pytest.raises(ValueError, match="fast cases"):
        solve(profile, 50, 2.0, method="paper")


def test_every_method_returns_a_feasible_plan_for_the_xray_profile() -> None:
    profile = paper_xray_profile()
    best = solve(profile, 250, 8.0)
    for method in ("auto", "exact", "bnb", "dp", "milp"):
        plan = solve(profile, 250, 8.0, method=method)
        assert within_deadline(plan.total_time, 8.0)
        assert sum(plan.counts) + plan.dropped == 250
        if method != "dp":
            assert value(profile, plan) == pytest.approx(value(profile, best), abs=1e-9)
        else:
            assert value(profile, plan) <= value(profile, best) + 1e-9


def test_dp_is_exact_on_integer_times() -> None:
    profile = Profile((0.5, 1.0), (0.6, 0.95), (3.0, 7.0))
    plan = solve_dp(profile, 10, 40.0)
    assert plan.method == "dp:exact"
    assert value(profile, plan) == pytest.approx(value(profile, solve_fast(profile, 10, 40.0)))


def test_dp_on_a_coarse_grid_is_a_feasible_lower_bound() -> None:
    # A grid of 7 units of 1/7 s: 0.3 s costs 3 units (rounded up), so only 2 fit where 3 really do.
    profile = Profile((1.0,), (0.9,), (0.3,))
    plan = solve_dp(profile, 5, 1.0, grid=7)
    assert plan.method == "dp:approx"
    assert plan.counts == (2,)
    assert solve(profile, 5, 1.0).counts == (3,)


def test_plan_order_runs_fastest_first_and_lists_every_minibatch() -> None:
    profile = paper_xray_profile()
    plan = solve(profile, 100, 2.5)
    times = [profile.batch_times[i] for i, _ in plan.order]
    assert times == sorted(times)
    models = list(plan.iter_models())
    assert len(models) == plan.scheduled == sum(plan.counts)
    assert all(plan.counts[i] == models.count(i) for i in range(len(profile)))
    assert plan.to_dict()["counts"] == list(plan.counts)


def test_effective_accuracy_and_build_plan_count_late_minibatches_as_zero() -> None:
    profile = Profile((0.5, 1.0), (0.5, 1.0), (1.0, 2.0))
    assert effective_accuracy(profile, (2, 1), 4) == pytest.approx((2 * 0.5 + 1.0) / 4)
    # Runs fastest first: the two 1 s mini-batches end at 1 and 2, the 2 s one at 4 > deadline 3.
    plan = build_plan(profile, (2, 1), 4, 3.0, "test")
    assert plan.late == 1 and plan.dropped == 1
    assert plan.effective_accuracy == pytest.approx(1.0 / 4)
    with pytest.raises(ValueError, match="n_mb"):
        effective_accuracy(profile, (3, 3), 4)


@pytest.mark.parametrize(
    ("n_mb", "deadline", "match"),
    [
        (-1, 1.0, "n_mb must be >= 0"),
        (2.5, 1.0, "n_mb must be a whole number"),
        (True, 1.0, "n_mb must be a whole number"),
        ("3", 1.0, "n_mb must be a whole number"),
        (None, 1.0, "n_mb must be a whole number"),
        (3, -0.1, "deadline"),
        (3, float("nan"), "deadline"),
        (3, float("inf"), "deadline"),
        (3, -float("inf"), "deadline"),
        (3, None, "deadline"),
        (3, "1.0", "deadline"),  # a numeric string is a caller's bug, not a number
    ],
)
def test_bad_requests_raise_value_error(n_mb, deadline, match) -> None:
    with pytest.raises(ValueError, match=match):
        solve(paper_xray_profile(), n_mb, deadline)


def test_unknown_method_and_wrong_profile_type() -> None:
    with pytest.raises(ValueError, match="unknown method"):
        solve(paper_xray_profile(), 3, 1.0, method="magic")
    with pytest.raises(ValueError, match="Profile"):
        solve({"rates": [1.0]}, 3, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fallback"):
        solve(paper_xray_profile(), 3, 1.0, fallback="guess")
    with pytest.raises(ValueError, match="lp must be"):
        solve_bnb(paper_xray_profile(), 3, 1.0, lp="simplex")
    for bad in (0.0, float("nan"), "0.001"):
        with pytest.raises(ValueError, match="time_budget"):
            solve(paper_xray_profile(), 3, 1.0, time_budget=bad)  # type: ignore[arg-type]


def test_a_decision_defers_garbage_collection_and_leaves_the_collector_as_it_found_it() -> None:
    seen: list[bool] = []
    profile = paper_xray_profile()

    @gc_paused
    def probe() -> None:
        seen.append(gc.isenabled())
        solve(profile, 40, 1.3)  # nested: stays paused, and does not re-enable on its way out
        seen.append(gc.isenabled())

    assert gc.isenabled()
    probe()
    assert seen == [False, False] and gc.isenabled()
    gc.disable()  # an application that paused the collector itself keeps it paused
    try:
        solve(profile, 40, 1.3)
        SchedulerPolicy(profile).decide(40, 1.3)
        assert not gc.isenabled()
    finally:
        gc.enable()
