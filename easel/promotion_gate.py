"""The promotion gate's rule, pure: may a candidate version replace the production one?

Both versions are measured on the same held-out dataset (per slice rate: accuracy and seconds per
mini-batch). By default the candidate passes when, at **every** slice rate both measured,

* its accuracy >= production's - ``tolerance`` (absolute: 0.02 is two points of accuracy), and
* its batch time <= (1 + ``tolerance``) x production's,

because the profile is what the scheduler plans with: a version that is as accurate but slower at one width
serves fewer instances by their deadlines there. A candidate that lacks a rate production serves fails (the
scheduler would lose that choice). With no production version the candidate passes on its own numbers.

The verdict keeps every number it used, so the record explains itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TOLERANCE = 0.02


@dataclass(frozen=True)
class Measured:
    """A version's numbers on the held-out set: per slice rate, accuracy and seconds per mini-batch."""

    rates: tuple[float, ...]
    accuracy: tuple[float, ...]
    batch_time_s: tuple[float, ...]

    def __post_init__(self) -> None:
        if not (len(self.rates) == len(self.accuracy) == len(self.batch_time_s)):
            raise ValueError("measured: rates, accuracy and batch_time_s must have one entry per rate")
        for name in ("rates", "accuracy", "batch_time_s"):
            if not all(math.isfinite(v) and v >= 0 for v in getattr(self, name)):
                raise ValueError(f"measured: {name} must hold finite numbers >= 0")

    @classmethod
    def from_json(cls, data: Mapping[str, Sequence[float]]) -> Measured:
        try:
            return cls(*(tuple(float(v) for v in data[k]) for k in ("rates", "accuracy", "batch_time_s")))
        except KeyError as missing:
            raise ValueError(f"measured: missing {missing}") from None

    def by_rate(self) -> dict[float, tuple[float, float]]:
        return {r: (p, t) for r, p, t in zip(self.rates, self.accuracy, self.batch_time_s, strict=True)}


@dataclass(frozen=True)
class Verdict:
    passed: bool
    #: one line per failed check, naming the rate and the numbers
    failures: list[str] = field(default_factory=list)
    #: per rate: both versions' numbers and the bounds the candidate was held to
    rows: list[dict[str, Any]] = field(default_factory=list)
    tolerance: float = DEFAULT_TOLERANCE

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "tolerance": self.tolerance, "failures": list(self.failures),
                "rates": list(self.rows)}


def judge(candidate: Measured, production: Measured | None, tolerance: float = DEFAULT_TOLERANCE) -> Verdict:
    """The default rule (see the module's doc). ``tolerance`` must be in [0, 1]."""
    if not (isinstance(tolerance, int | float) and 0.0 <= tolerance <= 1.0):
        raise ValueError(f"tolerance must be a number in [0, 1], got {tolerance!r}")
    if production is None:
        rows = [{"rate": r, "candidate_accuracy": p, "candidate_batch_time_s": t}
                for r, (p, t) in sorted(candidate.by_rate().items(), reverse=True)]
        return Verdict(True, [], rows, tolerance)
    mine, theirs = candidate.by_rate(), production.by_rate()
    failures, rows = [], []
    for rate in sorted(theirs, reverse=True):
        prod_p, prod_t = theirs[rate]
        if rate not in mine:
            failures.append(f"rate {rate:g}: the candidate does not serve it")
            continue
        cand_p, cand_t = mine[rate]
        min_p, max_t = prod_p - tolerance, prod_t * (1.0 + tolerance)
        rows.append({"rate": rate, "candidate_accuracy": cand_p, "production_accuracy": prod_p,
                     "min_accuracy": min_p, "candidate_batch_time_s": cand_t, "production_batch_time_s": prod_t,
                     "max_batch_time_s": max_t, "accuracy_ok": cand_p >= min_p, "time_ok": cand_t <= max_t})
        if cand_p < min_p:
            failures.append(f"rate {rate:g}: accuracy {cand_p:.4f} < production's {prod_p:.4f} - {tolerance:g}")
        if cand_t > max_t:
            failures.append(f"rate {rate:g}: batch time {cand_t:.6f} s > (1 + {tolerance:g}) x production's "
                            f"{prod_t:.6f} s")
    return Verdict(not failures, failures, rows, tolerance)


__all__ = ["DEFAULT_TOLERANCE", "Measured", "Verdict", "judge"]
