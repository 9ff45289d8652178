"""Property-based checks: every exact solver returns milp's optimum, and every solver's plan is feasible."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler import Profile, milp_optimum, solve, solve_bnb, solve_dp, solve_fast, within_deadline
from scheduler.plan import Plan

# milp's value is the unnormalised sum(n_i p_i); we compare effective accuracies (value / N) at 1e-9.
TOL = 1e-9
# HiGHS proves its bound only to its own tolerances (feasibility 1e-6 by default): an exact plan of ours
# may beat milp's 'optimum' by a few 1e-9, so the sandwich's upper side allows that much, no more.
MILP_TOL = 1e-7

accuracy = st.floats(min_value=1e-3, max_value=1.0, allow_nan=False)
batch_time = st.floats(min_value=1e-3, max_value=5.0, allow_nan=False)


@st.composite
def instances(draw: st.DrawFn, max_k: int = 8, max_n: int = 10_000) -> tuple[Profile, int, float]:
    k = draw(st.integers(1, max_k))
    ps = draw(st.lists(accuracy, min_size=k, max_size=k))
    ts = draw(st.lists(batch_time, min_size=k, max_size=k))
    n = draw(st.integers(0, max_n))
    u = draw(st.floats(0.0, 1.0))
    # The three regimes of the paper: below N * min(t), between, above N * max(t).
    regime = draw(st.sampled_from(["tight", "mixed", "loose"]))
    if regime == "tight":
        deadline = u * n * min(ts)
    elif regime == "mixed":
        deadline = n * (min(ts) + u * (max(ts) - min(ts)))
    else:
        deadline = n * max(ts) * (1.0 + u)
    rates = tuple((i + 1) / k for i in range(k))
    return Profile(rates, tuple(ps), tuple(ts)), n, deadline


def value(profile: Profile, plan: Plan) -> float:
    return math.fsum(c * p for c, p in zip(plan.counts, profile.accuracies, strict=True))


def assert_feasible(profile: Profile, plan: Plan, n: int, deadline: float) -> None:
    assert all(c >= 0 for c in plan.counts)
    assert sum(plan.counts) + plan.dropped == n
    assert plan.late == 0
    total = math.fsum(c * t for c, t in zip(plan.counts, profile.batch_times, strict=True))
    assert within_deadline(total, deadline), (total, deadline)


def assert_matches_milp(profile: Profile, plan: Plan, n: int, deadline: float) -> None:
    """Sandwich our value between milp's feasible solution and its proven bound."""
    ref = milp_optimum(profile, n, deadline)
    ours = value(profile, plan) / max(n, 1)
    upper = max(ref.value, ref.dual_bound) / max(n, 1)
    assert ours <= upper + MILP_TOL, (ours, upper)
    ref_total = math.fsum(c * t for c, t in zip(ref.counts, profile.batch_times, strict=True))
    if sum(ref.counts) <= n and within_deadline(ref_total, deadline):
        lower = math.fsum(c * p for c, p in zip(ref.counts, profile.accuracies, strict=True)) / max(n, 1)
    else:
        # HiGHS accepts rows violated by up to 1e-7; then ask it again with that much less time.
        shrunk = milp_optimum(profile, n, max(0.0, deadline - 1e-6 * max(1.0, deadline)))
        lower = shrunk.value / max(n, 1)
    assert ours >= lower - TOL, (ours, lower, plan.counts, ref.counts)


def assert_within_gap(profile: Profile, plan: Plan, n: int, deadline: float) -> None:
    """A time-budgeted answer that is not proven exact is within its stated gap of milp's optimum."""
    ref = milp_optimum(profile, n, deadline)
    ours = value(profile, plan) / max(n, 1)
    assert ours <= max(ref.value, ref.dual_bound) / max(n, 1) + MILP_TOL
    assert ref.value / max(n, 1) <= ours + plan.gap + TOL, (ours, plan.gap, ref.value / max(n, 1))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_solve_equals_milp_optimum(case: tuple[Profile, int, float]) -> None:
    """The request path (its default budget): always feasible; exact answers are milp's optimum, the others are
    within their proven gap of it."""
    profile, n, deadline = case
    plan = solve(profile, n, deadline)
    assert_feasible(profile, plan, n, deadline)
    if plan.exact:
        assert_matches_milp(profile, plan, n, deadline)
    else:
        assert plan.method == "exact+none" and 0.0 < plan.gap < math.inf
        assert_within_gap(profile, plan, n, deadline)
    offline = solve(profile, n, deadline, fallback="milp", time_budget=None)
    assert offline.exact
    assert_matches_milp(profile, offline, n, deadline)
    expected = value(profile, plan) / n if n else 0.0
    assert math.isclose(plan.effective_accuracy, expected, rel_tol=1e-12, abs_tol=1e-15)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_n=3_000))
