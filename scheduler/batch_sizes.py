"""The mini-batch size as a decision per width (issue #15 item 4): plan ``(n_i, b_i)`` jointly.

The exact method (DESIGN.md §4) plans a task at one mini-batch size ``b``: ``N_mb = ceil(N / b)`` mini-batches,
times ``t_i(b)``. Here every width ``i`` may run at its own size ``b_i`` from a grid (``{8, 16, 32, 64}``), given
the measured ``t_i(b)`` of every size (:class:`BatchProfile`). Why it can win: a large mini-batch is cheaper per
instance (a call's fixed cost is shared), a small one fits the deadline's leftover time more finely; the best
trade differs per width (the narrow width's fixed cost is a larger share of its time).

The joint problem, in *granules* of ``g = gcd(grid)`` instances (``N_g = ceil(N / g)``; the task's partial
granule counts whole, as the exact method counts its partial mini-batch): choose ``m_i`` granules per width to
maximise ``sum(m_i p_i) / N_g`` subject to ``sum(m_i) <= N_g`` and ``sum(C_i(m_i)) <= D``, where
``C_i(m) = min_b ceil(m / (b / g)) * t_i(b)`` is the cheapest way to run ``m`` granules at width ``i`` with one
size (its last mini-batch may be partial; it is charged as a full one). ``C_i`` is separable per width, so the
size choice is made inside it and the coupling between widths is only granules and time: a dynamic programme
over widths keeps, per granule count, the Pareto front of (time, value) — exact, no LP, no node limit.

With one size in the grid the planner *is* the exact method (:func:`scheduler.solve`), unchanged, and that stays
the default wherever a worker has no grid (``EASEL_SERVING_BATCH_SIZES`` unset).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce

from scheduler.checks import count, seconds
from scheduler.plan import search_budget, within_deadline
from scheduler.profile import Profile
from scheduler.solvers.solve import solve

# Two plans whose values differ by less than this (relative to N_g) are a tie: float noise in sums of p_i.
_VALUE_RTOL = 1e-12


@dataclass(frozen=True, slots=True)
class BatchProfile:
    """Measured sub-models at every mini-batch size of a grid.

    Args:
        rates, accuracies: as :class:`scheduler.Profile` (one entry per width).
        batch_sizes: the grid, distinct whole numbers >= 1 (sorted ascending here).
        batch_times: ``batch_times[k][i]`` = seconds of one mini-batch of ``batch_sizes[k]`` at width ``i``.
    """

    rates: tuple[float, ...]
    accuracies: tuple[float, ...]
    batch_sizes: tuple[int, ...]
    batch_times: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        sizes = tuple(count(f"batch_sizes[{k}]", b) for k, b in enumerate(self.batch_sizes))
        if not sizes:
            raise ValueError("batch_sizes needs at least one mini-batch size")
        if min(sizes) < 1 or len(set(sizes)) != len(sizes):
            raise ValueError(f"batch_sizes must be distinct whole numbers >= 1, got {list(sizes)}")
        if len(self.batch_times) != len(sizes):
            raise ValueError(f"batch_times has {len(self.batch_times)} rows, batch_sizes {len(sizes)} sizes")
        # Each row is checked by Profile (finite, > 0, one per width): one owner of those rules.
        profiles = {b: Profile(tuple(self.rates), tuple(self.accuracies), tuple(row))
                    for b, row in zip(sizes, self.batch_times, strict=True)}
        order = sorted(range(len(sizes)), key=sizes.__getitem__)
        first = profiles[sizes[0]]
        set_ = object.__setattr__  # frozen dataclass: normalised once, here
        set_(self, "rates", first.rates)
        set_(self, "accuracies", first.accuracies)
        set_(self, "batch_sizes", tuple(sizes[k] for k in order))
        set_(self, "batch_times", tuple(profiles[sizes[k]].batch_times for k in order))

    def __len__(self) -> int:
        return len(self.rates)

    @property
    def granule(self) -> int:
        """Instances in the unit every size is a whole number of: the grid's greatest common divisor."""
        return reduce(math.gcd, self.batch_sizes)

    def at(self, batch_size: int) -> Profile:
        """The plain profile at one size of the grid (what the exact method plans with)."""
        if batch_size not in self.batch_sizes:
            raise ValueError(f"batch_size {batch_size!r} is not in the grid {list(self.batch_sizes)}")
        return Profile(self.rates, self.accuracies, self.batch_times[self.batch_sizes.index(batch_size)])

    def to_dict(self) -> dict[str, object]:
        return {"rates": list(self.rates), "accuracies": list(self.accuracies),
                "batch_sizes": list(self.batch_sizes), "batch_times": [list(row) for row in self.batch_times]}


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """How one task is served: per width, the mini-batch size, how many mini-batches, how many instances.

    Attributes:
        batch_sizes: ``b_i`` per width (the grid's smallest where the width runs nothing).
        counts: mini-batches ``n_i`` per width; each holds ``b_i`` instances except the task's last one.
        instances: instances served per width; the task's partial mini-batch is the last run.
        n_instances, deadline: the task.
        effective_accuracy: expected fraction of the task's *instances* answered correctly and on time
            (per instance, so plans at different sizes compare fairly).
        total_time: seconds the plan takes at its profiled times (never more than the deadline).
        method: ``exact`` (one size: the exact method) or ``joint``.
        order: run order as ``(width, mini-batches)``: the cheapest per instance first, so an overrun cuts
            the tail (as :class:`scheduler.Plan` orders its runs).
    """

    batch_sizes: tuple[int, ...]
    counts: tuple[int, ...]
    instances: tuple[int, ...]
    n_instances: int
    deadline: float
    effective_accuracy: float
    total_time: float
    method: str
    order: tuple[tuple[int, int], ...]

    @property
    def dropped(self) -> int:
        return self.n_instances - sum(self.instances)

    def to_dict(self) -> dict[str, object]:
        return {"batch_sizes": list(self.batch_sizes), "counts": list(self.counts),
                "instances": list(self.instances), "n_instances": self.n_instances, "deadline": self.deadline,
                "effective_accuracy": self.effective_accuracy, "total_time": self.total_time,
                "dropped": self.dropped, "method": self.method, "order": [list(run) for run in self.order]}


