"""The joint (n_i, b_i) planner: hand-computed cases, equal to the exact method with one size, exact against a
brute force over every (b_i, n_i), and never past the deadline."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler import (
    BatchProfile,
    Profile,
    fixed_size_plan,
    plan_batch_sizes,
    solve,
    solve_granules,
    within_deadline,
)

# Two widths; the narrow one's fixed cost per call is a large share of its time (t(8) vs t(64)).
HAND = BatchProfile(rates=(1.0, 0.5), accuracies=(0.9, 0.7), batch_sizes=(8, 64),
                    batch_times=((0.010, 0.004), (0.040, 0.012)))


def test_hand_computed_joint_plan_beats_every_fixed_size() -> None:
    # 72 instances, 50 ms. Fixed 64 (2 mini-batches): wide+narrow = 52 ms does not fit; the exact method takes
    # both narrow (0.7 per instance). Fixed 8 (9 mini-batches): 0.01 x + 0.004 (9 - x) <= 0.05 -> x = 2 wide,
    # 7 narrow: (2 * 0.9 + 7 * 0.7) / 9 = 0.7444. Joint: one wide 64 (40 ms) + one narrow 8 (4 ms) = 44 ms,
    # every instance served: (64 * 0.9 + 8 * 0.7) / 72 = 0.8778.
    joint = plan_batch_sizes(HAND, 72, 0.05)
    assert joint.batch_sizes == (64, 8) and joint.counts == (1, 1) and joint.instances == (64, 8)
    assert joint.effective_accuracy == pytest.approx((64 * 0.9 + 8 * 0.7) / 72)
    assert joint.total_time == pytest.approx(0.044) and joint.dropped == 0
    assert joint.order == ((1, 1), (0, 1))  # cheaper per instance first: narrow 0.5 ms, wide 0.625 ms
    at_64 = fixed_size_plan(HAND, 64, 72, 0.05)
    assert at_64.counts == (0, 2) and at_64.effective_accuracy == pytest.approx(0.7)
    at_8 = fixed_size_plan(HAND, 8, 72, 0.05)
    assert at_8.counts == (2, 7) and at_8.effective_accuracy == pytest.approx((2 * 0.9 + 7 * 0.7) / 9)


def test_partial_mini_batch_is_the_last_run_and_loose_deadline_runs_all_wide() -> None:
    plan = plan_batch_sizes(HAND, 70, 1.0)  # time for everything at full width
    assert plan.instances == (70, 0) and plan.effective_accuracy == pytest.approx(0.9)
    assert plan.batch_sizes[0] == 64 and plan.counts[0] == 2  # 64 + 6: the cheapest way to cover 70
    tight = plan_batch_sizes(HAND, 70, 0.003)  # not even one narrow mini-batch of 8
    assert tight.instances == (0, 0) and tight.effective_accuracy == 0.0 and tight.total_time == 0.0
    assert plan_batch_sizes(HAND, 0, 0.05).effective_accuracy == 0.0


@st.composite
def grids(draw: st.DrawFn, max_widths: int = 3) -> tuple[BatchProfile, int, float]:
    k = draw(st.integers(1, max_widths))
    ps = draw(st.lists(st.floats(0.05, 1.0), min_size=k, max_size=k))
    sizes = draw(st.sets(st.sampled_from((8, 16, 32, 64)), min_size=1, max_size=4))
    # t_i(b) = fixed cost + b * per-instance cost, with noise: the shape measured on CPUs.
    base = draw(st.lists(st.floats(1e-4, 5e-3), min_size=k, max_size=k))
    per = draw(st.lists(st.floats(1e-5, 1e-3), min_size=k, max_size=k))
    rows = [tuple(f + b * c * draw(st.floats(0.8, 1.2)) for f, c in zip(base, per, strict=True)) for b in sorted(sizes)]
    n = draw(st.integers(0, 200))
    worst = max(max(r) for r in rows) * -(-n // min(sizes))
    deadline = draw(st.floats(0.0, 1.0)) * worst
    rates = tuple((i + 1) / k for i in range(k))
    return BatchProfile(rates, tuple(ps), tuple(sorted(sizes)), tuple(rows)), n, deadline


def granule_value(profile: BatchProfile, sizes: tuple[int, ...], counts: tuple[int, ...], n: int) -> float:
    """sum(m_i p_i) for the granules m_i these mini-batches can cover, the most accurate widths first."""
    g, left, value = profile.granule, -(-n // profile.granule), 0.0
    for i in sorted(range(len(sizes)), key=lambda i: -profile.accuracies[i]):
        m = min(left, counts[i] * sizes[i] // g)
        value += m * profile.accuracies[i]
        left -= m
    return value


def brute_force(profile: BatchProfile, n: int, deadline: float) -> float:
    """The best granule value over every (b_i, n_i): independent of the planner's cost model."""
    g = profile.granule
    choices = []
    for i in range(len(profile)):
        choices.append([(b, c) for k, b in enumerate(profile.batch_sizes)
                        for c in range(-(-(-(-n // g) * g) // b) + 1)
                        if c * profile.batch_times[k][i] <= deadline * (1 + 1e-9)])
    best = 0.0
    for combo in itertools.product(*choices):
        times = [c * profile.batch_times[profile.batch_sizes.index(b)][i] for i, (b, c) in enumerate(combo)]
        if within_deadline(math.fsum(times), deadline):
            best = max(best, granule_value(profile, tuple(b for b, _ in combo), tuple(c for _, c in combo), n))
    return best


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grids(max_widths=2).filter(lambda case: case[1] <= 96))
def test_joint_plan_is_the_brute_force_optimum_and_fits(case: tuple[BatchProfile, int, float]) -> None:
    profile, n, deadline = case
    plan = plan_batch_sizes(profile, n, deadline)
    assert within_deadline(plan.total_time, deadline)
    assert sum(plan.instances) <= n and all(c >= 0 for c in plan.counts)
    if len(profile.batch_sizes) > 1:
        assert granule_value(profile, plan.batch_sizes, plan.counts, n) == pytest.approx(
            brute_force(profile, n, deadline), abs=1e-9)


@settings(max_examples=80, deadline=None)
@given(grids())
def test_never_past_the_deadline_and_never_below_a_fixed_size(case: tuple[BatchProfile, int, float]) -> None:
    profile, n, deadline = case
    plan = plan_batch_sizes(profile, n, deadline)
    assert within_deadline(plan.total_time, deadline)
    assert sum(plan.instances) + plan.dropped == n
    for b in profile.batch_sizes:
        fixed = fixed_size_plan(profile, b, n, deadline)
        # Every fixed-size plan is a joint plan; per instance the granule objective may differ by the task's
        # partial granule (fewer than g instances) only.
        assert plan.effective_accuracy >= fixed.effective_accuracy - profile.granule / max(n, 1) - 1e-12


@settings(max_examples=80, deadline=None)
@given(grids(max_widths=4).filter(lambda case: len(case[0].batch_sizes) == 1))
def test_one_size_is_the_exact_method(case: tuple[BatchProfile, int, float]) -> None:
    profile, n, deadline = case
    b = profile.batch_sizes[0]
    plan = plan_batch_sizes(profile, n, deadline)
    exact = solve(profile.at(b), -(-n // b), deadline, time_budget=None)
    assert plan.method == "exact" and plan.counts == exact.counts and plan.batch_sizes == (b,) * len(profile)
    # And the granule DP on that one size reaches the exact method's optimum too (its exactness, checked).
    n_mb = -(-n // b)
    costs = [[m * t for m in range(n_mb + 1)] for t in profile.at(b).batch_times]
    granules = solve_granules(costs, profile.accuracies, n_mb, deadline)
    ours = math.fsum(m * p for m, p in zip(granules, profile.accuracies, strict=True))
    theirs = math.fsum(c * p for c, p in zip(exact.counts, profile.accuracies, strict=True))
    assert ours == pytest.approx(theirs, abs=1e-9)


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"batch_sizes": (8, 8)}, "batch_sizes"),
    ({"batch_sizes": ()}, "batch_sizes"),
    ({"batch_sizes": (8, 0)}, "batch_sizes"),
    ({"batch_times": ((0.01, 0.004),)}, "batch_times"),
    ({"batch_times": ((0.01, -1.0), (0.04, 0.012))}, "batch_times"),
    ({"accuracies": (0.9, 1.7)}, "accuracies"),
])
def test_bad_profiles_name_the_argument(kwargs: dict[str, object], name: str) -> None:
    args = {"rates": (1.0, 0.5), "accuracies": (0.9, 0.7), "batch_sizes": (8, 64),
            "batch_times": ((0.010, 0.004), (0.040, 0.012))} | kwargs
    with pytest.raises(ValueError, match=name):
        BatchProfile(**args)


def test_bad_requests_name_the_argument() -> None:
    with pytest.raises(ValueError, match="n_instances"):
        plan_batch_sizes(HAND, -1, 0.05)
    with pytest.raises(ValueError, match="deadline"):
        plan_batch_sizes(HAND, 10, float("nan"))
    with pytest.raises(ValueError, match="profile"):
        plan_batch_sizes(Profile((1.0,), (0.9,), (0.01,)), 10, 0.05)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        HAND.at(32)
