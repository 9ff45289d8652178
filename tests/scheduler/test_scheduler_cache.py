"""Plan cache and precomputed plan tables: quantisation never rounds up, cached plans stay feasible and lose
at most the stated bound against the exact optimum."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scheduler.solvers.cache as cache_module
from scheduler import (
    PlanCache,
    PlanTable,
    Profile,
    paper_xray_profile,
    precompute_plans,
    quantise_down,
    solve,
    within_deadline,
)


@settings(max_examples=500, deadline=None)
@given(st.floats(0.0, 1e4), st.sampled_from([1e-4, 1e-3, 0.01, 0.1, 0.3, 1.0 / 3.0]))
def test_quantise_down_never_rounds_up(deadline: float, quantum: float) -> None:
    k = quantise_down(deadline, quantum)
    assert k >= 0
    assert k * quantum <= deadline
    assert (k + 2) * quantum > deadline  # and loses at most about one quantum


def test_quantise_down_float_traps() -> None:
    # 0.7 / 0.1 is 6.999... and 7 * 0.1 is 0.7000000000000001 > 0.7: either way the answer is 6 or 7
    # such that k * q <= D.
    for d, q in ((0.7, 0.1), (0.3, 0.1), (1.0, 0.1), (8.0, 0.001)):
        k = quantise_down(d, q)
        assert k * q <= d and (k + 1) * q > d - 1e-12


def exact(profile: Profile, n_mb: int, deadline: float) -> float:
    return solve(profile, n_mb, deadline, fallback="milp", time_budget=None).effective_accuracy


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 400), st.floats(0.0, 12.0), st.sampled_from([1e-3, 0.01, 0.05]))
def test_cached_plans_are_feasible_and_within_the_loss_bound(n_mb: int, deadline: float, quantum: float) -> None:
    profile = paper_xray_profile()
    cache = PlanCache(quantum=quantum)
    first = cache.plan(profile, n_mb, deadline)
    assert within_deadline(first.total_time, deadline)
    assert exact(profile, n_mb, deadline) - first.effective_accuracy <= cache.max_loss + 1e-12
    # Any deadline in the same quantum is served from the entry (or solved, in a sensitive cell) within it.
    k = quantise_down(deadline, quantum)
    for other in (k * quantum, min(deadline, (k + 0.999) * quantum)):
        for plan in (cache.get(profile, n_mb, other), cache.plan(profile, n_mb, other)):
            if plan is not None:
                assert within_deadline(plan.total_time, other)
                assert exact(profile, n_mb, other) - plan.effective_accuracy <= cache.max_loss + 1e-12


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0.05, 1.0), min_size=1, max_size=6),
    st.lists(st.floats(2e-4, 0.05), min_size=6, max_size=6),
    st.integers(1, 64),
    st.floats(0.0, 1.0),
)
def test_the_loss_bound_holds_for_millisecond_batch_times(
    accs: list[float], times: list[float], n_mb: int, u: float
) -> None:
    """GPU-like profiles, batch times around the quantum: the case where a quantised key used to cost up to
    92 points (issue #14). Every answer stays within max_loss of the exact optimum for its real deadline."""
    k = len(accs)
    profile = Profile(tuple((i + 1) / k for i in range(k)), tuple(accs), tuple(times[:k]))
    deadline = u * n_mb * max(profile.batch_times) * 1.2
    cache = PlanCache()
    for d in (deadline, deadline * 0.999, deadline * 1.0004):
        plan = cache.plan(profile, n_mb, d)
        assert within_deadline(plan.total_time, d)
        assert exact(profile, n_mb, d) - plan.effective_accuracy <= cache.max_loss + 1e-12


def test_one_minibatch_due_at_the_fastest_time_is_served() -> None:
    profile = Profile((1.0, 0.5), (0.9, 0.7), (0.004, 0.0005))
    cache = PlanCache(quantum=0.001)
    for _ in range(2):  # the miss, then the sensitive cell's path
        plan = cache.plan(profile, 1, 0.0005)
        assert plan.counts == (0, 1)
    assert cache.get(profile, 1, 0.0005) is None, "a cell whose floor would lose the mini-batch is never served"


def test_a_deadline_that_is_not_a_number_is_named() -> None:
    profile = paper_xray_profile()
    cache = PlanCache()
    for bad in (float("nan"), float("inf"), -float("inf"), -1.0, None, "1.0"):
        with pytest.raises(ValueError, match="deadline"):
            cache.get(profile, 3, bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="deadline"):
            cache.plan(profile, 3, bad)  # type: ignore[arg-type]
    for bad in (1.5, "3", None, -2, True):
        with pytest.raises(ValueError, match="n_mb"):
            cache.get(profile, bad, 1.0)  # type: ignore[arg-type]


def test_hits_misses_and_lru_eviction() -> None:
    profile = paper_xray_profile()
    cache = PlanCache(quantum=0.01, maxsize=2)
    assert cache.get(profile, 10, 1.0) is None
    a = cache.plan(profile, 10, 1.004)
    assert cache.get(profile, 10, 1.009) is a  # same quantum
    assert cache.get(profile, 10, 1.011) is None  # next quantum
    cache.plan(profile, 11, 1.0)
    cache.get(profile, 10, 1.0)  # touch 10 so that 11 is the least recently used
    cache.plan(profile, 12, 1.0)
    assert len(cache) == 2
    assert cache.get(profile, 11, 1.0) is None and cache.get(profile, 10, 1.0) is a
    assert cache.hits >= 2 and cache.misses >= 3


def test_profiles_do_not_share_entries() -> None:
    a = paper_xray_profile()
    b = Profile(a.rates, a.accuracies, tuple(t * 2 for t in a.batch_times))
    cache = PlanCache()
    cache.plan(a, 20, 0.5)
    assert cache.get(b, 20, 0.5) is None


def test_put_refuses_plans_that_do_not_fit_their_quantised_deadline() -> None:
    profile = paper_xray_profile()
    cache = PlanCache(quantum=0.1, max_loss=1.0)
    plan = solve(profile, 10, 0.45)  # uses time beyond 0.4, the quantised deadline
    assert plan.total_time > 0.4
    with pytest.raises(ValueError, match="fit"):
        cache.put(profile, plan)
    cache.put(profile, solve(profile, 10, 0.4))
    assert cache.get(profile, 10, 0.45) is not None


def test_bad_cache_arguments() -> None:
    with pytest.raises(ValueError, match="quantum"):
        PlanCache(quantum=0.0)
    with pytest.raises(ValueError, match="maxsize"):
        PlanCache(maxsize=0)
    with pytest.raises(ValueError, match="max_loss"):
        PlanCache(max_loss=float("nan"))
    with pytest.raises(ValueError, match="quantum"):
        PlanCache(quantum="0.001")  # type: ignore[arg-type]


def test_precomputed_table_round_trips_and_fills_a_cache() -> None:
    profile = paper_xray_profile()
    deadlines = [0.5 * i for i in range(1, 17)]
    table = precompute_plans(profile, deadlines, [1, 8, 32, 64], quantum=0.001, max_loss=0.01)
    assert len(table.entries) == 16 * 4
    for blob in (table.to_json(), table.to_bytes()):
        back = PlanTable.from_json(blob) if isinstance(blob, str) else PlanTable.from_bytes(blob)
        assert back == table
    # Lookup uses the largest tabled deadline not above the real one, and the plan fits the real one.
    plan = table.lookup(profile, 32, 1.26)
    assert plan is not None and plan.deadline == pytest.approx(1.0)
    assert within_deadline(plan.total_time, 1.26)
    assert plan.counts == solve(profile, 32, 1.0).counts
    assert table.lookup(profile, 32, 0.2) is None  # below the grid
    assert table.lookup(profile, 33, 5.0) is None  # N_mb not tabled
    with pytest.raises(ValueError, match="max_loss"):
        PlanCache(quantum=0.001).load(table, profile)  # a looser table than the cache promises
    cache = PlanCache(quantum=0.001, max_loss=0.01)
    assert cache.load(table, profile) == 64
    hit = cache.get(profile, 8, 2.0)
    assert hit is not None and hit.counts == solve(profile, 8, 2.0).counts


def test_tables_reject_other_profiles_and_quanta() -> None:
    profile = paper_xray_profile()
    other = Profile((1.0,), (0.5,), (0.1,))
    table = precompute_plans(profile, [1.0], [4], quantum=0.01)
    with pytest.raises(ValueError, match="different profile"):
        table.lookup(other, 4, 1.0)
    with pytest.raises(ValueError, match="different profile"):
        PlanCache(quantum=0.01).load(table, other)
    with pytest.raises(ValueError, match="quantum"):
        PlanCache(quantum=0.001).load(table, profile)
    tampered = table.to_json().replace('"version":2', '"version":1')
    with pytest.raises(ValueError, match="version"):
        PlanTable.from_json(tampered)


def test_one_call_searches_for_its_time_budget_in_all_however_many_solves_it_needs(monkeypatch) -> None:
    """A miss solves the cell's floor, its top and (a sensitive cell) the request itself: the floor gets half
    the budget, each later solve what is left. A contract clock: each solve takes 0.4 ms."""
    clock = [100.0]
    budgets: list[float | None] = []
    real_solve = cache_module.solve

    def timed_solve(profile, n_mb, deadline, time_budget=None):
        budgets.append(time_budget)
        clock[0] += 0.0004
        return real_solve(profile, n_mb, deadline, time_budget=None)

    monkeypatch.setattr(cache_module, "solve", timed_solve)
    monkeypatch.setattr(cache_module, "perf_counter", lambda: clock[0])
    cache = PlanCache(time_budget=0.001)
    xray = paper_xray_profile()
    t_min = min(xray.batch_times)
    cache.plan(xray, 1, t_min)  # N = 1 at D = t_min: a sensitive cell, three solves
    assert cache.sensitive == 1 and len(budgets) == 3
    assert budgets[0] == pytest.approx(0.0005)  # the floor: half
    assert budgets[1] == pytest.approx(0.0006)  # the top: 1 ms - 0.4 ms spent
    assert budgets[2] == pytest.approx(0.0002)  # the request: what is left
    budgets.clear()
    cache.plan(xray, 1, t_min, time_left=0.0002)  # the cell is known (sensitive): one solve, its own budget
    assert budgets == [pytest.approx(0.0002)]
    with pytest.raises(ValueError, match="time_left"):
        cache.plan(xray, 1, t_min, time_left=0.0)