def plan_batch_sizes(profile: BatchProfile, n_instances: int, deadline: float) -> BatchPlan:
    """The best ``(n_i, b_i)`` for a task of ``n_instances`` with ``deadline`` seconds (see the module docstring).

    One size in the grid: the exact method's plan (:func:`scheduler.solve`, no time limit) at that size.
    """
    if not isinstance(profile, BatchProfile):
        raise ValueError(f"profile must be a scheduler.BatchProfile, got {type(profile).__name__}")
    n_instances, deadline = count("n_instances", n_instances), seconds("deadline", deadline)
    if len(profile.batch_sizes) == 1:
        return fixed_size_plan(profile, profile.batch_sizes[0], n_instances, deadline)
    g = profile.granule
    n_g = -(-n_instances // g)
    costs = [_width_costs(profile, i, n_g) for i in range(len(profile))]
    granules = solve_granules([[c for c, _ in width] for width in costs], profile.accuracies, n_g, deadline)
    sizes = tuple(costs[i][m][1] if m else profile.batch_sizes[0] for i, m in enumerate(granules))
    counts = tuple(-(-m * g // b) for m, b in zip(granules, sizes, strict=True))
    return _plan(profile, sizes, counts, n_instances, deadline, "joint")


def fixed_size_plan(profile: BatchProfile, batch_size: int, n_instances: int, deadline: float) -> BatchPlan:
    """The exact method at one size of the grid (the baseline the joint plan must beat)."""
    n_instances, deadline = count("n_instances", n_instances), seconds("deadline", deadline)
    plan = solve(profile.at(batch_size), -(-n_instances // batch_size), deadline, time_budget=None)
    return _plan(profile, (batch_size,) * len(profile), plan.counts, n_instances, deadline, "exact")


def solve_granules(costs: Sequence[Sequence[float]], accuracies: Sequence[float], n_g: int,
                   deadline: float) -> tuple[int, ...]:
    """Granules ``m_i`` per width maximising ``sum(m_i p_i)`` with ``sum(m_i) <= n_g`` and
    ``sum(costs[i][m_i]) <= deadline``; ``costs[i][m]`` (``m = 0..n_g``) must be non-decreasing in ``m``.

    Exact: a DP over widths, the most accurate first, keeping for each granule count used the (time, value)
    Pareto front and dropping an entry that a smaller granule count already matches in time and value. Two
    facts keep it small. (1) A width's count is 0, the top of a cost step (``C(m + 1) > C(m)``) or all the
    granules left: otherwise one more granule of it costs no time and is worth at least what a later (less
    accurate) width's granule is, so some optimum has that shape. (2) The last width just takes the most
    granules that fit (a binary search), so it needs no front. Ties: the higher value, then the shorter
    time, then the plan found first.
    """
    budget = search_budget(deadline)
    tie = _VALUE_RTOL * max(n_g, 1)
    widths = sorted(range(len(costs)), key=lambda i: (-accuracies[i], i))
    best = (0.0, 0.0, (0,) * len(costs))
    if not widths:
        return best[2]
    # fronts[s]: (time, value, granules of the widths so far) with exactly s granules used, time ascending.
    fronts: list[list[tuple[float, float, tuple[int, ...]]]] = [[(0.0, 0.0, ())]] + [[] for _ in range(n_g)]
    for i in widths[:-1]:
        cost, p = costs[i], accuracies[i]
        tops = [m for m in range(1, n_g + 1) if m == n_g or cost[m + 1] > cost[m]]
        grown: list[list[tuple[float, float, tuple[int, ...]]]] = [[] for _ in range(n_g + 1)]
        for s, front in enumerate(fronts):
            left = n_g - s
            candidates = [0, *(m for m in tops if m < left), left] if left else [0]
            for time, value, picks in front:
                for m in candidates:
                    t = time + cost[m]
                    if t > budget:
                        break  # costs grow with m: nothing further fits
                    grown[s + m].append((t, value + m * p, (*picks, m)))
        fronts = _prune(grown, tie)
    last = widths[-1]
    cost, p = costs[last], accuracies[last]
    for s, front in enumerate(fronts):
        for time, value, picks in front:
            # The most granules of the last width that fit in the time and the granules left.
            m = min(n_g - s, bisect.bisect_right(cost, budget - time) - 1)
            entry = (time + cost[m], value + m * p, (*picks, m))
            if entry[1] > best[1] + tie or (entry[1] >= best[1] - tie and entry[0] < best[0]):
                best = entry
    granules = [0] * len(costs)
    for i, m in zip(widths, best[2], strict=True):
        granules[i] = m
    return tuple(granules)


def _prune(fronts: list[list[tuple[float, float, tuple[int, ...]]]],
           tie: float) -> list[list[tuple[float, float, tuple[int, ...]]]]:
    """Keep an entry only if no entry with as few granules is as fast and as valuable."""
    times: list[float] = []  # the staircase of everything kept so far: value rises with time
    values: list[float] = []
    kept = []
    for front in fronts:
        front.sort(key=lambda e: (e[0], -e[1]))
        survivors = []
        for entry in front:
            at = bisect.bisect_right(times, entry[0])
            best_before = values[at - 1] if at else -math.inf
            floor = max(best_before, survivors[-1][1] if survivors else -math.inf)
            if entry[1] > floor + tie:
                survivors.append(entry)
        kept.append(survivors)
        for t, v, _ in survivors:  # merge into the staircase, keeping it strictly rising
            at = bisect.bisect_right(times, t)
            if at and values[at - 1] >= v:
                continue
            times.insert(at, t)
            values.insert(at, v)
            while at + 1 < len(times) and values[at + 1] <= v:
                del times[at + 1], values[at + 1]
    return kept


def _width_costs(profile: BatchProfile, width: int, n_g: int) -> list[tuple[float, int]]:
    """``(C(m), size)`` for ``m = 0..n_g`` granules at ``width``: the cheapest size, ties to the larger one (fewer
    messages). Each size's cost ``ceil(m / k) * t`` rises with ``m``, so their minimum does too (the DP relies on it)."""
    g = profile.granule
    out = [(0.0, profile.batch_sizes[0])]
    for m in range(1, n_g + 1):
        cost, size = min(((-(-m * g // b)) * row[width], -b)
                         for b, row in zip(profile.batch_sizes, profile.batch_times, strict=True))
        out.append((cost, -size))
    return out


def _plan(profile: BatchProfile, sizes: tuple[int, ...], counts: Sequence[int], n_instances: int,
          deadline: float, method: str) -> BatchPlan:
    times = [profile.batch_times[profile.batch_sizes.index(b)][i] for i, b in enumerate(sizes)]
    order = sorted((i for i, c in enumerate(counts) if c), key=lambda i: (times[i] / sizes[i], i))
    # Instances in run order: the task's partial mini-batch is the last one run.
    left, instances = n_instances, [0] * len(counts)
    for i in order:
        instances[i] = min(left, counts[i] * sizes[i])
        left -= instances[i]
    total = math.fsum(c * t for c, t in zip(counts, times, strict=True))
    if not within_deadline(total, deadline):  # the planners' own invariant: a defect if it ever fires
        raise AssertionError(f"plan {list(counts)} at sizes {list(sizes)} takes {total} s > deadline {deadline} s")
    value = math.fsum(n * p for n, p in zip(instances, profile.accuracies, strict=True))
    return BatchPlan(batch_sizes=sizes, counts=tuple(counts), instances=tuple(instances), n_instances=n_instances,
                     deadline=deadline, effective_accuracy=value / n_instances if n_instances else 0.0,
                     total_time=total, method=method, order=tuple((i, counts[i]) for i in order))
