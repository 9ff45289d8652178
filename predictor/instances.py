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


_KINDS = {"b": "booleans", "U": "text", "S": "bytes", "O": "values of several kinds", "c": "complex numbers",
          "M": "dates", "m": "durations", "V": "records"}


def _check_one(index: int, instance: Any, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(instance, bool | str | dict) or instance is None:
        raise InvalidInstance(index, f"expected an array of numbers shaped {_shape_text(shape)}, "
                                     f"got {type(instance).__name__}")
    try:
        array = np.asarray(instance)
    except (ValueError, TypeError, OverflowError):  # ragged nesting, or an integer like 10**400
        array = None
    if array is not None and array.dtype.kind == "O":  # numbers among nulls (NaN to numpy) or other things
        try:
            array = np.asarray(instance, dtype=np.float32)
        except (ValueError, TypeError, OverflowError):
            array = None
    if array is None:  # ragged, an integer too big for any dtype, or numbers among other things
        raise InvalidInstance(index, f"is not a regular array of numbers (the model takes {_shape_text(shape)})")
    if array.dtype.kind not in "fiu":
        raise InvalidInstance(index, f"holds {_KINDS.get(array.dtype.kind, array.dtype.name)}, not numbers "
                                     "(mixed dtypes are not accepted)")
    size = math.prod(shape)
    if not _fits(array.shape, shape):
        raise InvalidInstance(index, f"has shape {_shape_text(array.shape) or 'scalar'}, the model takes "
                                     f"{_shape_text(shape)} (or {size} numbers flat)")
    with np.errstate(over="ignore"):
        array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise InvalidInstance(index, "contains a value that is not a finite number")
    return array.reshape(shape)


def _squeeze(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _fits(got: Sequence[int], shape: tuple[int, ...]) -> bool:
    """The model's shape, the same up to axes of length 1 (8x8 for 1x8x8), or flat."""
    got = tuple(got)
    return got == shape or _squeeze(got) == _squeeze(shape) or (len(got) == 1 and got[0] == math.prod(shape))


def _first_leaf(instance: Any) -> Any:
    while isinstance(instance, list | tuple) and instance:
        instance = instance[0]
    return instance


def _mixed_leaves(instances: Sequence[Any]) -> bool:
    """Whether some instance starts with a boolean while others hold numbers (a cheap probe, one leaf each:
    booleans deeper inside an instance of numbers pass as 0/1, as numpy reads them)."""
    if isinstance(instances, np.ndarray):
        return False
    return any(isinstance(_first_leaf(instance), bool) for instance in instances)


def to_batch(instances: Sequence[Any], input_shape: tuple[int, ...] | None) -> np.ndarray | list[Any]:
    """``(N, *input_shape)`` float32 for numeric models (flat instances are reshaped); as given otherwise.

    One numpy pass when the instances form a regular array of numbers; otherwise (or when a value is not
    finite) they are checked one by one, which names the first bad instance: strings, nulls, booleans,
    instances of another dtype than the rest, ragged arrays, wrong shapes, NaN and infinities raise
    :class:`InvalidInstance`.
    """
    if input_shape is None:
        return list(instances)
    shape = tuple(input_shape)
    n = len(instances)
    try:
        array = np.asarray(instances)
        regular = array.dtype.kind in "fiu"  # numbers only: text, nulls, booleans or a mix give another kind
    except (ValueError, TypeError, OverflowError):
        regular = False
    if regular and _mixed_leaves(instances):
        regular = False  # numpy would quietly turn one instance's booleans into numbers
    if regular and array.ndim >= 1 and array.shape[0] == n and _fits(array.shape[1:], shape):
        with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf, refused below
            batch = array.astype(np.float32, copy=False).reshape((n, *shape))
        finite = np.isfinite(batch.reshape(n, -1)).all(axis=1)
        if finite.all():
            return batch
        raise InvalidInstance(int(np.argmin(finite)), "contains a value that is not a finite number")
    # Mixed forms, or something is wrong: check one by one (names the first bad instance).
    checked = [_check_one(index, instance, shape) for index, instance in enumerate(instances)]
    return np.stack(checked) if checked else np.zeros((0, *shape), dtype=np.float32)


NUMERIC_DTYPES = frozenset({"<f2", "<f4", "<f8", "|i1", "|u1", "<i2", "<i4", "<i8", "<u2", "<u4"})


def from_tensor(dtype: str, shape: Sequence[int], data: bytes, input_shape: tuple[int, ...] | None) -> np.ndarray:
    """``(N, *input_shape)`` float32 from a tensor sent as raw bytes (one dtype for all instances, so there is
    nothing to mix); :class:`InvalidTensor` when it does not describe one, :class:`InvalidInstance` naming
    the first instance that is not finite."""
    if dtype not in NUMERIC_DTYPES:
        raise InvalidTensor(f"dtype {dtype!r} is not a little-endian number type ({', '.join(sorted(NUMERIC_DTYPES))})")
    dims = tuple(shape)
    if not dims or dims[0] < 1 or not all(isinstance(d, int) and d >= 0 for d in dims):
        raise InvalidTensor(f"shape {list(dims)} is not (N >= 1, ...)")
    expected = math.prod(dims) * np.dtype(dtype).itemsize
    if len(data) != expected:
        raise InvalidTensor(f"{len(data)} bytes of data; shape {list(dims)} of {dtype} takes {expected}")
    array = np.frombuffer(data, dtype=dtype).reshape(dims)
    n = dims[0]
    if input_shape is not None and not _fits(dims[1:], tuple(input_shape)):
        raise InvalidTensor(f"instances shaped {_shape_text(dims[1:])}, the model takes {_shape_text(input_shape)}")
    with np.errstate(over="ignore"):
        batch = array.astype(np.float32)  # a copy: writable, and the request body can be freed
    batch = batch.reshape((n, *input_shape)) if input_shape is not None else batch
    finite = np.isfinite(batch.reshape(n, -1)).all(axis=1)
    if not finite.all():
        raise InvalidInstance(int(np.argmin(finite)), "contains a value that is not a finite number")
    return batch


class InvalidTensor(ValueError):
    """A tensor body that does not describe an array of instances."""
