"""Finishing searches that stopped early: node limit (degenerate profiles) or time budget.

``"none"`` (the request path): the search's incumbent, with its proven gap to the root LP bound.
``"dp"``: the knapsack DP, bounded in time, a feasible lower bound. ``"milp"`` (offline and tests only:
unbounded time): HiGHS (``scipy.optimize.milp``), which accepts rows violated by up to about 1e-7, so its
counts are checked against our own ``within_deadline``; if they fail, it is asked again with a slightly
smaller deadline. Either way the better of that plan and the incumbent is returned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scheduler.plan import Plan, feasible_plan, within_deadline
from scheduler.profile import Profile
from scheduler.solvers.dp import root_gap, solve_dp
from scheduler.solvers.reference import milp_optimum

FALLBACKS = ("none", "dp", "milp")


def _value(profile: Profile, counts: Sequence[int]) -> float:
    return math.fsum(c * p for c, p in zip(counts, profile.accuracies, strict=True))


def _fits(profile: Profile, counts: Sequence[int], n_mb: int, deadline: float) -> bool:
    total = math.fsum(c * t for c, t in zip(counts, profile.batch_times, strict=True))
    return min(counts) >= 0 and sum(counts) <= n_mb and within_deadline(total, deadline)


def _milp_counts(profile: Profile, n_mb: int, deadline: float) -> list[int] | None:
    for shrink in (0.0, 1e-7, 1e-5):
        try:
            counts = list(milp_optimum(profile, n_mb, deadline * (1.0 - shrink)).counts)
        except RuntimeError:
            return None
        if _fits(profile, counts, n_mb, deadline):
            return counts
    return None


def finish_hard(
    profile: Profile, n_mb: int, deadline: float, incumbent: Sequence[int], tag: str, fallback: str
) -> Plan:
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {', '.join(FALLBACKS)}, got {fallback!r}")
    other = None
    exact = False
    if fallback == "milp":
        other = _milp_counts(profile, n_mb, deadline)
        exact = other is not None
    elif fallback == "dp":
        dp = solve_dp(profile, n_mb, deadline)
        other, exact = list(dp.counts), dp.exact
    best = list(incumbent)
    if other is not None and _value(profile, other) > _value(profile, best):
        best = other  # (an incumbent at least as good as an exact answer is exact too)
    gap = 0.0 if exact else root_gap(profile, n_mb, deadline, _value(profile, best))
    return feasible_plan(profile, best, n_mb, deadline, f"{tag}+{fallback}", gap)

