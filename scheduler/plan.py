"""The Plan a solver or policy returns, the feasibility rule every solver shares, effective accuracy."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from scheduler.profile import Profile

# Feasibility means sum(n_i * t_i) <= D * (1 + FEAS_RTOL). Times are measurements, so a relative
# nanoscale tolerance changes nothing real, but it makes sums like 3 * 0.1 vs 0.3 fit as they do on paper.
FEAS_RTOL = 1e-9
# Solvers search with half of that tolerance, so the few ulps of drift in their running budget can never
# push a plan they accept over the line `within_deadline` checks.
SEARCH_RTOL = 0.5 * FEAS_RTOL
# Bound slack for pruning, per mini-batch of the task: far above float noise in the bounds (~1e-16 * n)
# and far below the 1e-9 agreement the tests demand on effective accuracy (value / n).
PRUNE_RTOL = 1e-11


def within_deadline(total_time: float, deadline: float) -> bool:
    """The one feasibility test used by every solver, the cache and the tests."""
    return total_time <= deadline + FEAS_RTOL * deadline


def search_budget(deadline: float) -> float:
    return deadline + SEARCH_RTOL * deadline


@dataclass(frozen=True, slots=True)
class Plan:
    """How many mini-batches of one task each sub-model serves, and in what order.

    Attributes:
        counts: mini-batches per sub-model, aligned with the profile's sub-models.
        n_mb: mini-batches in the task; ``n_mb - sum(counts)`` are dropped (answered as dropped).
        deadline: the time budget (seconds) the plan was made for.
        effective_accuracy: expected fraction of the task's mini-batches answered correctly and on time,
            if every mini-batch takes exactly its profiled time.
        dropped: mini-batches not run.
        late: mini-batches run that finish after the deadline (0 for every solver; baselines that do not
            look at the deadline can have some, and they count 0 accuracy).
        total_time: profiled time to run the plan.
        method: which solver or policy produced it.
        order: run order as ``(sub-model index, count)`` runs: fastest sub-model first. Why: if real times
            overrun, what the deadline cuts off is the tail, and on the frontier slower sub-models carry
            the least accuracy per second (p/t falls as t grows), so an overrun costs the least accuracy
            and the fewest mini-batches; the first answers also come back soonest.
        gap: proven bound on how much effective accuracy the optimum for ``(n_mb, deadline)`` can have
            above this plan: 0 for an exact answer, the distance to an LP bound for a search stopped by its
            time budget, ``inf`` where nothing is proven (baselines).
    """

    counts: tuple[int, ...]
    n_mb: int
    deadline: float
    effective_accuracy: float
    dropped: int
    late: int
    total_time: float
    method: str
    order: tuple[tuple[int, int], ...]
    gap: float = 0.0

    @property
    def scheduled(self) -> int:
        return self.n_mb - self.dropped

    @property
    def exact(self) -> bool:
        """Proven optimal for its ``(n_mb, deadline)``."""
        return self.gap == 0.0

    def iter_models(self) -> Iterator[int]:
        """Sub-model index of each mini-batch to run, in run order (dropped ones are not listed)."""
        for model, count in self.order:
            for _ in range(count):
                yield model

    def to_dict(self) -> dict[str, object]:
        return {
            "counts": list(self.counts),
            "n_mb": self.n_mb,
            "deadline": self.deadline,
            "effective_accuracy": self.effective_accuracy,
            "dropped": self.dropped,
            "late": self.late,
            "total_time": self.total_time,
            "method": self.method,
            "order": [list(run) for run in self.order],
            "gap": self.gap if math.isfinite(self.gap) else None,  # JSON has no infinity
            "exact": self.exact,
        }


def effective_accuracy(profile: Profile, counts: Sequence[int], n_mb: int) -> float:
    """``sum(n_i * p_i) / n_mb`` — the objective; 0 for an empty task.

    Assumes the counts fit the deadline (use ``build_plan`` for plans that may overrun it).
    """
    if len(counts) != len(profile):
        raise ValueError(f"counts has {len(counts)} entries, the profile has {len(profile)} sub-models")
    if any(c < 0 for c in counts):
        raise ValueError(f"counts must be >= 0, got {list(counts)}")
    if sum(counts) > n_mb:
        raise ValueError(f"counts sum to {sum(counts)} > n_mb = {n_mb}")
    if n_mb == 0:
        return 0.0
    return math.fsum(c * p for c, p in zip(counts, profile.accuracies, strict=True)) / n_mb


def feasible_plan(
    profile: Profile, counts: Sequence[int], n_mb: int, deadline: float, method: str, gap: float = 0.0
) -> Plan:
    """Plan for counts that a solver has already made fit the deadline (the hot path: no late work)."""
    times, accs = profile.batch_times, profile.accuracies
    total = 0.0
    value = 0.0
    order = []
    for i in profile.time_order:
        c = counts[i]
        if c:
            total += c * times[i]
            value += c * accs[i]
            order.append((i, c))
    scheduled = sum(counts)
    return Plan(
        counts=tuple(counts),
        n_mb=n_mb,
        deadline=deadline,
        effective_accuracy=value / n_mb if n_mb else 0.0,
        dropped=n_mb - scheduled,
        late=0,
        total_time=total,
        method=method,
        order=tuple(order),
        gap=gap,
    )


def build_plan(
    profile: Profile, counts: Sequence[int], n_mb: int, deadline: float, method: str, gap: float = math.inf
) -> Plan:
    """Plan for any counts: runs fastest first and counts a mini-batch only if it ends by the deadline.

    ``gap`` defaults to ``inf``: counts chosen by a rule (a baseline) prove nothing about the optimum.
    """
    if len(counts) != len(profile) or any(c < 0 for c in counts) or sum(counts) > n_mb:
        raise ValueError(f"invalid counts {list(counts)} for n_mb = {n_mb} and {len(profile)} sub-models")
    times, accs = profile.batch_times, profile.accuracies
    clock = 0.0
    value = 0.0
    late = 0
    order = []
    for i in profile.time_order:
        c = counts[i]
        if not c:
            continue
        order.append((i, c))
        # How many of this run end in time: the largest k with clock + k * t <= deadline (same tolerance).
        on_time = 0 if not within_deadline(clock + times[i], deadline) else c
        if on_time and not within_deadline(clock + c * times[i], deadline):
            on_time = min(c, int((deadline + FEAS_RTOL * deadline - clock) / times[i]))
            while on_time > 0 and not within_deadline(clock + on_time * times[i], deadline):
                on_time -= 1
        value += on_time * accs[i]
        late += c - on_time
        clock += c * times[i]
    scheduled = sum(counts)
    return Plan(
        counts=tuple(counts),
        n_mb=n_mb,
        deadline=deadline,
        effective_accuracy=value / n_mb if n_mb else 0.0,
        dropped=n_mb - scheduled,
        late=late,
        total_time=clock,
        method=method,
        order=tuple(order),
        gap=gap,
    )
