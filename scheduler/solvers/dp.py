"""Unbounded-knapsack dynamic programme on a discretised deadline — the bounded-time fallback solver.

Two steps:

1. Fix the bulk. Take the LP optimum ``x*`` (``lp.hull_lp_solution``: at most two models) and commit
   ``l_i = max(0, floor(x*_i) - margin)`` mini-batches of each model up front; only the residual
   (``N - sum l``, ``D - sum l_i t_i``) goes to the DP. That keeps the DP small whatever N and D are.
2. DP on the residual. Time is measured in whole units ``u``: model i costs ``w_i = ceil(t_i / u)`` units
   and the budget is ``G = floor(D' / u)`` units; rounding costs up and the budget down means
   ``sum n_i w_i <= G`` implies ``sum n_i t_i <= D'`` — the DP never returns an infeasible plan. The
   cardinality row is exact: ``f_c[g]`` is the best value with at most ``c`` mini-batches in ``g`` units,
   ``f_c = max(f_{c-1}, max_i shift(f_{c-1}, w_i) + p_i)``.

When is it exact? With integer times and deadline: the proximity theorem of Cook, Gerards, Schrijver and
Tardos (1986) puts an integer optimum within ``K * Delta`` of any LP optimum in every coordinate, where
``Delta`` — the largest subdeterminant of the constraint matrix ``[1 ... 1; t_1 ... t_K]`` — is at most
``max(t)``. With ``margin = K * max(t)`` step 1 therefore cuts off no optimum, and with unit ``u = 1``
(used when the residual fits ``max_grid`` units) step 2 is the real problem. The plan's method is then
``dp:exact``. Otherwise (real-valued times, or a residual too large for unit steps) the margin is a
heuristic and rounding costs up can only shrink the feasible set: the result is a feasible lower bound
(``dp:approx``). ``solve`` relies on it only when asked (``fallback="dp"``), never for exactness.
"""

from __future__ import annotations

import math

import numpy as np

from scheduler.plan import Plan, feasible_plan, search_budget, within_deadline
from scheduler.profile import Profile
from scheduler.solvers.lp import hull_lp, hull_lp_solution
from scheduler.solvers.trivial import trivial_plan

DEFAULT_GRID = 4096  # units for the residual deadline when times are real-valued
MAX_GRID = 1 << 16  # largest unit-1 grid tried for integer data
DEFAULT_MARGIN = 16  # mini-batches per model left to the DP around the LP optimum (real-valued times)


def _weights(times: tuple[float, ...], unit: float) -> list[int]:
    weights = []
    for t in times:
        w = math.ceil(t / unit)
        if w * unit < t:  # float division can land a hair low; never round a cost down
            w += 1
        weights.append(max(1, w))
    return weights


def _knapsack(ps: tuple[float, ...], weights: list[int], n: int, cap: int) -> list[int]:
    """Exact unbounded knapsack with a cardinality row on integer weights: counts per model."""
    m = len(weights)
    rounds = min(n, cap // min(weights))
    values = np.asarray(ps)
    f = np.zeros(cap + 1)
    # choice[c, g]: model added at step c for budget g, or -1 when f_c[g] = f_{c-1}[g].
    choice = np.full((rounds, cap + 1), -1, dtype=np.int8)
    for c in range(rounds):
        nxt = f.copy()
        pick = choice[c]
        for i in range(m):
            w = weights[i]
            if w > cap:
                continue
            cand = f[: cap + 1 - w] + values[i]
            better = cand > nxt[w:]
            nxt[w:][better] = cand[better]
            pick[w:][better] = i
        f = nxt
    counts = [0] * m
    g = cap
    for c in range(rounds - 1, -1, -1):
        i = int(choice[c, g])
        if i >= 0:
            counts[i] += 1
            g -= weights[i]
    return counts


def solve_dp(
    profile: Profile, n_mb: int, deadline: float, grid: int = DEFAULT_GRID, margin: int | None = None
) -> Plan:
    """Best plan by the two steps above; exact for integer data (see the module docstring)."""
    if grid < 1:
        raise ValueError(f"grid must be >= 1, got {grid}")
    plan = trivial_plan(profile, n_mb, deadline)
    if plan is not None:
        return plan
    fr = profile.frontier
    ts, ps = fr.ts, fr.ps
    integral = all(float(t).is_integer() for t in ts) and float(deadline).is_integer()
    if margin is None:
        margin = int(len(ts) * max(ts)) if integral else DEFAULT_MARGIN
    x = hull_lp_solution(ts, fr.hulls[-1], float(n_mb), deadline)
    fixed = [max(0, math.floor(xi) - margin) for xi in x]
    n_left = n_mb - sum(fixed)
    # Integer data: exact arithmetic, no tolerance needed. Real data: the shared search tolerance.
    d_left = (deadline if integral else search_budget(deadline)) - sum(
        c * t for c, t in zip(fixed, ts, strict=True)
    )
    exact = integral and d_left <= MAX_GRID
    unit = 1.0 if exact else max(d_left, 0.0) / grid
    extra = [0] * len(ts)
    if d_left > 0.0 and n_left > 0 and unit > 0.0:
        weights = _weights(ts, unit)
        cap = math.floor(d_left / unit)
        while cap > 0 and cap * unit > d_left:
            cap -= 1
        extra = _knapsack(ps, weights, n_left, cap)
    full = [0] * len(profile)
    for j in range(len(ts)):
        full[fr.index[j]] = fixed[j] + extra[j]
    value = math.fsum(c * p for c, p in zip(full, profile.accuracies, strict=True))
    gap = 0.0 if exact else root_gap(profile, n_mb, deadline, value)
    plan = feasible_plan(profile, full, n_mb, deadline, "dp:exact" if exact else "dp:approx", gap)
    if not within_deadline(plan.total_time, deadline):  # pragma: no cover - guaranteed by rounding
        raise AssertionError(f"DP produced an infeasible plan {plan}")
    return plan


def root_gap(profile: Profile, n_mb: int, deadline: float, value: float) -> float:
    """Proven bound on the optimum's effective accuracy above ``value / n_mb``: the LP relaxation's."""
    if n_mb == 0:
        return 0.0
    bound = hull_lp(profile.frontier.hulls[-1], float(n_mb), search_budget(deadline))
    return max(0.0, bound - value) / n_mb
