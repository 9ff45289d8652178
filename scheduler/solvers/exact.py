"""The exact fast path: a depth-first branch-and-bound on the frontier with closed-form LP bounds.

Why it returns the true integer optimum (up to the shared tolerances in ``scheduler.plan``):

1. Pruning dominated sub-models loses nothing (``profile.pareto_frontier``): every optimum can be moved
   onto the frontier, whose models sorted by time have strictly increasing accuracy.
2. The search fixes the count ``c`` of the slowest free frontier model, then recurses on the faster ones
   with ``n - c`` mini-batches and ``d - c * t`` time. Every integer vector is reachable this way.
3. A node is skipped only if ``F(c) = c * p + LP(rest)`` is no better than the incumbent, where
   ``LP(rest)`` is the exact LP optimum of the remaining models (``lp.hull_lp``: the concave envelope
   through the origin, i.e. the LP's at-most-two-non-zero optimum). An LP optimum bounds every integer
   completion, so no better plan is cut.
4. ``F`` is concave in ``c`` (an LP's optimal value is concave in its right-hand side) and is maximised
   at the LP's own amount ``c*`` of that model. So we walk ``c`` outward from ``c*`` in both directions
   and stop each walk at the first ``F(c)`` that cannot beat the incumbent: every ``c`` further out is
   smaller still. This is what keeps the search to a handful of nodes.
5. With a single model left the best completion is closed-form: ``min(n, floor(d / t))`` of it.

The incumbent starts at "drop everything" (always feasible) and the first dive follows the rounded LP
solution, so a near-optimal plan is found at once and the rest of the tree is mostly bound away.

Degenerate profiles. When accuracy is (almost) proportional to time for several models, the LP bound is
flat — every ``c`` looks equally good — and the problem is a subset-sum in disguise (fill ``D`` as
closely as possible); no LP-based bound prunes it and the search can need exponentially many nodes.
After ``node_limit`` bound evaluations the search stops and hands the instance to HiGHS
(``fallback.finish_hard``), whose cuts handle that case; the answer is then HiGHS's optimum (gap 0,
re-solved with a slightly smaller deadline if its 1e-7 feasibility tolerance let the plan fail
``within_deadline``) or our incumbent if that is better. With ``fallback="dp"`` the knapsack DP is used
instead: bounded time, but only a feasible lower bound. Random and measured profiles never come near the
limit (see ``DEFAULT_NODE_LIMIT``).

Time budget (the request path). With ``time_budget`` the search also stops once that many seconds have
passed — checked every ``_TICK`` bounds, and never before ``MIN_NODES`` bounds, so that the small searches
of measured profiles (~15 bounds, at most ~200) finish exactly however busy the machine is. A stopped search returns
its incumbent (always feasible) with ``gap`` = the root LP bound minus its value, per mini-batch: a proven
bound on what the optimum can have above it. ``fallback="none"`` (the default) stops there; ``"dp"`` or
``"milp"`` (offline: HiGHS, unbounded time) finish the search as above.
"""

from __future__ import annotations

import time

from scheduler.plan import PRUNE_RTOL, Plan, feasible_plan, search_budget, within_deadline
from scheduler.profile import Profile
from scheduler.solvers.fallback import finish_hard
from scheduler.solvers.lp import hull_lp, hull_lp_last
from scheduler.solvers.trivial import trivial_plan

# Bounds evaluated before the search gives up (see "Degenerate profiles" above). Random profiles need
# ~15 at the median and ~2,000 at worst in 30,000 draws; this is ~0.1 s of Python.
DEFAULT_NODE_LIMIT = 50_000
# Bounds always evaluated before a time budget may stop the search: every one of 3,000 realistic instances
# finishes within 256 (so a preempted search still ends exact), and 256 bounds cost 0.2-0.5 ms of CPU (K = 2
# to 12), about the default 0.5 ms budget; at 512, K = 12 searches overran it whatever the clock said.
MIN_NODES = 256
_TICK = 16  # bounds between two looks at the clock (~15-40 us): how far past its budget a search can run


