"""The knob API: how a model template declares its hyperparameter space.

A template's :meth:`~easel.model.template.BaseModel.get_knob_config` returns a ``{name: knob}`` mapping.
The advisor searches over the tunable knobs, the platform fills in the policy knobs, and the train worker
passes the chosen values to the template's ``__init__``. A knob config is plain JSON once serialised
(:func:`knob_config_to_dict`), so admin can store and show it without importing the template.

Example::

    from easel.model import CategoricalKnob, FixedKnob, FloatKnob, IntegerKnob, PolicyKnob

    knobs = {
        "lr": FloatKnob(1e-4, 1e-1, log_scale=True),
        "hidden": IntegerKnob(32, 512, log_scale=True),
        "optimizer": CategoricalKnob(["sgd", "adam"]),
        "epochs": FixedKnob(10),
        "early_stop": PolicyKnob("EARLY_STOP"),
    }
    config = knob_config_to_dict(knobs)          # JSON-ready
    assert knob_config_from_dict(config) == knobs
    values = validate_knobs(knobs, {"lr": 0.01, "hidden": 64, "optimizer": "adam", "early_stop": True})
    # values["epochs"] == 10: fixed knobs are filled in
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

KNOB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_KNOBS = 100
MAX_CATEGORIES = 1000

Scalar = bool | int | float | str | None


class KnobError(ValueError):
    """A knob, knob config or knob value that the platform cannot use."""


class Policy(StrEnum):
    """Platform policies a template may opt into with a :class:`PolicyKnob`.

    The platform (not the search) sets the knob to ``True`` when the policy applies to a trial.
    """

    EARLY_STOP = "EARLY_STOP"  # the template stops training when the advisor says a trial is hopeless
    QUICK_TRAIN = "QUICK_TRAIN"  # train briefly (e.g. one epoch) for a cheap estimate of a configuration
    SKIP_TRAIN = "SKIP_TRAIN"  # evaluate/profile without training (e.g. loaded parameters)
    SHARE_PARAMS = "SHARE_PARAMS"  # warm-start from the parameters of an earlier trial
    DOWNSCALE = "DOWNSCALE"  # train on a smaller share of the data


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, bool | int | str) or (
        isinstance(value, float) and math.isfinite(value)
    )


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise KnobError(f"{name} must be a finite number, got {value!r}")
    return value


class BaseKnob(ABC):
    """One dimension of a template's configuration space."""

    kind: ClassVar[str]
    tunable: ClassVar[bool] = True

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description with a ``"type"`` key (see :func:`knob_from_dict`)."""

    @abstractmethod
    def validate(self, value: Any) -> Any:
        """Return ``value`` (normalised) if it lies in this knob's space; raise :class:`KnobError` if not."""

    @abstractmethod
    def default(self) -> Any:
        """A value in the space: the fixed value, the first category, the low end, or ``False``."""


@dataclass(frozen=True)
class FixedKnob(BaseKnob):
    """A value the search never changes (still passed to the template)."""

    value: Scalar
    kind: ClassVar[str] = "fixed"
    tunable: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not _is_scalar(self.value):
            raise KnobError(f"FixedKnob value must be a JSON scalar (bool, int, float, str, None), got {self.value!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "value": self.value}

    def validate(self, value: Any) -> Any:
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (value, self.value))
        if value != self.value or not (numbers or type(value) is type(self.value)):
            raise KnobError(f"is fixed at {self.value!r}, got {value!r}")
        return self.value

    def default(self) -> Any:
        return self.value


@dataclass(frozen=True)
class IntegerKnob(BaseKnob):
    """An integer in ``[low, high]`` (both inclusive); ``log_scale`` searches it on a log scale."""

    low: int
    high: int
    log_scale: bool = False
    kind: ClassVar[str] = "integer"

    def __post_init__(self) -> None:
        for name in ("low", "high"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise KnobError(f"IntegerKnob {name} must be an int, got {value!r}")
        if self.low > self.high:
            raise KnobError(f"IntegerKnob low ({self.low}) must not exceed high ({self.high})")
        if self.log_scale and self.low <= 0:
            raise KnobError(f"IntegerKnob with log_scale needs low > 0, got {self.low}")

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "low": self.low, "high": self.high, "log_scale": self.log_scale}

    def validate(self, value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise KnobError(f"must be an integer, got {value!r}")
        if not self.low <= value <= self.high:
            raise KnobError(f"must be in [{self.low}, {self.high}], got {value}")
        return value

    def default(self) -> Any:
        return self.low


@dataclass(frozen=True)
class FloatKnob(BaseKnob):
    """A real number in ``[low, high]``; ``log_scale`` (for learning rates and the like) needs ``low > 0``."""

    low: float
    high: float
    log_scale: bool = False
    kind: ClassVar[str] = "float"

    def __post_init__(self) -> None:
        _number("FloatKnob low", self.low)
        _number("FloatKnob high", self.high)
        if self.low > self.high:
            raise KnobError(f"FloatKnob low ({self.low}) must not exceed high ({self.high})")
        if self.log_scale and self.low <= 0:
            raise KnobError(f"FloatKnob with log_scale needs low > 0, got {self.low}")

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "low": float(self.low), "high": float(self.high), "log_scale": self.log_scale}

    def validate(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise KnobError(f"must be a finite number, got {value!r}")
        if not self.low <= value <= self.high:
            raise KnobError(f"must be in [{self.low}, {self.high}], got {value}")
        return float(value)

    def default(self) -> Any:
        return float(self.low)


@dataclass(frozen=True)
class CategoricalKnob(BaseKnob):
    """One of a list of distinct JSON scalars (strings, numbers, booleans)."""

    values: tuple[Scalar, ...] = field(default=())
    kind: ClassVar[str] = "categorical"

    def __init__(self, values: Sequence[Scalar]) -> None:
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise KnobError(f"CategoricalKnob needs a list of values, got {values!r}")
        values = tuple(values)
        if not values:
            raise KnobError("CategoricalKnob needs at least one value")
        if len(values) > MAX_CATEGORIES:
            raise KnobError(f"CategoricalKnob has {len(values)} values, more than {MAX_CATEGORIES}")
        bad = [v for v in values if not _is_scalar(v) or v is None]
        if bad:
            raise KnobError(f"CategoricalKnob values must be bool, int, float or str, got {bad!r}")
        keys = [(type(v).__name__, v) for v in values]
        if len(set(keys)) != len(keys):
            raise KnobError(f"CategoricalKnob values must be distinct, got {list(values)!r}")
        object.__setattr__(self, "values", values)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "values": list(self.values)}

    def validate(self, value: Any) -> Any:
        for option in self.values:
            if value == option and type(value) is type(option):
                return value
        raise KnobError(f"must be one of {list(self.values)!r}, got {value!r}")

    def default(self) -> Any:
        return self.values[0]


