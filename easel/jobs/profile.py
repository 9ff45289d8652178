"""A trained trial's profile: one shape from the trial row to what serving plans with.

A train worker measures, per slice rate, the accuracy ``p_i`` and the time ``t_i`` of one mini-batch of
:data:`PROFILE_BATCH_SIZE` instances, and stores :meth:`Profile.to_json` on the trial. Serving reads it
back with :meth:`Profile.from_json`. The pure libraries keep their own types (``slicing``'s
``SliceProfile``, ``scheduler.Profile``); the edges that meet them convert from and to this one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: the mini-batch size ``S_mb`` a trial's batch times are measured at, and serving's default
PROFILE_BATCH_SIZE = 32

_LISTS = ("rates", "accuracy", "batch_time_s")


@dataclass(frozen=True)
class Profile:
    """Per slice rate (widest first, as measured): accuracy and seconds per mini-batch of ``batch_size``."""

    rates: tuple[float, ...]
    accuracy: tuple[float, ...]
    batch_time_s: tuple[float, ...]
    batch_size: int = PROFILE_BATCH_SIZE
    #: what else was measured (p99 times, params, FLOPs, device, early stop), kept as it came
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not (len(self.rates) == len(self.accuracy) == len(self.batch_time_s)):
            raise ValueError(f"profile lists differ in length: {len(self.rates)} rates, {len(self.accuracy)} "
                             f"accuracies, {len(self.batch_time_s)} batch times")
        if self.batch_size < 1:
            raise ValueError(f"profile batch_size must be >= 1, got {self.batch_size}")
        for name in _LISTS:
            if not all(math.isfinite(v) for v in getattr(self, name)):
                raise ValueError(f"profile {name} must hold finite numbers")

    @classmethod
    def measured(cls, rates: Sequence[float], accuracy: Sequence[float], batch_time_s: Sequence[float],
                 batch_size: int = PROFILE_BATCH_SIZE, **extra: Any) -> Profile:
        return cls(tuple(float(r) for r in rates), tuple(float(p) for p in accuracy),
                   tuple(float(t) for t in batch_time_s), int(batch_size), dict(extra))

    @classmethod
    def from_json(cls, data: dict[str, Any] | None, default_rates: Sequence[float] = ()) -> Profile:
        """The profile stored on a trial. Missing parts are filled so serving can still start: the rates
        from ``default_rates`` (the template's), accuracy 1 and batch time 0 (calibrated at start)."""
        data = dict(data or {})
        rates = data.pop("rates", None) or list(default_rates)
        accuracy = data.pop("accuracy", None) or [1.0] * len(rates)
        times = data.pop("batch_time_s", None) or [0.0] * len(rates)
        batch_size = data.pop("batch_size", None) or PROFILE_BATCH_SIZE
        return cls.measured(rates, accuracy, times, batch_size, **data)

    def to_json(self) -> dict[str, Any]:
        return {**self.extra, "rates": list(self.rates), "accuracy": list(self.accuracy),
                "batch_time_s": list(self.batch_time_s), "batch_size": self.batch_size}

    def accuracy_by_rate(self) -> dict[float, float]:
        return dict(zip(self.rates, self.accuracy, strict=True))


__all__ = ["PROFILE_BATCH_SIZE", "Profile"]
