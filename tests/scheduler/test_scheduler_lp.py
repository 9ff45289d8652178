"""Our closed-form LPs against scipy.optimize.linprog."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from scheduler.profile import pareto_frontier
from scheduler.solvers.lp import box_lp, hull_lp, hull_lp_last

points = st.lists(st.tuples(st.floats(0.01, 1.0), st.floats(0.01, 2.0)), min_size=1, max_size=8)


def linprog_value(ps, ts, n, d, lower=None, upper=None) -> float | None:
    k = len(ps)
    bounds = list(zip(lower or [0.0] * k, upper or [None] * k, strict=True))
    res = linprog(
        -np.asarray(ps), A_ub=np.vstack([np.ones(k), ts]), b_ub=[n, d], bounds=bounds, method="highs"
    )
    return None if res.status != 0 else -res.fun


@settings(max_examples=200, deadline=None)
@given(points, st.floats(0.0, 1000.0), st.floats(0.0, 1.0))
def test_hull_lp_matches_linprog(pts, n, share) -> None:
    ps, ts = [p for p, _ in pts], [t for _, t in pts]
    fr = pareto_frontier(ps, ts)
    d = share * n * max(ts) * 1.2
    ours = hull_lp(fr.hulls[-1], n, d)
    assert ours == pytest.approx(linprog_value(ps, ts, n, d), rel=1e-7, abs=1e-7)
    # The amount of the most accurate model that hull_lp_last reports is part of an optimum.
    x = hull_lp_last(fr.hulls[-1], n, d)
    t_top, p_top = fr.ts[-1], fr.ps[-1]
    rest = hull_lp(fr.hulls[-2], n - x, d - x * t_top) if len(fr.ts) > 1 else 0.0
    assert x * p_top + rest == pytest.approx(ours, rel=1e-7, abs=1e-7)


@settings(max_examples=200, deadline=None)
@given(
    points,
    st.floats(0.0, 200.0),
    st.floats(0.0, 1.0),
    st.data(),
)
def test_box_lp_matches_linprog(pts, n, share, data) -> None:
    ps, ts = [p for p, _ in pts], [t for _, t in pts]
    k = len(ps)
    d = share * n * max(ts)
    lower = [float(data.draw(st.integers(0, 3))) for _ in range(k)]
    upper = [math.inf if data.draw(st.booleans()) else lo + data.draw(st.integers(0, 50)) for lo in lower]
    ours = box_lp(ps, ts, n, d, lower, upper)
    ref = linprog_value(ps, ts, n, d, lower, [None if math.isinf(u) else u for u in upper])
    if ref is None:
        assert not ours.feasible
        return
    assert ours.feasible
    assert ours.value == pytest.approx(ref, rel=1e-7, abs=1e-7)
    x = ours.x  # and its solution is feasible and attains the value
    assert all(lo - 1e-9 <= xi <= u + 1e-9 for lo, xi, u in zip(lower, x, upper, strict=True))
    assert sum(x) <= n + 1e-7 and sum(xi * t for xi, t in zip(x, ts, strict=True)) <= d + 1e-7
    assert sum(xi * p for xi, p in zip(x, ps, strict=True)) == pytest.approx(ours.value, rel=1e-9, abs=1e-9)
