"""LP relaxations of the slice-rate problem, solved in closed form (our own code, no LP library).

Two forms are needed:

* ``hull_lp`` — no upper bounds on the variables (what the exact fast path's nodes look like). Add a
  "drop" variable with ``(t, p) = (0, 0)`` so that ``sum(x) = n`` exactly; then the LP asks for the
  best *average* accuracy over mixtures of the points ``(t_i, p_i)`` whose average time is at most
  ``d / n``. That maximum is the upper concave envelope of the points evaluated at ``d / n`` — so the
  LP optimum mixes the two hull vertices around ``d / n`` (at most two non-zero variables).
* ``box_lp`` — with lower and upper bounds on each variable (the nodes of the paper-style
  branch-and-bound). We dualise the time constraint with a multiplier ``mu >= 0``. For fixed ``mu`` the
  rest is a fractional knapsack with one cardinality row, solved greedily by reduced accuracy
  ``p_i - mu * t_i``; the dual function is convex and piecewise linear in ``mu``, its kinks lie at the
  ``mu`` where two reduced accuracies tie or one crosses 0, and LP duality makes its minimum equal to
  the LP optimum. We binary-search the kink where the greedy's time use crosses ``d`` and mix the two
  greedy solutions on either side of it to meet the time row exactly (both are optimal for that
  ``mu``, so the mixture is primal optimal by complementary slackness).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scheduler.profile import Hull


def hull_lp(hull: Hull, n: float, d: float) -> float:
    """Optimum of ``max sum p_i x_i  s.t. sum x_i <= n, sum t_i x_i <= d, x >= 0``."""
    if n <= 0.0 or d <= 0.0:
        return 0.0
    ts, ps, slopes = hull.ts, hull.ps, hull.slopes
    last = len(ts) - 1
    if d >= n * ts[last]:
        return n * ps[last]
    j = 0
    while d > n * ts[j + 1]:
        j += 1
    return n * ps[j] + slopes[j] * (d - n * ts[j])


def hull_lp_last(hull: Hull, n: float, d: float) -> float:
    """Amount of the hull's last (most accurate) point in an LP optimum of ``hull_lp``."""
    if n <= 0.0 or d <= 0.0:
        return 0.0
    ts = hull.ts
    last = len(ts) - 1
    if d >= n * ts[last]:
        return n
    lo = ts[last - 1]
    if d <= n * lo:
        return 0.0
    return (d - n * lo) / (ts[last] - lo)


@dataclass(frozen=True, slots=True)
class BoxLPResult:
    value: float
    x: tuple[float, ...]
    feasible: bool


def _greedy(
    reduced: Sequence[float], times: Sequence[float], order: Sequence[int], ub: Sequence[float], n: float
) -> tuple[list[float], float]:
    """Fractional cardinality knapsack: fill up to n units by decreasing positive reduced accuracy."""
    x = [0.0] * len(reduced)
    left = n
    used = 0.0
    for i in order:
        if left <= 0.0 or reduced[i] <= 0.0:
            break
        take = min(ub[i], left)
        x[i] = take
        left -= take
        used += take * times[i]
    return x, used


def _greedy_at(
    mu: float, accs: Sequence[float], times: Sequence[float], ub: Sequence[float], n: float
) -> tuple[list[float], float]:
    reduced = [p - mu * t for p, t in zip(accs, times, strict=True)]
    # Ties by time: at a tie the faster variable is the better one for any slightly larger mu.
    order = sorted(range(len(accs)), key=lambda i: (-reduced[i], times[i]))
    return _greedy(reduced, times, order, ub, n)


def box_lp(
    accs: Sequence[float],
    times: Sequence[float],
    n: float,
    d: float,
    lower: Sequence[float],
    upper: Sequence[float],
) -> BoxLPResult:
    """``max p·x  s.t. sum x <= n, t·x <= d, lower <= x <= upper`` (upper may be ``inf``).

    Requires ``p >= 0`` and ``t > 0``. Returns ``feasible=False`` when the lower bounds alone break a row.
    """
    k = len(accs)
    base_n = sum(lower)
    base_d = sum(lo * t for lo, t in zip(lower, times, strict=True))
    n_left = n - base_n
    d_left = d - base_d
    if n_left < 0.0 or d_left < 0.0:
        return BoxLPResult(-math.inf, tuple(lower), False)
    ub = [u - lo for u, lo in zip(upper, lower, strict=True)]
    base_v = sum(lo * p for lo, p in zip(lower, accs, strict=True))

    def finish(y: Sequence[float]) -> BoxLPResult:
        x = tuple(lo + yi for lo, yi in zip(lower, y, strict=True))
        return BoxLPResult(base_v + sum(yi * p for yi, p in zip(y, accs, strict=True)), x, True)

    # mu = 0 (time row slack): greedy by accuracy, faster first among equals.
    y0, used0 = _greedy_at(0.0, accs, times, ub, n_left)
    if used0 <= d_left:
        return finish(y0)
    kinks = set()
    for i in range(k):
        if times[i] > 0.0 and accs[i] > 0.0:
            kinks.add(accs[i] / times[i])
        for j in range(i + 1, k):
            dt = times[i] - times[j]
            if dt != 0.0:
                mu = (accs[i] - accs[j]) / dt
                if mu > 0.0:
                    kinks.add(mu)
    ks = sorted(kinks)

    # Interval m is (ks[m-1], ks[m]) with ks[-1] := 0 and ks[len] := inf; the greedy is constant inside.
    def probe(m: int) -> tuple[list[float], float]:
        lo = ks[m - 1] if m > 0 else 0.0
        hi = ks[m] if m < len(ks) else 2.0 * lo + 1.0
        return _greedy_at(0.5 * (lo + hi), accs, times, ub, n_left)

    # Time use falls as mu grows; find the first interval whose greedy fits (the last one uses nothing).
    lo_m, hi_m = 0, len(ks)
    while lo_m < hi_m:
        mid = (lo_m + hi_m) // 2
        if probe(mid)[1] <= d_left:
            hi_m = mid
        else:
            lo_m = mid + 1
    y_fit, t_fit = probe(lo_m)
    if lo_m == 0:
        # Only reachable when y0 (mu = 0 exactly) differed from mu = 0+; then mix with y0.
        y_over, t_over = y0, used0
    else:
        y_over, t_over = probe(lo_m - 1)
    if t_over <= t_fit:
        return finish(y_fit)
    theta = (d_left - t_fit) / (t_over - t_fit)
    theta = min(1.0, max(0.0, theta))
    return finish([theta * a + (1.0 - theta) * b for a, b in zip(y_over, y_fit, strict=True)])


def hull_lp_solution(ts: Sequence[float], hull: Hull, n: float, d: float) -> list[float]:
    """An optimal solution of ``hull_lp``: amounts per model of ``ts`` (the frontier the hull is built on).

    At most two models are non-zero: the hull vertices on either side of ``d / n``.
    """
    x = [0.0] * len(ts)
    if n <= 0.0 or d <= 0.0:
        return x
    hts = hull.ts
    where = {t: i for i, t in enumerate(ts)}
    last = len(hts) - 1
    if d >= n * hts[last]:
        x[where[hts[last]]] = n
        return x
    j = 0
    while d > n * hts[j + 1]:
        j += 1
    # Mix vertex j (the origin when j = 0, i.e. dropping) and j + 1 so that the time row is tight.
    hi = (d - n * hts[j]) / (hts[j + 1] - hts[j])
    x[where[hts[j + 1]]] = hi
    if j > 0:
        x[where[hts[j]]] = n - hi
    return x