@dataclass(frozen=True)
class PolicyKnob(BaseKnob):
    """A switch the *platform* sets when one of its policies (:class:`Policy`) applies to a trial.

    The template declares that it supports, say, early stopping with ``PolicyKnob("EARLY_STOP")`` and
    reads a boolean at ``__init__``. The advisor never searches over policy knobs.
    """

    policy: str
    kind: ClassVar[str] = "policy"
    tunable: ClassVar[bool] = False

    def __post_init__(self) -> None:
        try:
            Policy(self.policy)
        except ValueError:
            raise KnobError(
                f"unknown policy {self.policy!r}; choose one of {[p.value for p in Policy]}"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "policy": self.policy}

    def validate(self, value: Any) -> Any:
        if not isinstance(value, bool):
            raise KnobError(f"policy knob must be true or false, got {value!r}")
        return value

    def default(self) -> Any:
        return False


KNOB_TYPES: dict[str, type[BaseKnob]] = {
    cls.kind: cls for cls in (FixedKnob, IntegerKnob, FloatKnob, CategoricalKnob, PolicyKnob)
}

KnobConfig = Mapping[str, BaseKnob]


def knob_from_dict(data: Mapping[str, Any]) -> BaseKnob:
    """The knob described by ``data`` (as written by :meth:`BaseKnob.to_dict`)."""
    if not isinstance(data, Mapping):
        raise KnobError(f"a knob must be an object with a 'type', got {data!r}")
    kind = data.get("type")
    cls = KNOB_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise KnobError(f"unknown knob type {kind!r}; choose one of {sorted(KNOB_TYPES)}")
    args = {key: value for key, value in data.items() if key != "type"}
    try:
        return cls(**args)
    except TypeError as error:
        raise KnobError(f"bad fields for a {kind} knob: {error}") from None


def check_knob_config(config: Any) -> dict[str, BaseKnob]:
    """Check that ``config`` is a ``{name: knob}`` mapping a template may declare; return it as a dict."""
    if not isinstance(config, Mapping):
        raise KnobError(f"get_knob_config() must return a dict of name -> knob, got {type(config).__name__}")
    if len(config) > MAX_KNOBS:
        raise KnobError(f"knob config has {len(config)} knobs, more than {MAX_KNOBS}")
    checked = {}
    for name, knob in config.items():
        if not isinstance(name, str) or not KNOB_NAME.match(name):
            raise KnobError(f"knob name {name!r} must be an identifier (letters, digits, '_', <= 64 chars)")
        if not isinstance(knob, BaseKnob):
            raise KnobError(f"knob {name!r} must be a knob (FixedKnob, IntegerKnob, ...), got {knob!r}")
        checked[name] = knob
    return checked


def knob_config_to_dict(config: KnobConfig) -> dict[str, dict[str, Any]]:
    """The JSON-ready form of a knob config: ``{name: {"type": ..., ...}}``."""
    return {name: knob.to_dict() for name, knob in check_knob_config(config).items()}


def knob_config_from_dict(data: Mapping[str, Any]) -> dict[str, BaseKnob]:
    """The knob config described by ``data`` (inverse of :func:`knob_config_to_dict`)."""
    if not isinstance(data, Mapping):
        raise KnobError(f"a knob config must be an object of name -> knob, got {data!r}")
    config = {}
    for name, item in data.items():
        try:
            config[name] = knob_from_dict(item)
        except KnobError as error:
            raise KnobError(f"knob {name!r}: {error}") from None
    return check_knob_config(config)


def validate_knobs(config: KnobConfig, values: Mapping[str, Any], *, fill_defaults: bool = True) -> dict[str, Any]:
    """Check ``values`` against ``config``; return them with fixed (and, by default, policy) knobs filled.

    Unknown names and out-of-space values raise :class:`KnobError` naming the knob. With
    ``fill_defaults`` a missing fixed knob takes its value and a missing policy knob is ``False``; a
    missing tunable knob is always an error.
    """
    unknown = sorted(set(values) - set(config))
    if unknown:
        raise KnobError(f"unknown knob(s) {unknown}; the template declares {sorted(config)}")
    result = {}
    for name, knob in config.items():
        if name in values:
            try:
                result[name] = knob.validate(values[name])
            except KnobError as error:
                raise KnobError(f"knob {name!r} {error}") from None
        elif fill_defaults and not knob.tunable:
            result[name] = knob.default()
        else:
            raise KnobError(f"knob {name!r} has no value")
    return result


def default_knobs(config: KnobConfig) -> dict[str, Any]:
    """A valid value for every knob (handy for a local smoke test of a template)."""
    return {name: knob.default() for name, knob in config.items()}
