"""Unbounded-knapsack dynamic programme on a discretised deadline — the fallback solver.

Time is measured in whole units of ``u``: each model costs ``w_i = ceil(t_i / u)`` units and the budget
is ``G = floor(D / u)`` units. Rounding costs up and the budget down means ``sum n_i w_i <= G`` implies
``sum n_i t_i <= D``: the DP never returns an infeasible plan. The cardinality row is handled exactly
by a second DP dimension: ``f_c[g]`` is the best value with at most ``c`` mini-batches and at most ``g``
units, ``f_c = max(f_{c-1}, max_i shift(f_{c-1}, w_i) + p_i)``, for ``c`` up to ``min(N, G // w_min)``.

When is it exact? When the grid is commensurate with the profile — every ``t_i / u`` an integer, as for
integer times with ``u = 1`` (chosen automatically when ``t`` and ``D`` are integers and ``D`` fits the
grid). Then the discretised problem *is* the real one and the DP's optimum is the true optimum. Otherwise
rounding costs up can only shrink the feasible set, so the result is a feasible lower bound (the plan's
method says which: ``dp:exact`` or ``dp:approx``). ``solve`` never relies on it for exactness.

Cost is O(C * K * G) vectorised over G, where C = min(N, G // w_min): fine as a fallback, far slower
than the branch-and-bound paths.
"""

from __future__ import annotations

import math

import numpy as np

from scheduler.exact import trivial_plan
from scheduler.plan import Plan, feasible_plan, within_deadline
from scheduler.profile import Profile

DEFAULT_GRID = 1024


def _grid(times: tuple[float, ...], deadline: float, grid: int) -> tuple[float, list[int], int, bool]:
    """Unit, weights, capacity, and whether the grid represents the times exactly."""
    if all(float(t).is_integer() for t in times) and float(deadline).is_integer() and deadline <= grid:
        unit = 1.0
    else:
        unit = deadline / grid
    weights = []
    for t in times:
        w = math.ceil(t / unit)
        if w * unit < t:  # float division can land a hair low; never round a cost down
            w += 1
        weights.append(max(1, w))
    cap = math.floor(deadline / unit)
    while cap > 0 and cap * unit > deadline:
        cap -= 1
    exact = all(w * unit == t for w, t in zip(weights, times, strict=True))
    return unit, weights, cap, exact


def solve_dp(profile: Profile, n_mb: int, deadline: float, grid: int = DEFAULT_GRID) -> Plan:
    """Best plan on a grid of ``grid`` time units (see the module docstring for when it is exact)."""
    if grid < 1:
        raise ValueError(f"grid must be >= 1, got {grid}")
    plan = trivial_plan(profile, n_mb, deadline)
    if plan is not None:
        return plan
    fr = profile.frontier
    _, weights, cap, exact = _grid(fr.ts, deadline, grid)
    m = len(weights)
    ps = np.asarray(fr.ps)
    rounds = min(n_mb, cap // min(weights))
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
            cand = f[: cap + 1 - w] + ps[i]
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
    full = [0] * len(profile)
    for j, c in enumerate(counts):
        full[fr.index[j]] = c
    plan = feasible_plan(profile, full, n_mb, deadline, "dp:exact" if exact else "dp:approx")
    if not within_deadline(plan.total_time, deadline):  # pragma: no cover - guaranteed by rounding
        raise AssertionError(f"DP produced an infeasible plan {plan}")
    return plan
