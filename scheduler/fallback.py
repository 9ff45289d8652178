"""Last resort for exact searches that hit their node limit: HiGHS (``scipy.optimize.milp``).

Only degenerate profiles get here (see ``scheduler.exact``). HiGHS accepts rows violated by up to about
1e-7, so its counts are checked against our own ``within_deadline``; if they fail, it is asked again with
a slightly smaller deadline. The better of HiGHS's plan and the search's incumbent is returned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scheduler.plan import Plan, feasible_plan, within_deadline
from scheduler.profile import Profile
from scheduler.reference import milp_optimum


def _value(profile: Profile, counts: Sequence[int]) -> float:
    return math.fsum(c * p for c, p in zip(counts, profile.accuracies, strict=True))


def _fits(profile: Profile, counts: Sequence[int], n_mb: int, deadline: float) -> bool:
    total = math.fsum(c * t for c, t in zip(counts, profile.batch_times, strict=True))
    return min(counts) >= 0 and sum(counts) <= n_mb and within_deadline(total, deadline)


def finish_with_milp(profile: Profile, n_mb: int, deadline: float, incumbent: Sequence[int], tag: str) -> Plan:
    best = list(incumbent)
    for shrink in (0.0, 1e-7, 1e-5):
        try:
            counts = list(milp_optimum(profile, n_mb, deadline * (1.0 - shrink)).counts)
        except RuntimeError:
            break
        if _fits(profile, counts, n_mb, deadline):
            if _value(profile, counts) > _value(profile, best):
                best = counts
            break
    return feasible_plan(profile, best, n_mb, deadline, f"{tag}+milp")
