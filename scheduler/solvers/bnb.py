"""Paper-style branch-and-bound over LP relaxations (SINGA-Easy §3, Algorithm 2).

Each node is a box ``lower <= n <= upper`` on the counts; its LP relaxation is solved by our own
``lp.box_lp`` (or by ``scipy.optimize.linprog`` with ``lp="linprog"``, for cross-checking). A node with
a fractional LP optimum branches on one fractional count ``x_j`` into ``n_j <= floor(x_j)`` and
``n_j >= ceil(x_j)``. Exact by the textbook argument: the two children partition the node's integer
points, an LP optimum bounds every integer point in its box, and a node is discarded only when that
bound cannot beat the incumbent; the boxes are finite, so the search ends. It is slower than
``exact.solve_fast`` (one LP per node instead of a closed form) and is kept as the paper's method and an
independent cross-check. Degenerate profiles (accuracy proportional to time) make any LP-based search
exponential; after ``node_limit`` LPs the instance goes to HiGHS, as in ``scheduler.solvers.exact``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linprog

from scheduler.plan import PRUNE_RTOL, Plan, feasible_plan, search_budget, within_deadline
from scheduler.profile import Profile
from scheduler.solvers.fallback import finish_hard
from scheduler.solvers.lp import BoxLPResult, box_lp
from scheduler.solvers.trivial import trivial_plan

# An LP count within this of an integer is treated as integral (the LP is exact up to float noise).
_INT_TOL = 1e-9
DEFAULT_NODE_LIMIT = 10_000


def _linprog_lp(
    accs: list[float], times: list[float], n: float, d: float, lower: list[float], upper: list[float]
) -> BoxLPResult:
    res = linprog(
        -np.asarray(accs),
        A_ub=np.vstack([np.ones(len(accs)), np.asarray(times)]),
        b_ub=[n, d],
        bounds=list(zip(lower, [None if math.isinf(u) else u for u in upper], strict=True)),
        method="highs",
    )
    if res.status != 0:
        return BoxLPResult(-math.inf, tuple(lower), False)
    return BoxLPResult(-float(res.fun), tuple(float(v) for v in res.x), True)


def solve_bnb(
    profile: Profile,
    n_mb: int,
    deadline: float,
    lp: str = "own",
    node_limit: int = DEFAULT_NODE_LIMIT,
    fallback: str = "milp",
) -> Plan:
    """Exact optimum by LP-based branch-and-bound on the non-dominated sub-models.

    Like the fast path, it hands degenerate instances to ``fallback`` after ``node_limit`` LPs.
    """
    if lp not in ("own", "linprog"):
        raise ValueError(f"lp must be 'own' or 'linprog', got {lp!r}")
    plan = trivial_plan(profile, n_mb, deadline)
    if plan is not None:
        return plan
    fr = profile.frontier
    accs, times = list(fr.ps), list(fr.ts)
    m = len(accs)
    budget = search_budget(deadline)
    solve_lp = box_lp if lp == "own" else _linprog_lp
    eps = PRUNE_RTOL * max(1, n_mb)
    best_val, best = 0.0, [0] * m
    stack: list[tuple[list[float], list[float]]] = [([0.0] * m, [math.inf] * m)]
    nodes = 0
    while stack:
        nodes += 1
        if nodes > node_limit:
            break
        lower, upper = stack.pop()
        res = solve_lp(accs, times, float(n_mb), budget, lower, upper)
        if not res.feasible or res.value <= best_val + eps:
            continue
        frac = [j for j, x in enumerate(res.x) if abs(x - round(x)) > _INT_TOL]
        if not frac:
            counts = [int(round(x)) for x in res.x]
            val = sum(c * p for c, p in zip(counts, accs, strict=True))
            total = sum(c * t for c, t in zip(counts, times, strict=True))
            if sum(counts) <= n_mb and total <= budget and val > best_val + eps:
                best_val, best = val, counts
            continue
        # Round down the LP and complete greedily: a cheap incumbent that makes the bounds bite early.
        floor_counts = [math.floor(x + _INT_TOL) for x in res.x]
        counts = _greedy_complete(floor_counts, accs, times, n_mb, budget)
        val = sum(c * p for c, p in zip(counts, accs, strict=True))
        if val > best_val + eps:
            best_val, best = val, counts
        j = max(frac, key=lambda i: accs[i])  # branch on the most accurate fractional count
        x = res.x[j]
        down_upper = upper.copy()
        down_upper[j] = float(math.floor(x))
        up_lower = lower.copy()
        up_lower[j] = float(math.ceil(x))
        # Depth-first; the child nearer the LP value is explored first (pushed last).
        children = [(lower, down_upper), (up_lower, upper)]
        if x - math.floor(x) >= 0.5:
            children.reverse()
        stack.extend(children)
    full = [0] * len(profile)
    for j, c in enumerate(best):
        full[fr.index[j]] = c
    if stack:
        return finish_hard(profile, n_mb, deadline, full, f"bnb:{lp}", fallback)
    plan = feasible_plan(profile, full, n_mb, deadline, f"bnb:{lp}")
    if not within_deadline(plan.total_time, deadline):  # pragma: no cover - guarded by SEARCH_RTOL
        raise AssertionError(f"branch-and-bound produced an infeasible plan {plan}")
    return plan


def _greedy_complete(
    counts: list[int], accs: list[float], times: list[float], n: int, budget: float
) -> list[int]:
    """Fill spare mini-batches and time, most accurate model first, as many as fit."""
    counts = counts.copy()
    n_left = n - sum(counts)
    d_left = budget - sum(c * t for c, t in zip(counts, times, strict=True))
    for j in sorted(range(len(accs)), key=lambda i: -accs[i]):
        if n_left <= 0 or d_left <= 0.0:
            break
        q = min(n_left, int(d_left / times[j]))
        if q > 0:
            counts[j] += q
            n_left -= q
            d_left -= q * times[j]
    return counts
