"""``solve``: one entry point that validates a request and picks a solver."""

from __future__ import annotations

from scheduler.checks import positive, request
from scheduler.gc_pause import gc_paused
from scheduler.plan import Plan
from scheduler.profile import Profile
from scheduler.solvers.bnb import solve_bnb
from scheduler.solvers.dp import solve_dp
from scheduler.solvers.exact import solve_fast
from scheduler.solvers.fallback import FALLBACKS
from scheduler.solvers.reference import solve_milp
from scheduler.solvers.trivial import paper_fast_case

METHODS = ("auto", "exact", "bnb", "dp", "paper", "milp")
# The request path's time budget: at most DEFAULT_TIME_BUDGET seconds of search, and at most TIME_FRACTION
# of the task's own time (a decision should cost a small share of what it decides about). Half a millisecond:
# the searches that run into it (degenerate and near-tie profiles) then cost ~0.6 ms of CPU at p99.9, so a
# decision stays under 2 ms of wall time with room for the machine's own interruptions; measured profiles
# finish exactly well inside it (exact.MIN_NODES).
DEFAULT_TIME_BUDGET = 0.0005
TIME_FRACTION = 0.01


def check_request(n_mb: int, deadline: float) -> tuple[int, float]:
    """Validate a task's size and time budget; return them as ``int`` and ``float``."""
    return request(n_mb, deadline)


def decision_budget(deadline: float, cap: float | None = DEFAULT_TIME_BUDGET) -> float | None:
    """Seconds of search for a task with ``deadline`` seconds: ``min(cap, TIME_FRACTION * deadline)``."""
    if cap is None:
        return None
    return min(cap, TIME_FRACTION * deadline)


@gc_paused
def solve(
    profile: Profile,
    n_mb: int,
    deadline: float,
    method: str = "auto",
    fallback: str = "none",
    time_budget: float | None = DEFAULT_TIME_BUDGET,
) -> Plan:
    """Plan a task of ``n_mb`` mini-batches with ``deadline`` seconds of budget.

    Methods: ``auto`` / ``exact`` (the exact fast path; ``auto`` is an alias kept for callers that do
    not care), ``bnb`` (paper-style LP branch-and-bound, also exact), ``dp`` (knapsack DP fallback:
    feasible, exact only on commensurate grids), ``paper`` (the paper's two shortcuts, raises if neither
    applies; the second is not always optimal), ``milp`` (scipy reference, offline).

    The request path (the default): the exact search runs for at most ``decision_budget(deadline,
    time_budget)`` seconds (``time_budget=None``: no time limit) and returns the best feasible plan found;
    ``plan.exact`` says whether it is proven optimal and ``plan.gap`` bounds what it may lose. Measured
    profiles finish exactly in a few dozen bounds; what stops early are degenerate profiles (accuracy
    proportional to time), whose LP bound is nearly tight, so the gap is small. ``fallback`` finishes a
    search that stopped early: ``"none"`` (the incumbent and its gap), ``"dp"`` (the knapsack DP, bounded
    time) or ``"milp"`` (HiGHS: exact to its tolerance, unbounded time — offline use only). The cyclic
    garbage collector is paused for the call (``scheduler.gc_pause``): a collection waits until after it.
    """
    if not isinstance(profile, Profile):
        raise ValueError(f"profile must be a scheduler.Profile, got {type(profile).__name__}")
    n_mb, deadline = check_request(n_mb, deadline)
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {', '.join(FALLBACKS)}, got {fallback!r}")
    if time_budget is not None:
        time_budget = positive("time_budget", time_budget)
    if method in ("auto", "exact"):
        budget = decision_budget(deadline, time_budget)
        return solve_fast(profile, n_mb, deadline, fallback=fallback, time_budget=budget)
    if method == "bnb":
        return solve_bnb(profile, n_mb, deadline, fallback="milp" if fallback == "none" else fallback)
    if method == "dp":
        return solve_dp(profile, n_mb, deadline)
    if method == "paper":
        plan = paper_fast_case(profile, n_mb, deadline)
        if plan is None:
            raise ValueError("neither of the paper's fast cases applies to this (n_mb, deadline)")
        return plan
    if method == "milp":
        return solve_milp(profile, n_mb, deadline)
    raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
