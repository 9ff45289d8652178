"""Finishing searches that hit their node limit (degenerate profiles, see ``scheduler.exact``).

``"milp"``: HiGHS (``scipy.optimize.milp``). It accepts rows violated by up to about 1e-7, so its counts
are checked against our own ``within_deadline``; if they fail, it is asked again with a slightly smaller
deadline. ``"dp"``: the knapsack DP, bounded in time, a feasible lower bound. Either way the better of
that plan and the search's incumbent is returned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scheduler.dp import solve_dp
from scheduler.plan import Plan, feasible_plan, within_deadline
from scheduler.profile import Profile
from scheduler.reference import milp_optimum

FALLBACKS = ("milp", "dp")


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
    if fallback == "milp":
        other = _milp_counts(profile, n_mb, deadline)
    else:
        other = list(solve_dp(profile, n_mb, deadline).counts)
    best = list(incumbent)
    if other is not None and _value(profile, other) > _value(profile, best):
        best = other
    return feasible_plan(profile, best, n_mb, deadline, f"{tag}+{fallback}")
