"""Shortcut plans with one-line optimality proofs, and the paper's two rules as stated."""

from __future__ import annotations

from scheduler.plan import Plan, feasible_plan, search_budget
from scheduler.profile import Profile


def empty_plan(profile: Profile, n_mb: int, deadline: float, method: str) -> Plan:
    return feasible_plan(profile, (0,) * len(profile), n_mb, deadline, method)


def paper_fast_case(profile: Profile, n_mb: int, deadline: float) -> Plan | None:
    """The paper's two shortcuts (Algorithm 2), applied literally; None when neither applies.

    * ``D >= N * max(t)``: all mini-batches to the most accurate model — always optimal.
    * ``D <= N * min(t)``: as many as fit on the fastest model, the rest dropped. This is the paper's
      rule but *not* always optimal: a slightly slower, much more accurate model can be worth more per
      second, and integrality can favour another model. ``solve`` therefore uses only the first rule and
      sends the second regime to the exact path.
    """
    budget = search_budget(deadline)
    if n_mb * max(profile.batch_times) <= budget:
        counts = [0] * len(profile)
        counts[profile.most_accurate] = n_mb
        return feasible_plan(profile, counts, n_mb, deadline, "paper:all-accurate")
    fastest = profile.fastest
    t_min = profile.batch_times[fastest]
    if deadline <= n_mb * t_min:
        counts = [0] * len(profile)
        counts[fastest] = min(n_mb, int(budget / t_min))
        return feasible_plan(profile, counts, n_mb, deadline, "paper:all-fastest")
    return None


def trivial_plan(profile: Profile, n_mb: int, deadline: float) -> Plan | None:
    """Cases with a one-line optimality proof; None otherwise.

    * Nothing fits (``N = 0`` or ``D`` below the fastest useful model's time): the empty plan.
    * ``N * t_best <= D`` for the most accurate model: every mini-batch gets the best accuracy there is,
      an obvious upper bound (this strengthens the paper's ``D >= N * max(t)``).
    """
    fr = profile.frontier
    budget = search_budget(deadline)
    if n_mb == 0 or not fr.ts or budget < fr.ts[0]:
        return empty_plan(profile, n_mb, deadline, "trivial:empty")
    if n_mb * fr.ts[-1] <= budget:
        counts = [0] * len(profile)
        counts[fr.index[-1]] = n_mb
        return feasible_plan(profile, counts, n_mb, deadline, "trivial:all-accurate")
    return None
