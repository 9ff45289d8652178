"""``solve``: one entry point that validates a request and picks a solver."""

from __future__ import annotations

import math
import numbers

from scheduler.bnb import solve_bnb
from scheduler.dp import solve_dp
from scheduler.exact import solve_fast
from scheduler.fallback import FALLBACKS
from scheduler.plan import Plan
from scheduler.profile import Profile
from scheduler.reference import solve_milp
from scheduler.trivial import paper_fast_case

METHODS = ("auto", "exact", "bnb", "dp", "paper", "milp")


def check_request(n_mb: int, deadline: float) -> tuple[int, float]:
    """Validate a task's size and time budget; return them as ``int`` and ``float``."""
    if isinstance(n_mb, bool) or not isinstance(n_mb, numbers.Integral):
        raise ValueError(f"n_mb must be an integer number of mini-batches, got {n_mb!r}")
    if n_mb < 0:
        raise ValueError(f"n_mb must be >= 0, got {n_mb}")
    deadline = float(deadline)
    if not math.isfinite(deadline) or deadline < 0.0:
        raise ValueError(f"deadline must be a finite number of seconds >= 0, got {deadline!r}")
    return int(n_mb), deadline


def solve(profile: Profile, n_mb: int, deadline: float, method: str = "auto", fallback: str = "milp") -> Plan:
    """Plan a task of ``n_mb`` mini-batches with ``deadline`` seconds of budget.

    Methods: ``auto`` / ``exact`` (the exact fast path; ``auto`` is an alias kept for callers that do
    not care), ``bnb`` (paper-style LP branch-and-bound, also exact), ``dp`` (knapsack DP fallback:
    feasible, exact only on commensurate grids), ``paper`` (the paper's two shortcuts, raises if neither
    applies; the second is not always optimal), ``milp`` (scipy reference). All but ``dp`` with
    non-integer times and ``paper`` return the true integer optimum.

    ``fallback`` finishes the rare searches that hit their node limit (degenerate profiles, where
    accuracy is proportional to time): ``"milp"`` keeps the answer exact (to HiGHS's tolerance) at the
    price of unbounded time; ``"dp"`` bounds the time and returns a feasible, possibly suboptimal plan.
    """
    if not isinstance(profile, Profile):
        raise ValueError(f"profile must be a scheduler.Profile, got {type(profile).__name__}")
    n_mb, deadline = check_request(n_mb, deadline)
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {', '.join(FALLBACKS)}, got {fallback!r}")
    if method in ("auto", "exact"):
        return solve_fast(profile, n_mb, deadline, fallback=fallback)
    if method == "bnb":
        return solve_bnb(profile, n_mb, deadline, fallback=fallback)
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
