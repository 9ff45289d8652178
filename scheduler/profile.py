"""Sub-model profiles: validation, dominance pruning and the upper-hull tables the solvers share.

A profile is measured once per deployed model and then serves many scheduling decisions, so all the
per-profile work (pruning, sorting, hulls, cache key) happens here, at construction, and never per call.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from scheduler.checks import real


@dataclass(frozen=True, slots=True)
class Hull:
    """Upper concave envelope of ``{(0, 0)} ∪ {(t_i, p_i)}`` for a prefix of the frontier.

    ``ts``/``ps`` are the hull vertices (the origin first, the most accurate model last) and
    ``slopes[j]`` is the slope of the segment from vertex ``j`` to ``j + 1``.
    """

    ts: tuple[float, ...]
    ps: tuple[float, ...]
    slopes: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Frontier:
    """Non-dominated sub-models sorted by time (so accuracy is strictly increasing too).

    ``index[j]`` is the position in the profile of the j-th frontier model, ``hulls[k]`` the hull of
    the first ``k + 1`` frontier models (plus the origin, which stands for dropping a mini-batch).
    """

    index: tuple[int, ...]
    ts: tuple[float, ...]
    ps: tuple[float, ...]
    hulls: tuple[Hull, ...]


def _check_finite(name: str, values: Sequence[float]) -> tuple[float, ...]:
    if values is None or isinstance(values, str | bytes):
        raise ValueError(f"{name} must be a sequence of numbers, got {values!r}")
    return tuple(real(f"{name}[{i}]", v) for i, v in enumerate(values))


def upper_hull(ts: Sequence[float], ps: Sequence[float]) -> Hull:
    """Upper concave hull of the origin and points sorted by strictly increasing t and p.

    Because p increases with t, the envelope is non-decreasing and ends at the last point.
    """
    hts, hps = [0.0], [0.0]
    for t, p in zip(ts, ps, strict=True):
        # Pop the last vertex while it lies on or under the chord from its predecessor to (t, p).
        while len(hts) >= 2:
            t0, p0, t1, p1 = hts[-2], hps[-2], hts[-1], hps[-1]
            if (p1 - p0) * (t - t0) <= (p - p0) * (t1 - t0):
                hts.pop()
                hps.pop()
            else:
                break
        hts.append(t)
        hps.append(p)
    slopes = tuple((hps[j + 1] - hps[j]) / (hts[j + 1] - hts[j]) for j in range(len(hts) - 1))
    return Hull(tuple(hts), tuple(hps), slopes)


def pareto_frontier(accuracies: Sequence[float], batch_times: Sequence[float]) -> Frontier:
    """Drop dominated sub-models and those with zero accuracy.

    Model j is dominated when some i has ``t_i <= t_j`` and ``p_i >= p_j``: moving every mini-batch
    from j to i keeps both constraints and loses no accuracy, so some optimum never uses j. A model
    with ``p = 0`` is dominated by dropping (time 0, accuracy 0). Ties keep the first listed model.
    """
    order = sorted(range(len(batch_times)), key=lambda i: (batch_times[i], -accuracies[i], i))
    keep: list[int] = []
    best_p = 0.0
    for i in order:
        if accuracies[i] > best_p:
            keep.append(i)
            best_p = accuracies[i]
    ts = tuple(batch_times[i] for i in keep)
    ps = tuple(accuracies[i] for i in keep)
    hulls = tuple(upper_hull(ts[: k + 1], ps[: k + 1]) for k in range(len(keep)))
    return Frontier(tuple(keep), ts, ps, hulls)


@dataclass(frozen=True, slots=True)
class Profile:
    """Measured sub-models of one sliced network.

    Args:
        rates: slice rate of each sub-model, in (0, 1], all distinct (labels for reporting).
        accuracies: accuracy ``p_i`` of each sub-model, a fraction in [0, 1].
        batch_times: time ``t_i`` of one mini-batch on each sub-model, in seconds, > 0.
    """

    rates: tuple[float, ...]
    accuracies: tuple[float, ...]
    batch_times: tuple[float, ...]
    frontier: Frontier = field(init=False, repr=False, compare=False)
    key: str = field(init=False, repr=False, compare=False)
    time_order: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rates = _check_finite("rates", self.rates)
        accs = _check_finite("accuracies", self.accuracies)
        times = _check_finite("batch_times", self.batch_times)
        if not (len(rates) == len(accs) == len(times)):
            raise ValueError(
                "rates, accuracies and batch_times must have the same length, got "
                f"{len(rates)}, {len(accs)} and {len(times)}"
            )
        if not rates:
            raise ValueError("a profile needs at least one sub-model")
        for i, r in enumerate(rates):
            if not 0.0 < r <= 1.0:
                raise ValueError(f"rates[{i}] = {r} must be in (0, 1]")
        if len(set(rates)) != len(rates):
            raise ValueError(f"rates must be distinct, got {list(rates)}")
        for i, p in enumerate(accs):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"accuracies[{i}] = {p} must be a fraction in [0, 1] (not a percentage)")
        for i, t in enumerate(times):
            if t <= 0.0:
                raise ValueError(f"batch_times[{i}] = {t} must be > 0 seconds")
        set_ = object.__setattr__  # frozen dataclass: derived fields are set once, here
        set_(self, "rates", rates)
        set_(self, "accuracies", accs)
        set_(self, "batch_times", times)
        set_(self, "frontier", pareto_frontier(accs, times))
        set_(self, "time_order", tuple(sorted(range(len(times)), key=lambda i: (times[i], i))))
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        set_(self, "key", hashlib.sha256(blob).hexdigest()[:16])

    def __len__(self) -> int:
        return len(self.rates)

    @property
    def most_accurate(self) -> int:
        """Index of the most accurate sub-model (the fastest among ties)."""
        return self.frontier.index[-1] if self.frontier.index else self.time_order[0]

    @property
    def fastest(self) -> int:
        """Index of the fastest sub-model (the most accurate among ties)."""
        return min(range(len(self)), key=lambda i: (self.batch_times[i], -self.accuracies[i], i))

    def index_of_rate(self, rate: float) -> int:
        for i, r in enumerate(self.rates):
            if r == rate:
                return i
        raise ValueError(f"rate {rate} is not in the profile (rates: {list(self.rates)})")

    def to_dict(self) -> dict[str, list[float]]:
        return {
            "rates": list(self.rates),
            "accuracies": list(self.accuracies),
            "batch_times": list(self.batch_times),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Sequence[float]]) -> Profile:
        return cls(tuple(data["rates"]), tuple(data["accuracies"]), tuple(data["batch_times"]))


def paper_xray_profile() -> Profile:
    """SINGA-Easy Table 3, X-ray column: accuracy (%) and mini-batch time (ms) per slice rate."""
    return Profile(
        rates=(1.0, 0.75, 0.5, 0.25),
        accuracies=(0.7937, 0.7188, 0.7094, 0.6512),
        batch_times=(0.04940, 0.03456, 0.02272, 0.01568),
    )
