"""Profile validation, dominance pruning and the upper hulls the solvers rely on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler import Profile, paper_xray_profile
from scheduler.profile import pareto_frontier


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_times": (0.1, -0.2)}, r"batch_times\[1\] = -0.2 must be > 0"),
        ({"batch_times": (0.1, 0.0)}, r"batch_times\[1\] = 0.0 must be > 0"),
        ({"accuracies": (0.5, 1.2)}, r"accuracies\[1\] = 1.2 must be a fraction in \[0, 1\]"),
        ({"accuracies": (-0.1, 0.5)}, r"accuracies\[0\]"),
        ({"accuracies": (79.37, 71.88)}, "not a percentage"),
        ({"rates": (1.0, 0.5, 0.25)}, "same length, got 3, 2 and 2"),
        ({"accuracies": (0.5,)}, "same length"),
        ({"rates": (1.0, 1.0)}, "distinct"),
        ({"rates": (1.5, 0.5)}, r"rates\[0\] = 1.5 must be in \(0, 1\]"),
        ({"batch_times": (0.1, float("nan"))}, r"batch_times\[1\] must be a finite number"),
        ({"accuracies": (0.9, "0.8")}, r"accuracies\[1\] must be a finite number"),
        ({"rates": None}, "rates must be a sequence"),
        ({"rates": (), "accuracies": (), "batch_times": ()}, "at least one"),
    ],
)
def test_bad_profiles_raise_value_error(kwargs: dict, match: str) -> None:
    args = {"rates": (1.0, 0.5), "accuracies": (0.9, 0.8), "batch_times": (0.2, 0.1)} | kwargs
    with pytest.raises(ValueError, match=match):
        Profile(**args)


def test_xray_profile_frontier_and_hull() -> None:
    profile = paper_xray_profile()
    fr = profile.frontier
    assert fr.index == (3, 2, 1, 0)  # sorted by time; none dominated
    # r = 0.75 lies under the chord from r = 0.5 to r = 1, so it is off the hull of all four.
    assert fr.hulls[-1].ts == (0.0, 0.01568, 0.02272, 0.0494)
    assert profile.most_accurate == 0 and profile.fastest == 3


def test_dominated_and_useless_models_are_pruned_ties_keep_the_first() -> None:
    fr = pareto_frontier((0.9, 0.8, 0.95, 0.0, 0.9), (0.2, 0.3, 0.5, 0.01, 0.2))
    assert fr.index == (0, 2)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.0, 1.0), st.floats(1e-3, 10.0)),
        min_size=1,
        max_size=8,
    )
)
def test_frontier_is_increasing_and_hull_is_concave(points: list[tuple[float, float]]) -> None:
    ps = [p for p, _ in points]
    ts = [t for _, t in points]
    fr = pareto_frontier(ps, ts)
    assert list(fr.ts) == sorted(set(fr.ts))
    assert all(a < b for a, b in zip(fr.ps, fr.ps[1:], strict=False))
    for i, (p, t) in enumerate(points):  # every pruned useful model is dominated by a kept one
        if i not in fr.index and p > 0:
            assert any(tk <= t and pk >= p for tk, pk in zip(fr.ts, fr.ps, strict=True))
    for hull in fr.hulls:
        assert all(a > b - 1e-9 for a, b in zip(hull.slopes, hull.slopes[1:], strict=False))  # concave
        # Every frontier point of that prefix lies on or under the hull.
        for t, p in zip(fr.ts, fr.ps, strict=True):
            if t <= hull.ts[-1]:
                j = max(i for i in range(len(hull.ts)) if hull.ts[i] <= t)
                if j == len(hull.ts) - 1:
                    assert p <= hull.ps[j] + 1e-12
                else:
                    assert p <= hull.ps[j] + hull.slopes[j] * (t - hull.ts[j]) + 1e-12


def test_key_is_stable_and_depends_on_the_numbers() -> None:
    a, b = paper_xray_profile(), paper_xray_profile()
    assert a.key == b.key and a == b and hash(a) == hash(b)
    c = Profile(a.rates, a.accuracies, (*a.batch_times[:-1], 0.016))
    assert c.key != a.key
    assert Profile.from_dict(a.to_dict()) == a
    assert a.index_of_rate(0.5) == 2
    with pytest.raises(ValueError, match="not in the profile"):
        a.index_of_rate(0.3)
