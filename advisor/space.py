"""The search space the advisor tunes: integer, float (optionally log-scaled) and categorical dimensions.

Kept separate from the knob API so the optimiser backends depend on nothing but this small description;
the advisor service builds it from a template's knob config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class IntDim:
    name: str
    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"knob {self.name!r}: low {self.low} > high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"knob {self.name!r}: a log-scaled range must be positive, got low={self.low}")


@dataclass(frozen=True)
class FloatDim:
    name: str
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low >= self.high:
            raise ValueError(f"knob {self.name!r}: need finite low < high, got [{self.low}, {self.high}]")
        if self.log and self.low <= 0:
            raise ValueError(f"knob {self.name!r}: a log-scaled range must be positive, got low={self.low}")


@dataclass(frozen=True)
class CategoricalDim:
    name: str
    choices: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not self.choices:
            raise ValueError(f"knob {self.name!r}: a categorical knob needs at least one choice")


Dimension = IntDim | FloatDim | CategoricalDim


@dataclass(frozen=True)
class SearchSpace:
    dimensions: tuple[Dimension, ...]
    fixed: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        names = [d.name for d in self.dimensions] + [name for name, _ in self.fixed]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"knob names appear twice: {duplicates}")

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def complete(self, tuned: dict[str, Any]) -> dict[str, Any]:
        """Tuned values plus the fixed ones: the full knob assignment a trial runs with."""
        return {**dict(self.fixed), **tuned}

    def validate(self, values: dict[str, Any]) -> None:
        """Raise ValueError unless ``values`` assigns every tuned dimension a value inside its range."""
        for dim in self.dimensions:
            if dim.name not in values:
                raise ValueError(f"knob {dim.name!r} has no value")
            value = values[dim.name]
            ok = value in dim.choices if isinstance(dim, CategoricalDim) else dim.low <= value <= dim.high
            if not ok:
                raise ValueError(f"knob {dim.name!r}: value {value!r} is outside its range")


def space_from_knob_config(config: dict[str, dict[str, Any]],
                           policies: dict[str, bool] | None = None) -> SearchSpace:
    """The search space of a serialised knob config (``easel.model.knob_config_to_dict``'s output).

    Tunable knobs become dimensions (a range of one point becomes a fixed value); fixed knobs stay fixed;
    policy knobs are set by the platform from ``policies`` (policy name → on/off, default off).
    """
    policies = policies or {}
    dims: list[Dimension] = []
    fixed: list[tuple[str, Any]] = []
    for name, knob in config.items():
        kind = knob.get("type")
        if kind == "fixed":
            fixed.append((name, knob["value"]))
        elif kind == "policy":
            fixed.append((name, bool(policies.get(knob["policy"], False))))
        elif kind in ("integer", "float") and knob["low"] == knob["high"]:
            fixed.append((name, knob["low"]))
        elif kind == "integer":
            dims.append(IntDim(name, int(knob["low"]), int(knob["high"]), bool(knob.get("log_scale"))))
        elif kind == "float":
            dims.append(FloatDim(name, float(knob["low"]), float(knob["high"]), bool(knob.get("log_scale"))))
        elif kind == "categorical":
            values = tuple(knob["values"])
            if len(values) == 1:
                fixed.append((name, values[0]))
            else:
                dims.append(CategoricalDim(name, values))
        else:
            raise ValueError(f"knob {name!r}: unknown knob type {kind!r}")
    return SearchSpace(tuple(dims), tuple(fixed))