def test_branch_and_bound_agrees_with_fast_path(case: tuple[Profile, int, float]) -> None:
    profile, n, deadline = case
    fast = solve_fast(profile, n, deadline, fallback="milp")
    bnb = solve_bnb(profile, n, deadline)
    assert_feasible(profile, bnb, n, deadline)
    if fast.method.endswith("+milp") or bnb.method.endswith("+milp"):
        # A degenerate instance went to HiGHS: both answers are then held to milp's, within its tolerance.
        assert_matches_milp(profile, fast, n, deadline)
        assert_matches_milp(profile, bnb, n, deadline)
    else:
        assert abs(value(profile, fast) - value(profile, bnb)) / max(n, 1) <= TOL


def test_degenerate_profile_goes_to_highs_and_stays_feasible() -> None:
    """Accuracy proportional to time: the LP bound is flat and the problem is a subset-sum."""
    ts = (0.71, 0.93, 0.37, 0.53)
    profile = Profile((0.25, 0.5, 0.75, 1.0), ts, ts)
    n, deadline = 10_000, 1234.567
    plan = solve(profile, n, deadline, fallback="milp", time_budget=None)  # offline: HiGHS finishes it
    assert plan.method == "exact+milp" and plan.exact
    assert_feasible(profile, plan, n, deadline)
    assert_matches_milp(profile, plan, n, deadline)
    # A small node budget gives the same answer by the same road.
    assert solve_fast(profile, n, deadline, node_limit=100, fallback="milp").counts == plan.counts
    # The request path: the search stops (node limit or time budget) and answers with its proven gap.
    quick = solve_fast(profile, n, deadline, node_limit=100)
    assert quick.method == "exact+none" and not quick.exact
    assert_feasible(profile, quick, n, deadline)
    assert_within_gap(profile, quick, n, deadline)
    assert quick.gap < 1e-3, "the LP bound of a degenerate profile is nearly tight"
    # The bounded-time road: the DP, feasible and no better than the optimum.
    bounded = solve(profile, n, deadline, fallback="dp")
    assert bounded.method == "exact+dp"
    assert_feasible(profile, bounded, n, deadline)
    assert value(profile, bounded) <= value(profile, plan) + TOL


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_k=6, max_n=2_000))
def test_dp_is_feasible_and_never_beats_the_optimum(case: tuple[Profile, int, float]) -> None:
    profile, n, deadline = case
    dp = solve_dp(profile, n, deadline, grid=256)
    assert_feasible(profile, dp, n, deadline)
    best = solve_fast(profile, n, deadline, fallback="milp")
    assert value(profile, dp) <= value(profile, best) + TOL * max(n, 1)
    assert value(profile, best) <= value(profile, dp) + (dp.gap + TOL) * max(n, 1), "the DP's gap is proven"


@st.composite
def integer_instances(draw: st.DrawFn) -> tuple[Profile, int, float]:
    """Integer times and deadline: the DP's grid (unit 1) is then exact."""
    k = draw(st.integers(1, 6))
    ps = draw(st.lists(accuracy, min_size=k, max_size=k))
    ts = draw(st.lists(st.integers(1, 40), min_size=k, max_size=k))
    n = draw(st.integers(0, 300))
    deadline = draw(st.integers(0, min(1000, n * max(ts))))
    rates = tuple((i + 1) / k for i in range(k))
    return Profile(rates, tuple(ps), tuple(float(t) for t in ts)), n, float(deadline)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(integer_instances())
def test_dp_fast_path_bnb_and_milp_agree_on_integer_times(case: tuple[Profile, int, float]) -> None:
    profile, n, deadline = case
    dp = solve_dp(profile, n, deadline, grid=1024)
    fast = solve_fast(profile, n, deadline, fallback="milp")
    bnb = solve_bnb(profile, n, deadline)
    if dp.method.startswith("dp"):
        assert dp.method == "dp:exact"
    for plan in (dp, fast, bnb):
        assert_feasible(profile, plan, n, deadline)
    assert abs(value(profile, dp) - value(profile, fast)) <= TOL * max(n, 1)
    assert abs(value(profile, bnb) - value(profile, fast)) <= TOL * max(n, 1)
    assert_matches_milp(profile, fast, n, deadline)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_k=5, max_n=200))
def test_branch_and_bound_with_linprog_lp_agrees(case: tuple[Profile, int, float]) -> None:
    profile, n, deadline = case
    own = solve_bnb(profile, n, deadline, lp="own")
    ref = solve_bnb(profile, n, deadline, lp="linprog")
    assert abs(value(profile, own) - value(profile, ref)) <= 1e-7 * max(n, 1)
