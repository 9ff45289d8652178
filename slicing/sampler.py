"""Which slice rates train on each mini-batch."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from .rates import DEFAULT_RATES, match_rate, normalize_rates


class RateSampler(ABC):
    """Chooses the rates whose gradients are accumulated for one optimiser step."""

    def __init__(self, rates: Iterable[float] = DEFAULT_RATES) -> None:
        self.rates = normalize_rates(rates, require_full=False)

    @abstractmethod
    def sample(self, step: int) -> list[float]:
        """Rates for mini-batch number ``step`` (widest first)."""

    def get_state(self) -> dict[str, Any]:
        """The sampler's random state as plain JSON-ready data (a checkpoint resumes the same draws)."""
        rng = getattr(self, "_rng", None)
        if rng is None:
            return {}
        version, internal, gauss = rng.getstate()
        return {"rng": [version, list(internal), gauss]}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""
        rng = getattr(self, "_rng", None)
        if rng is not None and "rng" in state:
            version, internal, gauss = state["rng"]
            rng.setstate((int(version), tuple(int(v) for v in internal), gauss))


class MinMaxRandomSampler(RateSampler):
    """ "Min-max + k random": always the full and the narrowest width (the bounds every sub-model lies
    between — the sandwich rule), plus ``k`` distinct other rates drawn at random."""

    def __init__(self, rates: Iterable[float] = DEFAULT_RATES, k: int = 1, seed: int = 0) -> None:
        super().__init__(rates)
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        self.k = k
        self._rng = random.Random(seed)

    def sample(self, step: int) -> list[float]:
        ends = [self.rates[0], self.rates[-1]] if len(self.rates) > 1 else [self.rates[0]]
        middle = list(self.rates[1:-1])
        picked = self._rng.sample(middle, min(self.k, len(middle)))
        return sorted(set(ends + picked), reverse=True)


class RoundRobinSampler(RateSampler):
    """One rate per mini-batch, cycling through the list."""

    def sample(self, step: int) -> list[float]:
        return [self.rates[step % len(self.rates)]]


class RandomSampler(RateSampler):
    """``n`` distinct rates drawn uniformly per mini-batch."""

    def __init__(self, rates: Iterable[float] = DEFAULT_RATES, n: int = 1, seed: int = 0) -> None:
        super().__init__(rates)
        if not 1 <= n <= len(self.rates):
            raise ValueError(f"n must be in [1, {len(self.rates)}], got {n}")
        self.n = n
        self._rng = random.Random(seed)

    def sample(self, step: int) -> list[float]:
        return sorted(self._rng.sample(list(self.rates), self.n), reverse=True)


class FixedRateSampler(RateSampler):
    """Always the same single rate: ordinary (unsliced) training of one sub-model."""

    def __init__(self, rate: float = 1.0, rates: Iterable[float] = DEFAULT_RATES) -> None:
        super().__init__(rates)
        self.rate = match_rate(rate, self.rates)

    def sample(self, step: int) -> list[float]:
        return [self.rate]


def make_sampler(
    name: str, rates: Iterable[float] = DEFAULT_RATES, *, k: int = 1, seed: int = 0
) -> RateSampler:
    """Sampler by name (``min_max_random``, ``round_robin``, ``random``, ``full``) — for configs/knobs."""
    if name == "min_max_random":
        return MinMaxRandomSampler(rates, k=k, seed=seed)
    if name == "round_robin":
        return RoundRobinSampler(rates)
    if name == "random":
        return RandomSampler(rates, n=max(1, k), seed=seed)
    if name == "full":
        return FixedRateSampler(1.0, rates)
    raise ValueError(f"unknown sampler {name!r}; choose min_max_random, round_robin, random or full")
