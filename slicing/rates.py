"""Slice rates and the one width rule every sliced layer shares.

A layer of ``C`` channels is cut into ``G`` equal contiguous groups; rate ``r`` keeps the first
``ceil(G * r)`` groups. Because every layer derives its width from the same ``(C, G, r)`` rule, the
output width of one layer always equals the input width the next layer expects.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

DEFAULT_RATES: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)

# Tolerance for comparing rates: rates travel through JSON and user input as floats.
_RATE_TOL = 1e-9


def normalize_rates(rates: Iterable[float], *, require_full: bool = True) -> tuple[float, ...]:
    """Validate a rate list and return it sorted from widest to narrowest, without duplicates.

    A model's declared list must contain 1.0 (the full network); a sampler's subset need not.
    """
    values = [float(r) for r in rates]
    if not values:
        raise ValueError("the rate list is empty; declare at least one slice rate, e.g. (1.0,)")
    for r in values:
        if not (math.isfinite(r) and 0.0 < r <= 1.0):
            raise ValueError(f"slice rate {r!r} is outside (0, 1]")
    unique: list[float] = []
    for r in sorted(values, reverse=True):
        if not unique or abs(unique[-1] - r) > _RATE_TOL:
            unique.append(r)
    if require_full and abs(unique[0] - 1.0) > _RATE_TOL:
        raise ValueError(f"the rate list {tuple(unique)} must contain the full width 1.0")
    return tuple(unique)


def match_rate(rate: float, rates: tuple[float, ...]) -> float:
    """Return the declared rate equal to ``rate`` (within float noise) or raise a clear ``ValueError``."""
    for declared in rates:
        if abs(declared - float(rate)) <= _RATE_TOL:
            return declared
    raise ValueError(f"slice rate {rate!r} is not one of the declared rates {rates}")


def active_groups(groups: int, rate: float) -> int:
    """Number of leading groups kept at ``rate``: ceil(G*r), guarded against float noise (0.3*10)."""
    return max(1, math.ceil(round(groups * rate, 6)))


def sliced_width(channels: int, groups: int, rate: float) -> int:
    """Active channels of a ``channels``-wide layer split into ``groups`` groups, at ``rate``."""
    check_divisible(channels, groups)
    return channels // groups * active_groups(groups, rate)


def check_divisible(channels: int, groups: int) -> None:
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    if channels % groups:
        raise ValueError(f"{channels} channels cannot be split into {groups} equal groups")


def check_distinct_widths(groups: int, rates: tuple[float, ...]) -> None:
    """Two declared rates that keep the same number of groups would be the same sub-model twice."""
    seen: dict[int, float] = {}
    for r in rates:
        g = active_groups(groups, r)
        if g in seen:
            raise ValueError(
                f"rates {seen[g]} and {r} both keep {g} of {groups} groups; use more groups or fewer rates"
            )
        seen[g] = r
