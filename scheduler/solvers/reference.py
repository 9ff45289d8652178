"""Reference solver: the same integer programme handed to ``scipy.optimize.milp`` (HiGHS).

Used offline — by the tests and the benchmarks as ground truth, and as ``fallback="milp"`` for precomputed
tables — never on the request path: its time is unbounded (seconds on degenerate profiles).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from scheduler.plan import Plan, build_plan
from scheduler.profile import Profile


@dataclass(frozen=True, slots=True)
class MilpResult:
    counts: tuple[int, ...]
    value: float  # HiGHS's objective, sum(n_i p_i) (not divided by N)
    dual_bound: float  # HiGHS's proven upper bound on the optimum


def milp_optimum(profile: Profile, n_mb: int, deadline: float) -> MilpResult:
    """Solve with HiGHS, relative gap 0; counts rounded from its (integral up to 1e-6) solution."""
    k = len(profile)
    p = np.asarray(profile.accuracies)
    a = np.vstack([np.ones(k), np.asarray(profile.batch_times)])
    res = milp(
        -p,
        constraints=LinearConstraint(a, -np.inf, [n_mb, deadline]),
        integrality=np.ones(k),
        bounds=Bounds(0, np.inf),
        options={"mip_rel_gap": 0.0},
    )
    if res.status != 0 or res.x is None:
        raise RuntimeError(f"milp failed: {res.message}")
    counts = tuple(int(round(x)) for x in res.x)
    return MilpResult(counts, -float(res.fun), -float(res.mip_dual_bound))


def solve_milp(profile: Profile, n_mb: int, deadline: float) -> Plan:
    """A Plan from milp's counts (its feasibility tolerance is HiGHS's, not ours: see ``within_deadline``)."""
    return build_plan(profile, milp_optimum(profile, n_mb, deadline).counts, n_mb, deadline, "milp", gap=0.0)
