"""Argument checks shared by every public entry point: a bad value is a ValueError that names the argument.

Numbers must be real numbers (``int``, ``float``, numpy scalars), never ``None``, ``bool`` or strings — a
numeric string accepted silently today is a type error hidden until the day it is not numeric.
"""

from __future__ import annotations

import math
import numbers


def real(name: str, value: object) -> float:
    """``value`` as a finite float; ValueError naming ``name`` for None, bools, strings, NaN and infinities."""
    if type(value) is float and math.isfinite(value):  # the hot path: an ABC check costs a microsecond or two
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return out


def seconds(name: str, value: object) -> float:
    """A finite duration ``>= 0`` seconds."""
    out = real(name, value)
    if out < 0.0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return out


def positive(name: str, value: object) -> float:
    """A finite number ``> 0``."""
    out = real(name, value)
    if out <= 0.0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return out


def count(name: str, value: object) -> int:
    """A whole number ``>= 0`` (``numbers.Integral``, not a float or string that looks like one)."""
    if type(value) is int and value >= 0:  # the hot path, as in ``real``
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    out = int(value)
    if out < 0:
        raise ValueError(f"{name} must be >= 0, got {out}")
    return out


def request(n_mb: object, deadline: object) -> tuple[int, float]:
    """A task's size and time budget: ``n_mb`` a whole number >= 0, ``deadline`` finite seconds >= 0."""
    return count("n_mb", n_mb), seconds("deadline", deadline)


def time_left(value: object) -> float:
    """Seconds left until a deadline, as a policy gets them: may be negative (already late), counts as 0."""
    return max(real("deadline", value), 0.0)