def solve_fast(
    profile: Profile,
    n_mb: int,
    deadline: float,
    node_limit: int = DEFAULT_NODE_LIMIT,
    fallback: str = "none",
    time_budget: float | None = None,
) -> Plan:
    """Optimum by the frontier branch-and-bound described in the module docstring.

    Exact (``plan.gap == 0``) unless the search hits ``node_limit`` or ``time_budget`` seconds; then
    ``fallback`` says what finishes it: ``"none"`` (the incumbent and its proven gap), ``"dp"``
    (``dp.solve_dp``, bounded time) or ``"milp"`` (HiGHS, exact to its tolerance, unbounded time).
    """
    plan = trivial_plan(profile, n_mb, deadline)
    if plan is not None:
        return plan
    fr = profile.frontier
    budget = search_budget(deadline)
    stop_at = None if time_budget is None else time.perf_counter() + time_budget
    counts, complete = _search(fr.ts, fr.ps, fr.hulls, n_mb, budget, node_limit, stop_at)
    full = [0] * len(profile)
    for j, c in enumerate(counts):
        full[fr.index[j]] = c
    if not complete:
        return finish_hard(profile, n_mb, deadline, full, "exact", fallback)
    plan = feasible_plan(profile, full, n_mb, deadline, "exact")
    if not within_deadline(plan.total_time, deadline):  # pragma: no cover - guarded by SEARCH_RTOL
        raise AssertionError(f"exact search produced an infeasible plan {plan}")
    return plan


class _NodeLimit(Exception):
    pass


def _search(
    ts: tuple[float, ...],
    ps: tuple[float, ...],
    hulls: tuple,
    n: int,
    budget: float,
    node_limit: int,
    stop_at: float | None = None,
) -> tuple[list[int], bool]:
    """Counts per frontier model maximising value, and whether the search finished within its limits."""
    m = len(ts)
    eps = PRUNE_RTOL * max(1, n)
    first = min(_TICK, node_limit)
    state = [0.0, [0] * m, first]  # incumbent value, its counts, bounds left until the next checkpoint
    spent = [first]  # bounds granted so far
    cur = [0] * m
    t0, p0 = ts[0], ps[0]

    def checkpoint() -> None:
        # Called when the bounds granted so far are used up: grant the next tick, or stop.
        if spent[0] >= node_limit:
            raise _NodeLimit
        if stop_at is not None and spent[0] >= MIN_NODES and time.perf_counter() > stop_at:
            raise _NodeLimit
        tick = min(_TICK, node_limit - spent[0])
        spent[0] += tick
        state[2] = tick - 1  # this call's bound is the first of the new tick

    def walk(k: int, n_left: int, d_left: float, v: float) -> None:
        # k = number of free frontier models (indices 0..k-1); model k-1 is branched on here.
        if k == 1:  # closed-form completion with the fastest model
            q = int(d_left / t0) if d_left > 0.0 else 0
            if q > n_left:
                q = n_left
            val = v + q * p0
            if val > state[0] + eps:
                cur[0] = q
                state[0] = val
                state[1] = cur[:]
            return
        t, p, rest = ts[k - 1], ps[k - 1], hulls[k - 2]
        cmax = int(d_left / t) if d_left > 0.0 else 0
        if cmax > n_left:
            cmax = n_left
        c0 = int(hull_lp_last(hulls[k - 1], n_left, d_left))
        if c0 > cmax:
            c0 = cmax
        for c, step, stop in ((c0, -1, -1), (c0 + 1, 1, cmax + 1)):
            while c != stop:  # walk down from the LP amount, then up from it
                state[2] -= 1
                if state[2] < 0:
                    checkpoint()
                d_c = d_left - c * t
                if v + c * p + hull_lp(rest, n_left - c, d_c) <= state[0] + eps:
                    break
                cur[k - 1] = c
                walk(k - 1, n_left - c, d_c, v + c * p)
                c += step
        cur[k - 1] = 0

    try:
        walk(m, n, budget, 0.0)
    except _NodeLimit:
        return state[1], False
    return state[1], True
