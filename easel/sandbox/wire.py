"""The parent↔child protocol: length-prefixed msgpack frames over a Unix socket, arrays as raw bytes.

msgpack decodes to plain data only (no code runs while decoding, unlike pickle), so the parent can read what
a hostile child sends; sizes are bounded, and arrays come back as ``{"__ndarray__": [dtype, shape, bytes]}``
with a short list of allowed dtypes.

Example::

    send(sock, {"op": "predict", "rate": 0.5, "queries": encode(batch)})
    reply = receive(sock, max_bytes=64 << 20)
"""

from __future__ import annotations

import math
import socket
import struct
from typing import Any

import msgpack
import numpy as np

HEADER = struct.Struct("!Q")
ARRAY_TAG = "__ndarray__"
ROWS_TAG = "__rows__"  # a list of same-shaped arrays (a template's per-query outputs), sent as one array
# A list of equal-length lists of Python floats (what ``tensor.tolist()`` gives: most templates' predictions),
# sent as one float64 array and given back as the same lists — one C pass each way instead of a Python call per
# number (a mini-batch of 32 x 10 probabilities cost ~0.5 ms of Python per hop).
FLOAT_ROWS_TAG = "__float_rows__"
DTYPES = frozenset({"bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"})
MAX_DIMS = 8
# The allowed dtypes by value (native byte order): ``dtype.name`` is computed in Python on every access (several µs,
# three times per sandbox call on each side), a dict lookup by the dtype is not; a non-native byte order, whose
# name is the same, is not found here (its bytes would be read back wrongly).
_NAMES = {np.dtype(name): name for name in DTYPES}


def dtype_name(dtype: np.dtype) -> str | None:
    """``dtype``'s name when the protocol carries it (native byte order), else None."""
    return _NAMES.get(dtype)


class ProtocolError(ValueError):
    """The other side sent something that is not a frame of this protocol."""


def frame(message: dict[str, Any]) -> bytes:
    """``message`` as one frame; ``ValueError`` for what msgpack cannot carry (an int past 64 bits, an object)."""
    try:
        data = msgpack.packb(message, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"cannot send this to a sandbox: {error}") from None
    return HEADER.pack(len(data)) + data


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(frame(message))


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    view = bytearray(size)
    got = 0
    while got < size:
        chunk = sock.recv_into(memoryview(view)[got:], size - got)
        if chunk == 0:
            raise EOFError("the other side closed the connection")
        got += chunk
    return bytes(view)


def receive(sock: socket.socket, *, max_bytes: int) -> dict[str, Any]:
    """One frame; ``EOFError`` when the peer is gone, ``ProtocolError`` for anything malformed or too big."""
    (size,) = HEADER.unpack(_read_exactly(sock, HEADER.size))
    if size > max_bytes:
        raise ProtocolError(f"a frame of {size} bytes is over the limit of {max_bytes}")
    return unpack_frame(_read_exactly(sock, size))


def unpack_frame(data: bytes) -> dict[str, Any]:
    """A frame's body (after its length header) as a message; ``ProtocolError`` if it is not one."""
    try:
        message = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except (ValueError, msgpack.UnpackException) as error:
        raise ProtocolError(f"undecodable frame: {error}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a frame must hold a map")
    return message


def encode(value: Any) -> Any:
    """A template's value as plain msgpack data: arrays tagged, numpy scalars as Python numbers."""
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        name = dtype_name(array.dtype)
        if name is None:
            array, name = array.astype(np.float64), "float64"
        return {ARRAY_TAG: [name, list(array.shape), array.tobytes()]}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, np.ndarray) for v in value) and len(
                {(v.shape, v.dtype) for v in value}) == 1:
            return {ROWS_TAG: encode(np.stack(value))}
        rows = _float_rows(value)
        if rows is not None:
            return {FLOAT_ROWS_TAG: encode(rows)}
        return [encode(v) for v in value]
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor, without importing torch
        return encode(value.detach().cpu().numpy())
    return value


def numeric_rows(outputs: Any) -> np.ndarray | None:
    """A template's predictions as one array (rows = queries) when they are regular numbers — an array, a tensor,
    or equal-length rows of ints/floats — else None. One C pass over what ``tensor.tolist()`` gave, no Python call
    per number; the serving worker turns predictions into an array anyway (``easel.serving_wire.output_array``:
    same rule, numbers of kind int/float only), so nothing it sees changes."""
    if hasattr(outputs, "detach") and hasattr(outputs, "numpy"):  # a torch tensor, without importing torch
        outputs = outputs.detach().cpu().numpy()
    if isinstance(outputs, np.ndarray):
        array = outputs
    elif isinstance(outputs, list | tuple) and outputs:
        try:
            array = np.asarray(outputs)
        except (ValueError, TypeError, OverflowError):  # ragged rows, objects
            return None
    else:
        return None
    if array.ndim < 1 or array.dtype.kind not in "fiu" or dtype_name(array.dtype) is None:
        return None
    return array


def _float_rows(value: list[Any] | tuple[Any, ...]) -> np.ndarray | None:
    """``value`` as a 2-D float64 array when it is a non-empty list of equal-length lists of floats (exactly
    ``float``: ints and bools would not come back as themselves), else None."""
    first = value[0] if value else None
    if type(first) is not list or not first:
        return None
    width = len(first)
    for row in value:
        if type(row) is not list or len(row) != width:
            return None
        for number in row:
            if type(number) is not float:
                return None
    return np.array(value, dtype=np.float64)


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`, validating tagged arrays (dtype allowed, bytes match the shape)."""
    if isinstance(value, dict):
        if ARRAY_TAG in value:
            return decode_array(value[ARRAY_TAG])
        if ROWS_TAG in value:
            rows = decode(value[ROWS_TAG])
            if not isinstance(rows, np.ndarray) or rows.ndim < 1:
                raise ProtocolError("rows must be an array")
            return list(rows)
        if FLOAT_ROWS_TAG in value:
            rows = decode(value[FLOAT_ROWS_TAG])
            if not isinstance(rows, np.ndarray) or rows.ndim != 2 or rows.dtype != np.float64:
                raise ProtocolError("float rows must be a 2-D float64 array")
            return rows.tolist()
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def decode_array(tagged: Any) -> np.ndarray:
    try:
        dtype_name, shape, data = tagged
    except (TypeError, ValueError):
        raise ProtocolError("an array must be [dtype, shape, bytes]") from None
    if dtype_name not in DTYPES or not isinstance(data, bytes):
        raise ProtocolError(f"array dtype {dtype_name!r} is not allowed")
    if (not isinstance(shape, list) or len(shape) > MAX_DIMS
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
        raise ProtocolError("an array's shape must be a short list of sizes")
    dtype = np.dtype(dtype_name)
    if math.prod(shape) * dtype.itemsize != len(data):
        raise ProtocolError(f"array bytes ({len(data)}) do not match shape {shape} of {dtype_name}")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()
