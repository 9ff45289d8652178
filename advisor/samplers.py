"""Optimiser backends behind one ask/tell interface (in the manner of Optuna's samplers).

* :class:`GPSampler` — scikit-optimize's ``Optimizer`` with a Gaussian process (the paper's choice).
  scikit-optimize is archived upstream, so nothing outside this module touches it.
* :class:`RandomSampler` — uniform (log-uniform for log knobs) random search, the baseline.

Scores are maximised (validation accuracy); skopt minimises, so the GP sampler negates them.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from advisor.space import CategoricalDim, FloatDim, IntDim, SearchSpace


class Sampler(ABC):
    def __init__(self, space: SearchSpace, seed: int | None = None) -> None:
        if not space.dimensions:
            raise ValueError("nothing to tune: the search space has no tunable knobs")
        self.space = space
        self.seed = seed
        self.told = 0

    @abstractmethod
    def ask(self) -> dict[str, Any]:
        """The next knob values to try (tuned knobs only)."""

    def tell(self, values: dict[str, Any], score: float | None) -> None:
        """Record a finished trial. ``score=None`` means it failed: it informs nothing but the count."""
        self.space.validate(values)
        self.told += 1
        if score is not None:
            if not math.isfinite(score):
                raise ValueError(f"score must be finite, got {score!r}")
            self._tell(values, float(score))

    @abstractmethod
    def _tell(self, values: dict[str, Any], score: float) -> None: ...

    def posterior(self, values: dict[str, Any]) -> tuple[float, float] | None:
        """The model's belief about the score at ``values``: (mean, standard deviation), or None when the
        sampler has no model (random search, or a GP still in its initial random points)."""
        return None


class RandomSampler(Sampler):
    def __init__(self, space: SearchSpace, seed: int | None = None) -> None:
        super().__init__(space, seed)
        self._rng = random.Random(seed)

    def ask(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for dim in self.space.dimensions:
            if isinstance(dim, IntDim) and dim.log:
                log_value = self._rng.uniform(math.log(dim.low), math.log(dim.high + 1))
                values[dim.name] = min(dim.high, int(math.exp(log_value)))
            elif isinstance(dim, IntDim):
                values[dim.name] = self._rng.randint(dim.low, dim.high)
            elif isinstance(dim, FloatDim) and dim.log:
                values[dim.name] = math.exp(self._rng.uniform(math.log(dim.low), math.log(dim.high)))
            elif isinstance(dim, FloatDim):
                values[dim.name] = self._rng.uniform(dim.low, dim.high)
            else:
                values[dim.name] = self._rng.choice(dim.choices)
        return values

    def _tell(self, values: dict[str, Any], score: float) -> None:
        pass  # random search learns nothing


class GPSampler(Sampler):
    """Gaussian-process BO.

    Overhead matters because tell() refits the GP on every finished trial. Measured on 4 knobs at 60
    trials (the advisor-cost measurement, now ``benchmarks/tuning.py`` part b): skopt's defaults (2 kernel-fit restarts, 2000 candidate
    points) cost ~1.6 s per ask+tell; one kernel fit and 500 sampled candidates cost ~0.33 s with
    the same quality on these small spaces, so those are the defaults here.
    """

    def __init__(self, space: SearchSpace, seed: int | None = None, n_initial_points: int = 5,
                 acq_func: str = "EI", n_points: int = 500, n_restarts_optimizer: int = 0) -> None:
        super().__init__(space, seed)
        from skopt import Optimizer
        from skopt.space import Categorical, Integer, Real, Space
        from skopt.utils import cook_estimator

        dims = []
        for dim in space.dimensions:
            if isinstance(dim, IntDim):
                dims.append(Integer(dim.low, dim.high, prior="log-uniform" if dim.log else "uniform",
                                    name=dim.name))
            elif isinstance(dim, FloatDim):
                dims.append(Real(dim.low, dim.high, prior="log-uniform" if dim.log else "uniform",
                                 name=dim.name))
            else:
                # skopt needs hashable, comparable categories: map choices to their indices.
                dims.append(Categorical(list(range(len(dim.choices))), name=dim.name))
        estimator = cook_estimator("GP", space=Space(dims), random_state=seed,
                                   n_restarts_optimizer=n_restarts_optimizer)
        self._optimizer = Optimizer(
            dims, base_estimator=estimator, n_initial_points=n_initial_points, acq_func=acq_func,
            acq_optimizer="sampling", acq_optimizer_kwargs={"n_points": n_points}, random_state=seed,
        )
        self._pending: list[list[Any]] = []

    def _encode(self, values: dict[str, Any]) -> list[Any]:
        point = []
        for dim in self.space.dimensions:
            value = values[dim.name]
            point.append(dim.choices.index(value) if isinstance(dim, CategoricalDim) else value)
        return point

    def _decode(self, point: list[Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for dim, raw in zip(self.space.dimensions, point, strict=True):
            if isinstance(dim, CategoricalDim):
                values[dim.name] = dim.choices[int(raw)]
            elif isinstance(dim, IntDim):
                values[dim.name] = int(raw)
            else:
                values[dim.name] = float(raw)
        return values

    def ask(self) -> dict[str, Any]:
        """The next point. While earlier points are out (asked, not told: several workers — or pool workers
        sent to this job together — run its trials at once), the GP is told each of them at a *constant lie*
        (the best score so far) before asking, as skopt's batch ``ask`` does: otherwise skopt returns the same
        point until it is told, and a second worker would train the first one's trial again."""
        optimizer = self._optimizer
        if self._pending and optimizer.models:  # past the random start: the GP's choice is deterministic
            liar = optimizer.copy(random_state=optimizer.rng)
            liar.tell([list(p) for p in self._pending], [min(optimizer.yi)] * len(self._pending))
            point = liar.ask()
        else:
            point = optimizer.ask()
        point = [p.item() if isinstance(p, np.generic) else p for p in point]
        self._pending.append(point)
        return self._decode(point)

    def tell(self, values: dict[str, Any], score: float | None) -> None:
        point = [p.item() if isinstance(p, np.generic) else p for p in self._encode(values)]
        if point in self._pending:
            self._pending.remove(point)
        super().tell(values, score)

    def _tell(self, values: dict[str, Any], score: float) -> None:
        point = [p.item() if isinstance(p, np.generic) else p for p in self._encode(values)]
        self._optimizer.tell(point, -score)

    def posterior(self, values: dict[str, Any]) -> tuple[float, float] | None:
        if not self._optimizer.models:
            return None
        point = self._optimizer.space.transform([self._encode(values)])
        mean, std = self._optimizer.models[-1].predict(point, return_std=True)
        return -float(mean[0]), float(std[0])  # skopt minimises the negated score


SAMPLERS: dict[str, type[Sampler]] = {"gp": GPSampler, "random": RandomSampler}


def make_sampler(name: str, space: SearchSpace, seed: int | None = None) -> Sampler:
    try:
        return SAMPLERS[name](space, seed=seed)
    except KeyError:
        raise ValueError(f"unknown advisor backend {name!r}; choose one of {sorted(SAMPLERS)}") from None
