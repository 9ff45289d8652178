"""Checking a request's instances before anything is queued: a bad one is a 422 that names its index."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


class InvalidInstance(ValueError):
    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"instance {index}: {reason}")
        self.index = index


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def _check_one(index: int, instance: Any, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(instance, bool | str | dict) or instance is None:
        raise InvalidInstance(index, f"expected an array of numbers shaped {_shape_text(shape)}, "
                                     f"got {type(instance).__name__}")
    try:
        array = np.asarray(instance, dtype=np.float32)
    except (ValueError, TypeError, OverflowError):  # OverflowError: an integer like 10**400
        raise InvalidInstance(index, f"is not a regular array of numbers (the model takes {_shape_text(shape)})") from None
    size = math.prod(shape)
    if not _fits(array.shape, shape):
        raise InvalidInstance(index, f"has shape {_shape_text(array.shape) or 'scalar'}, the model takes "
                                     f"{_shape_text(shape)} (or {size} numbers flat)")
    if not np.isfinite(array).all():
        raise InvalidInstance(index, "contains a value that is not a finite number")
    return array.reshape(shape)


def _squeeze(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _fits(got: Sequence[int], shape: tuple[int, ...]) -> bool:
    """The model's shape, the same up to axes of length 1 (8x8 for 1x8x8), or flat."""
    got = tuple(got)
    return got == shape or _squeeze(got) == _squeeze(shape) or (len(got) == 1 and got[0] == math.prod(shape))


def to_batch(instances: Sequence[Any], input_shape: tuple[int, ...] | None) -> np.ndarray | list[Any]:
    """``(N, *input_shape)`` float32 for numeric models (flat instances are reshaped); as given otherwise.

    Raises :class:`InvalidInstance` naming the first bad instance (strings, nulls, booleans, ragged arrays,
    wrong shapes, NaN and infinities).
    """
    if input_shape is None:
        return list(instances)
    shape = tuple(input_shape)
    try:
        array = np.asarray(instances)
        # numbers only: strings, nulls and objects give other dtypes (JSON true/false among numbers pass as 1/0)
        regular = array.dtype.kind in "fiu"
    except (ValueError, TypeError):
        regular = False
    if regular and array.ndim >= 1 and array.shape[0] == len(instances) and _fits(array.shape[1:], shape):
        array = array.astype(np.float32, copy=False)
        if np.isfinite(array).all():
            return array.reshape((len(instances), *shape))
    # Mixed forms, or something is wrong: check one by one (names the first bad instance).
    checked = [_check_one(index, instance, shape) for index, instance in enumerate(instances)]
    return np.stack(checked) if checked else np.zeros((0, *shape), dtype=np.float32)

